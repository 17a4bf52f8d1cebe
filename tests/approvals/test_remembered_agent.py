"""A submission may take the agent its process remembers for the key, confirmed before it acts.

On PostgreSQL, ``POST /api/v1/actions`` skips the key lookup when the process read the same key in
the last half minute (approvals.selectors.agent_keys). That agent is unconfirmed: the one-round-trip
write checks that neither the agent's row nor its key's row changed since (their ``xmin``); any other
path reads both again first. These tests hold it to what the lookup guarantees: a revoked key, a
disabled agent or a narrowed scope is obeyed by the very next submission.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ActionRequest, AgentKey, ContainmentCount, ContainmentKind
from approvals.selectors import agent_for_api_key, agent_for_api_key_remembered
from approvals.services import agent_key_revoke
from policies.services import policies_load_defaults

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL remembers agents")
pytestmark = pytest.mark.django_db(transaction=True)


def the_write_alone(queries) -> bool:
    """Only the one-round-trip write was sent (the gates' locks, then the INSERTs), besides preparing it."""
    sent = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("PREPARE")]
    return len(sent) == 1 and sent[0].startswith("SELECT pg_advisory_xact_lock_shared")


def submit(api, action_type: str = "search_web", **extra):
    return api.post(
        "/api/v1/actions/",
        {"action_type": action_type, "params": {"query": "refund policy"}, "summary": "Look it up", "evidence": []},
        format="json",
        **extra,
    )


@pytest.fixture
def remembered(api, agent_and_key):
    """A process that has answered this key before: it remembers the agent, and has compiled the policy table."""
    policies_load_defaults()
    for _ in range(2):  # the first reads (and remembers) the agent; the second prepares the write
        assert submit(api).status_code == 201
    assert agent_for_api_key_remembered(agent_and_key[1]).read.from_memory
    return agent_and_key


def test_sqlite_reads_the_agent_on_every_request(agent_and_key):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL remembers agents")
    key = agent_and_key[1]
    for _ in range(3):
        assert agent_for_api_key_remembered(key).read is None


@postgres_only
def test_a_remembered_agent_costs_no_lookup(remembered, api):
    with CaptureQueriesContext(connection) as queries:
        response = submit(api)
    assert response.status_code == 201, response.content
    assert the_write_alone(queries)
    request = ActionRequest.objects.get(pk=response.json()["id"])
    assert request.agent_id == remembered[0].pk and request.status == "allowed"
    assert request.audit_events.get().actor_label == remembered[0].name


@postgres_only
def test_a_revoked_key_is_refused_at_once_and_then_forgotten(remembered, api):
    agent, key = remembered
    before = ActionRequest.objects.count()
    agent_key_revoke(agent=agent, prefix=agent.keys.get().prefix)

    response = submit(api)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="countersign"'
    assert ActionRequest.objects.count() == before
    # Forgotten: the next request is refused by the lookup itself, before any rate limit counts it.
    assert agent_for_api_key_remembered(key) is None
    assert submit(api).status_code == 401


@postgres_only
def test_a_disabled_agent_is_refused_at_once(remembered, api):
    agent, _ = remembered
    before = ActionRequest.objects.count()
    type(agent).objects.filter(pk=agent.pk).update(is_active=False)
    assert submit(api).status_code == 401
    assert ActionRequest.objects.count() == before


@postgres_only
def test_a_narrowed_scope_decides_the_next_submission(remembered, api):
    agent, _ = remembered
    agent.action_scopes = ["send_*"]
    agent.save(update_fields=["action_scopes"])
    response = submit(api)
    assert response.status_code == 201
    assert response.json()["status"] == "blocked"


@postgres_only
def test_a_narrowed_key_scope_decides_the_next_submission(remembered, api):
    AgentKey.objects.filter(agent=remembered[0]).update(action_scopes=["send_*"])
    response = submit(api)
    assert response.status_code == 201
    assert response.json()["status"] == "blocked"


@postgres_only
def test_a_submission_held_for_review_confirms_the_agent_first(remembered, api):
    agent, _ = remembered
    agent_key_revoke(agent=agent, prefix=agent.keys.get().prefix)
    response = submit(api, action_type="send_external_email")
    assert response.status_code == 401
    assert not ActionRequest.objects.filter(action_type="send_external_email").exists()


@postgres_only
def test_a_replay_confirms_the_agent_first(remembered, api):
    agent, _ = remembered
    first = submit(api, HTTP_IDEMPOTENCY_KEY="task-1")
    assert first.status_code == 201
    assert submit(api, HTTP_IDEMPOTENCY_KEY="task-1").status_code == 200
    agent_key_revoke(agent=agent, prefix=agent.keys.get().prefix)
    assert submit(api, HTTP_IDEMPOTENCY_KEY="task-1").status_code == 401


@postgres_only
def test_a_rate_limited_revoked_key_hears_it_is_revoked(remembered, api):
    agent, _ = remembered
    type(agent).objects.filter(pk=agent.pk).update(rate_limit_per_minute=1)
    # Changing the agent made a new version of its row: the next submission reads it again, and
    # spends the one submission a minute (the remembered limit was the server's default).
    submit(api)
    submit(api)  # read again and remembered, then refused by the new limit
    agent_key_revoke(agent=agent, prefix=agent.keys.get().prefix)
    response = submit(api)
    assert response.status_code == 401


@postgres_only
def test_a_limit_raised_meanwhile_admits_the_submission_and_counts_no_refusal(remembered, api):
    agent, _ = remembered
    type(agent).objects.filter(pk=agent.pk).update(rate_limit_per_minute=3)
    assert submit(api).status_code == 201  # the agent's row changed: read again, remembered with the limit 3
    type(agent).objects.filter(pk=agent.pk).update(rate_limit_per_minute=100)
    # Refused by the remembered limit (3 of 3 spent), then admitted by the agent read again.
    assert submit(api).status_code == 201
    assert not ContainmentCount.objects.filter(agent=agent, kind=ContainmentKind.RATE_LIMITED).exists()
    # A refusal that stands is counted once. Lowered to 4 with 4 spent: the next still passes under the
    # limit remembered (100), and its write reads the changed agent again...
    type(agent).objects.filter(pk=agent.pk).update(rate_limit_per_minute=4)
    submit(api)
    # ...so the one after is refused by the limit 4, which reading the agent again confirms.
    assert submit(api).status_code == 429
    assert ContainmentCount.objects.get(agent=agent, kind=ContainmentKind.RATE_LIMITED).count == 1


@postgres_only
def test_marking_the_key_used_is_a_new_version_remembered_at_once(remembered, api):
    agent, _ = remembered
    AgentKey.objects.filter(agent=agent).update(last_used_at=timezone.now() - timezone.timedelta(minutes=5))
    # The key's row changed: the remembered agent fails the write's check and is read again, which marks the key
    # used, and remembers the version that made.
    assert submit(api).status_code == 201
    touched = AgentKey.objects.get(agent=agent).last_used_at
    assert timezone.now() - touched < timezone.timedelta(seconds=10)
    with CaptureQueriesContext(connection) as queries:
        assert submit(api).status_code == 201
    assert the_write_alone(queries)


@postgres_only
def test_each_request_gets_its_own_copy_of_the_agent(remembered):
    agent, key = remembered
    first = agent_for_api_key_remembered(key)
    assert first.read.from_memory
    first.tags.append("changed-by-one-request")
    assert agent_for_api_key_remembered(key).tags == agent.tags


@postgres_only
def test_the_plain_lookup_always_reads_the_database(remembered):
    agent, key = remembered
    agent_key_revoke(agent=agent, prefix=agent.keys.get().prefix)
    assert agent_for_api_key(key) is None
