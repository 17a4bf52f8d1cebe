"""manage.py verify_audit: a clean trail verifies; an edited, deleted or inserted event is named and fails the run."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.helpers import TAMPERING, audited

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

# (how, the position tampered with, the position and kind verify_audit must report)
CASES = [
    ("edited", 2, "position 2: edited"),
    ("deleted", 2, "position 2: deleted"),
    ("deleted", 4, "position 4: deleted"),
    ("inserted", 2, "position 2: inserted"),
]


def verify_audit(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_a_clean_trail_verifies_with_one_summary_line(agent, alice):
    audited(agent, alice)
    audited(agent, alice)

    output, failure = verify_audit()

    assert failure is None
    assert output == "Audit trail verified: 2 requests, 8 events.\n"


@pytest.mark.parametrize(("how", "position", "reported"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_tampering_is_reported_by_request_and_position_and_fails_the_run(agent, alice, how, position, reported):
    untouched = audited(agent, alice)
    tampered = audited(agent, alice)
    TAMPERING[how](tampered, position)

    output, failure = verify_audit()

    assert failure is not None and failure.returncode == 1
    assert "NOT verified" in str(failure) and "of 2 requests" in str(failure)
    assert f"request {tampered.pk} {reported}" in output
    assert str(untouched.pk) not in output


def test_a_forged_insert_also_shows_where_the_later_events_were_moved(agent, alice):
    request = audited(agent, alice)
    TAMPERING["inserted"](request, 2)

    output, _ = verify_audit()

    assert f"request {request.pk} position 3: edited" in output
    assert f"request {request.pk} position 5: inserted" in output


def test_one_request_can_be_checked_alone(agent, alice):
    clean = audited(agent, alice)
    TAMPERING["edited"](audited(agent, alice), 1)

    output, failure = verify_audit("--request", str(clean.pk))

    assert failure is None
    assert output == "Audit trail verified: 1 request, 4 events.\n"


@pytest.mark.parametrize("request_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_an_unknown_request_is_an_error_not_a_traceback(request_id):
    _, failure = verify_audit("--request", request_id)

    assert failure is not None and str(failure) == f"No action request {request_id}."


def test_the_walk_reads_requests_in_chunks_and_still_sees_every_one(agent, alice):
    requests = [audited(agent, alice) for _ in range(3)]
    TAMPERING["deleted"](requests[2], 4)

    output, failure = verify_audit("--chunk-size", "1")

    assert failure is not None
    assert output.splitlines() == [
        f"request {requests[2].pk} position 4: deleted: event 4 is missing (the request records 4 events)"
    ]
