"""One request's page says whether its audit trail verifies, and if not, where and how it was tampered with."""

from __future__ import annotations

import re

import pytest

from tests.helpers import TAMPERING, audited

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

CASES = [("edited", 2), ("deleted", 2), ("deleted", 4), ("inserted", 2)]


def request_page(client, reviewer, request) -> str:
    client.force_login(reviewer)
    response = client.get(f"/queue/requests/{request.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_clean_trail_is_shown_as_verified_with_its_event_count(client, agent, alice):
    request = audited(agent, alice)

    html = request_page(client, alice, request)

    assert "Audit trail verified (4 events)" in html
    assert "NOT verified" not in html


@pytest.mark.parametrize(("how", "position"), CASES, ids=[f"{how}-{position}" for how, position in CASES])
def test_tampering_is_shown_as_a_warning_naming_the_position_and_the_kind(client, agent, alice, how, position):
    request = audited(agent, alice)
    TAMPERING[how](request, position)

    html = request_page(client, alice, request)

    assert "Audit trail verified" not in html
    assert '<div class="audit-tampered" role="alert">' in html
    assert f"<li>Position {position}: <strong>{how}</strong> — " in html


def test_each_event_on_the_page_shows_its_position(client, agent, alice):
    request = audited(agent, alice)

    html = request_page(client, alice, request)

    assert re.findall(r'<span class="position">#(\d+)</span>', html) == ["1", "2", "3", "4"]
