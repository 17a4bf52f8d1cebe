"""How many SQL queries each operation costs, through its real door (issue 12).

Counted inside the test's transaction, so every ``transaction.atomic`` block adds a
SAVEPOINT and a RELEASE (production has BEGIN/COMMIT instead, which Django does not count).
After-commit work (live events: the card built for a queue) runs inside the count.

To update a number: change the constant and its comment together, listing the queries.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest
from tests.factories import PendingRequestFactory
from tests.helpers import PASSWORD, submission_body

pytestmark = pytest.mark.django_db

# Every agent request: the key with its agent (one join).
AGENT_AUTH = 1
# Every reviewer request: the session, the user, the user's TOTP device (second factor). Whether the user
# may review at all is answered inside the decide service's first query, not by loading their permissions.
REVIEWER_AUTH = 3
TRANSACTION = 2  # SAVEPOINT + RELEASE in tests; BEGIN/COMMIT (uncounted) in production
# Every audit event: the compare-and-swap on the request's chain head, then INSERT the event.
AUDIT = 2
# A new request and its first audit event: the request's row already names the event as the chain's head,
# so there is no compare-and-swap; the two INSERTs go in one round trip on PostgreSQL (core.inserts).
INSERT_REQUEST_AND_FIRST_AUDIT = 1 if connection.vendor == "postgresql" else 2
# Every submission: the shared side of the agent's and the action type's pause gates, then the open pause
# covering it and the policy table's version (the compiled table is cached per version), in one round trip
# (PostgreSQL: the advisory locks and the read are two statements of one query; SQLite's IMMEDIATE
# transaction is the gate).
GATE = 1

# A submission the table allows or blocks outright. PostgreSQL: no key lookup (the process remembers the
# agent; approvals.selectors.agent_keys), and the gates, their read, the check that the agent and its key are
# unchanged and both INSERTs are one query (services.pauses.submission_write_if_gates_open), a prepared
# statement (core.prepared) with no transaction of its own in production (in a test's transaction, a
# savepoint). SQLite: the key lookup, the transaction, the gate and its read, the INSERTs.
SUBMIT_ALLOWED = (
    TRANSACTION + 1
    if connection.vendor == "postgresql"
    else AGENT_AUTH + TRANSACTION + GATE + INSERT_REQUEST_AND_FIRST_AUDIT
)
# ... + the reviewer group's notification settings; after commit the card: the agent's
# 30-day record and the action type's params schema
# Admitting a pending request: the agent's row locked (PostgreSQL; SQLite's IMMEDIATE transaction
# already serialises), a pending duplicate to collapse into, the agent's pending count for its cap.
PENDING_ADMISSION = (1 if connection.vendor == "postgresql" else 0) + 2
# (On PostgreSQL the key lookup is the remembered agent's confirmation, read before anything is held.)
SUBMIT_HELD = AGENT_AUTH + TRANSACTION + GATE + PENDING_ADMISSION + INSERT_REQUEST_AND_FIRST_AUDIT + 1 + 2
SUBMIT_BLOCKED = SUBMIT_ALLOWED

# An audit event written with a new row of the same change (a decision): the compare-and-swap, then both
# INSERTs, in one round trip on PostgreSQL (core.inserts).
AUDIT_ALONG_A_ROW = 1 + (1 if connection.vendor == "postgresql" else 2)
# SELECT request + agent + group + may-this-reviewer-see-it + does-this-user-review (one query), conditional UPDATE,
# the decision with its audit event. No webhook row: the agent has no callback URL.
DECIDE = REVIEWER_AUTH + 1 + TRANSACTION + 1 + AUDIT_ALONG_A_ROW
# the same, plus the action type's params schema, to check the edited params against it
DECIDE_EDITED = DECIDE + 1

# SELECT request (the agent's own; the agent is in hand), conditional UPDATE, the audit event
CANCEL = AGENT_AUTH + 1 + TRANSACTION + 1 + AUDIT
# SELECT request, conditional UPDATE (claims the run), the audit event
EXECUTION_START = AGENT_AUTH + 1 + TRANSACTION + 1 + AUDIT
# SELECT request, conditional UPDATE, the audit event
EXECUTION_REPORT = AGENT_AUTH + 1 + TRANSACTION + 1 + AUDIT


def post_json(client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def agent_api(api, default_policies):
    """The agent's client after three submissions, as on a server that has been up a while: its key
    touched (``last_used_at`` is written at most once a minute) and its agent remembered; the policy
    table compiled and cached; the submission's statement prepared on this connection."""
    for _ in range(3):
        post_json(api, "/api/v1/actions/", submission_body(action_type="search_web"))
    return api


@pytest.fixture
def reviewer_client(client, alice):
    client.login(username="alice", password=PASSWORD)
    return client


@pytest.mark.parametrize(
    ("action_type", "expected", "status"),
    [
        ("search_web", SUBMIT_ALLOWED, "allowed"),
        ("update_internal_record", SUBMIT_ALLOWED, "allowed"),
        ("send_external_email", SUBMIT_HELD, "pending"),
        ("legal_advice", SUBMIT_BLOCKED, "blocked"),
    ],
    ids=["auto", "log", "approve", "block"],
)
def test_a_submission_costs_a_fixed_number_of_queries(
    agent_api, django_assert_num_queries, django_capture_on_commit_callbacks, action_type, expected, status
):
    with django_assert_num_queries(expected), django_capture_on_commit_callbacks(execute=True):
        response = post_json(agent_api, "/api/v1/actions/", submission_body(action_type=action_type))

    assert response.status_code == 201, response.content
    assert response.json()["status"] == status


@pytest.mark.parametrize(
    ("body", "expected", "status"),
    [
        ({"decision": "approve"}, DECIDE, "approved"),
        ({"decision": "approve", "params": {"to": "other@example.org"}}, DECIDE_EDITED, "approved"),
        ({"decision": "reject", "reason": "Wrong customer", "reason_category": "wrong_recipient"}, DECIDE, "rejected"),
    ],
    ids=["approve", "edit", "reject"],
)
def test_a_decision_costs_a_fixed_number_of_queries(
    reviewer_client, django_assert_num_queries, django_capture_on_commit_callbacks, body, expected, status
):
    request = PendingRequestFactory()

    with django_assert_num_queries(expected), django_capture_on_commit_callbacks(execute=True):
        response = post_json(reviewer_client, f"/queue/requests/{request.id}/decide", body | {"revision": 1})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == status


def test_a_decision_on_a_routed_request_costs_no_more(
    client, finance, django_assert_num_queries, django_capture_on_commit_callbacks
):
    request = PendingRequestFactory(reviewer_group=finance.groups.get())
    client.login(username="fiona", password=PASSWORD)

    with django_assert_num_queries(DECIDE), django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, f"/queue/requests/{request.id}/decide", {"decision": "approve"})

    assert response.status_code == 200, response.content


def test_a_cancellation_costs_a_fixed_number_of_queries(
    agent_api, django_assert_num_queries, django_capture_on_commit_callbacks
):
    created = post_json(agent_api, "/api/v1/actions/", submission_body()).json()

    with django_assert_num_queries(CANCEL), django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(f"/api/v1/actions/{created['id']}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"


@pytest.fixture
def allowed(agent_api) -> ActionRequest:
    created = post_json(agent_api, "/api/v1/actions/", submission_body(action_type="search_web")).json()
    return ActionRequest.objects.get(pk=created["id"])


def test_starting_an_execution_costs_a_fixed_number_of_queries(
    agent_api, allowed, django_assert_num_queries, django_capture_on_commit_callbacks
):
    body = {"approval_token": approval_token(allowed), "params_hash": final_params_hash(allowed)}

    with django_assert_num_queries(EXECUTION_START), django_capture_on_commit_callbacks(execute=True):
        response = post_json(agent_api, f"/api/v1/actions/{allowed.id}/execution/start", body)

    assert response.status_code == 200, response.content


def test_reporting_an_execution_costs_a_fixed_number_of_queries(
    agent_api, allowed, django_assert_num_queries, django_capture_on_commit_callbacks
):
    body = {
        "status": "succeeded",
        "approval_token": approval_token(allowed),
        "params_hash": final_params_hash(allowed),
        "result": {"ok": True},
    }

    with django_assert_num_queries(EXECUTION_REPORT), django_capture_on_commit_callbacks(execute=True):
        response = post_json(agent_api, f"/api/v1/actions/{allowed.id}/execution", body)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "executed"
