"""Staff read and set an agent's limits: GET/PUT /api/v1/agents/<name>/limits."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

URL = "/api/v1/agents/support-bot/limits"
LIMITS = {"rate_limit_per_minute": 30, "key_rate_limit_per_minute": 10, "max_pending": 5}


def staff_with(*codenames: str) -> APIClient:
    user = UserFactory(username="ops", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="approvals", codename__in=codenames))
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def admin_api(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    return client


@override_settings(COUNTERSIGN_RATE_LIMIT_PER_MINUTE=120, COUNTERSIGN_MAX_PENDING_PER_AGENT=100)
def test_an_agent_without_overrides_shows_the_defaults_as_its_effective_limits(agent, admin_api):
    response = admin_api.get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "agent": "support-bot",
        "rate_limit_per_minute": None,
        "key_rate_limit_per_minute": None,
        "max_pending": None,
        "effective": {"rate_limit_per_minute": 120, "key_rate_limit_per_minute": 0, "max_pending": 100},
        "pending": 0,
    }


def test_put_saves_the_overrides_and_the_agent_row_has_them(agent, admin_api):
    response = admin_api.put(URL, LIMITS, format="json")

    assert response.status_code == 200
    assert response.json()["effective"] == LIMITS
    agent.refresh_from_db()
    assert (agent.rate_limit_per_minute, agent.key_rate_limit_per_minute, agent.max_pending) == (30, 10, 5)


def test_put_null_returns_a_field_to_the_default(agent, admin_api):
    admin_api.put(URL, LIMITS, format="json")

    response = admin_api.put(URL, {**LIMITS, "max_pending": None}, format="json")

    assert response.json()["max_pending"] is None
    agent.refresh_from_db()
    assert agent.max_pending is None


@pytest.mark.parametrize(
    "body",
    [
        {**LIMITS, "max_pending": -1},
        {**LIMITS, "rate_limit_per_minute": "many"},
        {"rate_limit_per_minute": 30},
        {**LIMITS, "burst": 3},
    ],
    ids=["negative", "not a number", "missing fields", "unknown field"],
)
def test_put_refuses_a_bad_body_with_422_and_changes_nothing(agent, admin_api, body):
    response = admin_api.put(URL, body, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] in {"validation_error", "unknown_field"}
    agent.refresh_from_db()
    assert agent.rate_limit_per_minute is None


def test_an_unknown_agent_is_404(db, admin_api):
    response = admin_api.get("/api/v1/agents/nobody/limits")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_staff_with_view_agent_may_read_but_not_write(agent):
    client = staff_with("view_agent")

    assert client.get(URL).status_code == 200
    assert client.put(URL, LIMITS, format="json").status_code == 403


def test_staff_with_change_agent_may_write(agent):
    client = staff_with("view_agent", "change_agent")

    assert client.put(URL, LIMITS, format="json").status_code == 200


def test_a_staff_token_works_like_a_session(agent, admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")

    assert client.get(URL).status_code == 200


def test_a_reviewer_who_is_not_staff_is_refused(agent, alice):
    client = APIClient()
    client.force_login(alice)

    response = client.get(URL)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")


def test_an_agent_key_is_not_a_staff_credential(agent, api):
    response = api.get(URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
