"""core.inserts writes the same rows save() writes, in one round trip on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from approvals.models import ActionRequest, AuditEvent, Status
from core.inserts import insert_new, insert_new_if, new_row

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 12, 5, 12, 30, 15, 123456, tzinfo=UTC)


def new_request(agent, **overrides) -> ActionRequest:
    fields = {
        "agent": agent,
        "action_type": "send_external_email",
        "params": {"to": "a@example.org", "nested": [1, {"x": None}]},
        "evidence": [{"title": "Ticket 42"}],
        "summary": "Tell the customer",
        "confidence": 0.5,
        "status": Status.PENDING,
        "mode": "approve",
        "risk": "high",
        "expires_at": WHEN,
        "approval_ttl_seconds": 900,
        "pending_ttl_seconds": 3600,
    }
    return ActionRequest(**{**fields, **overrides})


def new_event(request: ActionRequest) -> AuditEvent:
    return AuditEvent(
        request=request,
        position=1,
        hash="h" * 64,
        kind="submitted",
        data={"verdict": {"mode": "approve"}},
        created_at=WHEN,
    )


def test_rows_read_back_as_save_would_have_written_them(agent, django_assert_num_queries):
    request, event = new_request(agent), new_event(new_request(agent))
    saved_request, saved_event = new_request(agent), None
    event.request = request

    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        insert_new(request, event)
    saved_request.save(force_insert=True)
    saved_event = new_event(saved_request)
    saved_event.save(force_insert=True)

    assert event.pk is not None and event.pk != saved_event.pk  # the generated key is read back
    assert not request._state.adding and not event._state.adding
    ignored = {"id", "request"}
    assert {k: v for k, v in model_to_dict(ActionRequest.objects.get(pk=request.pk)).items() if k != "id"} == {
        k: v for k, v in model_to_dict(ActionRequest.objects.get(pk=saved_request.pk)).items() if k != "id"
    }
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.request_id == request.pk
    assert {k: v for k, v in model_to_dict(stored).items() if k not in ignored} == {
        k: v for k, v in model_to_dict(AuditEvent.objects.get(pk=saved_event.pk)).items() if k not in ignored
    }
    assert stored.created_at == WHEN and stored.data == {"verdict": {"mode": "approve"}}


def test_values_that_look_like_sql_or_placeholders_are_stored_as_given(agent):
    awkward = 'it\'s 100% %s %(name)s $1 \\ "quoted" ; DROP TABLE x; -- ünïcode ✓'
    request = new_request(agent, summary=awkward, params={"text": awkward, awkward: [awkward]})
    event = new_event(request)
    event.actor_label = awkward

    insert_new(request, event)

    stored = ActionRequest.objects.get(pk=request.pk)
    assert stored.summary == awkward and stored.params == {"text": awkward, awkward: [awkward]}
    assert AuditEvent.objects.get(pk=event.pk).actor_label == awkward


def test_a_refused_row_raises_and_writes_nothing(agent):
    first = new_request(agent, idempotency_key="k-1")
    insert_new(first)
    again = new_request(agent, idempotency_key="k-1")  # the (agent, idempotency key) pair is unique

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_new(again, new_event(again))

    assert ActionRequest.objects.filter(agent=agent).count() == 1
    assert not AuditEvent.objects.filter(request_id=again.pk).exists()


only_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="insert_new_if is PostgreSQL's")


@only_postgresql
def test_insert_new_if_writes_what_insert_new_writes_when_its_condition_holds(agent):
    request, saved = new_request(agent), new_request(agent)
    event, saved_event = new_event(request), new_event(saved)

    with CaptureQueriesContext(connection) as queries:
        assert insert_new_if(request, event, condition="%s = 1", params=[1], shared_locks=("a", "b")) is True
    # One query (the locks, then the INSERTs), in a savepoint of its own inside the test's transaction.
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SAVEPOINT", "SELECT", "RELEASE"]
    insert_new(saved, saved_event)

    assert event.pk is not None and not request._state.adding and not event._state.adding
    assert {k: v for k, v in model_to_dict(ActionRequest.objects.get(pk=request.pk)).items() if k != "id"} == {
        k: v for k, v in model_to_dict(ActionRequest.objects.get(pk=saved.pk)).items() if k != "id"
    }
    stored, stored_saved = AuditEvent.objects.get(pk=event.pk), AuditEvent.objects.get(pk=saved_event.pk)
    assert stored.request_id == request.pk
    ignored = {"id", "request"}
    assert {k: v for k, v in model_to_dict(stored).items() if k not in ignored} == {
        k: v for k, v in model_to_dict(stored_saved).items() if k not in ignored
    }


@only_postgresql
def test_insert_new_if_writes_nothing_when_its_condition_fails(agent):
    request = new_request(agent)
    event = new_event(request)

    assert insert_new_if(request, event, condition="%s = 2", params=[1]) is False

    assert not ActionRequest.objects.filter(pk=request.pk).exists()
    assert not AuditEvent.objects.filter(request_id=request.pk).exists()
    assert request._state.adding and event.pk is None


@only_postgresql
def test_insert_new_if_stores_awkward_values_as_given(agent):
    awkward = 'it\'s 100% %s %(name)s $1 \\ "quoted" ; DROP TABLE x; -- ünïcode ✓'
    request = new_request(agent, summary=awkward, params={"text": awkward, awkward: [awkward]}, confidence=0.1 + 0.2)
    event = new_event(request)
    event.actor_label = awkward

    assert insert_new_if(request, event, condition="%s <> ''", params=[awkward])

    stored = ActionRequest.objects.get(pk=request.pk)
    assert stored.summary == awkward and stored.params == {"text": awkward, awkward: [awkward]}
    assert stored.confidence == 0.1 + 0.2  # every digit of the float kept
    assert AuditEvent.objects.get(pk=event.pk).actor_label == awkward


@only_postgresql
def test_insert_new_if_refuses_a_string_too_long_for_its_column_rather_than_cutting_it(agent):
    request = new_request(agent, summary="x" * 501)  # summary is varchar(500)

    with pytest.raises(DataError), transaction.atomic():
        insert_new_if(request, new_event(request), condition="TRUE", params=[])

    assert not ActionRequest.objects.filter(pk=request.pk).exists()


def test_new_row_builds_the_row_model_kwargs_builds(agent):
    values = {
        "agent": agent,
        "action_type": "send_external_email",
        "params": {"to": "a@example.org"},
        "summary": "Tell the customer",
        "status": Status.PENDING,
        "mode": "approve",
        "risk": "high",
        "approval_ttl_seconds": 900,
    }

    built, expected = new_row(ActionRequest, **values), ActionRequest(**values)

    fields = [f.attname for f in ActionRequest._meta.concrete_fields if f.attname != "id"]
    assert {f: getattr(built, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert built.agent is agent and built.agent_id == agent.pk  # the related object is set, not re-read
    assert (built._state.adding, built._state.db) == (expected._state.adding, expected._state.db)
    # A default that is a callable is called for each row.
    assert built.id != new_row(ActionRequest, **values).id and isinstance(built.id, uuid.UUID)
    assert new_row(ActionRequest, agent_id=agent.pk, action_type="x").agent_id == agent.pk


def test_new_row_refuses_a_name_the_model_has_no_field_for(agent):
    with pytest.raises(TypeError, match="unexpected keyword arguments: not_a_field"):
        new_row(ActionRequest, agent=agent, not_a_field=1)
