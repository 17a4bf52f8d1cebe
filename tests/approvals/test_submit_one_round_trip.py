"""A submission the policy table allows or blocks outright is written in one round trip (PostgreSQL).

The gates, their read and both INSERTs are one query with no transaction of its own
(services.pauses.submission_write_if_gates_open). These tests hold it to what the transactional
path guarantees: the same rows, a pause seen as soon as it starts, a newer policy table never missed.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.audit_chain import audit_chain_verify_request
from approvals.models import ActionRequest, AuditEvent, Pause, Status
from policies.models import Policy
from policies.selectors import policy_table_cache_clear, policy_table_cached
from policies.services import policies_load_defaults, policy_update
from tests.helpers import held_by_a_starting_pause, submit_as

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite takes the transactional path only"),
]

SEARCH = {"query": "refund policy"}


@pytest.fixture
def warm(agent):
    """Default policies, and this process's compiled table, as on a server that has answered before."""
    policies_load_defaults()
    submit_as(agent, action_type="search_web", params=SEARCH)
    assert policy_table_cached() is not None


def comparable(row: ActionRequest) -> dict:
    skip = {"id", "created_at", "audit_head"}
    return {k: v for k, v in model_to_dict(row).items() if k not in skip}


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize(("action_type", "status"), [("search_web", "allowed"), ("legal_advice", "blocked")])
def test_it_is_one_query_without_begin_or_commit(agent, action_type, status):
    with CaptureQueriesContext(connection) as queries:
        request = submit_as(agent, action_type=action_type, params=SEARCH)

    assert request.status == status
    sent = [q["sql"].split()[0] for q in queries.captured_queries if not q["sql"].startswith("PREPARE")]
    assert sent == ["SELECT"]  # locks; then WITH ... INSERT (prepared once per connection)
    assert ActionRequest.objects.get(pk=request.pk).status == status
    assert AuditEvent.objects.filter(request=request, kind="submitted", position=1).count() == 1


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize("action_type", ["search_web", "update_internal_record", "legal_advice"])
def test_it_stores_what_the_transactional_path_stores(agent, action_type):
    direct = submit_as(agent, action_type=action_type, params=SEARCH)
    policy_table_cache_clear()  # no table compiled: the transactional path
    with CaptureQueriesContext(connection) as queries:
        full = submit_as(agent, action_type=action_type, params=SEARCH)
    assert "BEGIN" in [q["sql"] for q in queries.captured_queries]

    stored_direct, stored_full = ActionRequest.objects.get(pk=direct.pk), ActionRequest.objects.get(pk=full.pk)
    assert comparable(stored_direct) == comparable(stored_full)
    event_direct, event_full = AuditEvent.objects.get(request=direct), AuditEvent.objects.get(request=full)
    assert event_direct.data == event_full.data
    assert (event_direct.kind, event_direct.to_status, event_direct.actor_label) == (
        event_full.kind,
        event_full.to_status,
        event_full.actor_label,
    )
    assert audit_chain_verify_request(request_id=direct.pk).ok
    assert stored_direct.audit_head == event_direct.hash and stored_direct.audit_length == 1


@pytest.mark.usefixtures("warm")
def test_a_policy_table_newer_than_the_one_this_process_compiled_decides(agent, admin_user):
    stale = policy_table_cached()
    policy = Policy.objects.get(action_pattern="search_web")
    policy_update(actor=admin_user, policy_id=policy.id, data={"mode": "block"}, change_note="stop searching")
    assert policy_table_cached() is stale  # nothing told this process; only the write's own check can

    request = submit_as(agent, action_type="search_web", params=SEARCH)

    assert request.status == Status.BLOCKED
    assert request.policy_version == stale.version + 1
    assert AuditEvent.objects.get(request=request).data["verdict"]["mode"] == "block"


@pytest.mark.usefixtures("warm")
def test_an_open_pause_blocks_it(agent):
    Pause.objects.create(agent=agent, reason="Runaway", paused_by_label="test", paused_at=timezone.now())

    request = submit_as(agent, action_type="search_web", params=SEARCH)

    assert request.status == Status.BLOCKED
    assert request.verdict_reason == "agent_paused"
    assert AuditEvent.objects.get(request=request).data["table_verdict"]["mode"] == "auto"


@pytest.mark.usefixtures("warm")
def test_it_waits_for_a_pause_that_is_starting_and_then_reads_it(agent):
    """The gate's read is taken once the gate lets the submission in: the lock is its own statement, before
    the INSERT whose condition reads the pauses."""
    let_in_early, written = held_by_a_starting_pause(
        agent, lambda: submit_as(agent, action_type="search_web", params=SEARCH)
    )

    assert not let_in_early
    assert written.status == Status.BLOCKED
    assert ActionRequest.objects.get(pk=written.pk).verdict_reason == "agent_paused"
