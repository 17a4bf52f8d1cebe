"""Every audit event is a link in its request's hash chain, appended by the one writer."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.audit_chain import _as_stored, _plain_as_stored, audit_chain_verify_request
from approvals.models import ActionRequest, AuditEvent, Status
from approvals.services._effects import audit
from tests.factories import PendingRequestFactory
from tests.helpers import audited

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]


def append(request: ActionRequest, **data) -> AuditEvent:
    with transaction.atomic():
        return audit(request, kind="note", now=timezone.now(), actor_kind="system", actor_label="test", data=data)


def test_events_take_positions_one_two_three_each_linked_to_the_hash_before(agent, alice):
    request = audited(agent, alice)

    events = list(AuditEvent.objects.filter(request=request).order_by("position"))

    assert [(e.position, e.kind) for e in events] == [
        (1, "submitted"),
        (2, "approved"),
        (3, "executed"),
        (4, "violation"),
    ]
    assert [e.prev_hash for e in events] == ["", events[0].hash, events[1].hash, events[2].hash]
    assert (request.audit_length, request.audit_head) == (4, events[3].hash)
    assert audit_chain_verify_request(request_id=request.pk).ok


def documented_text(event: AuditEvent) -> str:
    """The canonical JSON the README and approvals.audit_chain document, written out by hand."""
    document = {
        "position": event.position,
        "prev_hash": event.prev_hash,
        "request_id": str(event.request_id),
        "kind": event.kind,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor_kind": event.actor_kind,
        "actor_label": event.actor_label,
        "data": event.data,
        "created_at": event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_the_hash_is_sha256_of_the_documented_canonical_json(agent, alice):
    request = audited(agent, alice)
    event = AuditEvent.objects.get(request=request, position=2)

    assert (event.kind, event.actor_label) == ("approved", "alice")
    assert event.hash == hashlib.sha256(documented_text(event).encode()).hexdigest()


@override_settings(COUNTERSIGN_AUDIT_HMAC_KEY="a key kept outside the database")
def test_with_a_key_the_hash_is_hmac_sha256_of_the_same_text():
    request = PendingRequestFactory()

    event = append(request, n=1)

    text = documented_text(AuditEvent.objects.get(pk=event.pk)).encode()
    assert event.hash == hmac.new(b"a key kept outside the database", text, hashlib.sha256).hexdigest()
    assert audit_chain_verify_request(request_id=request.pk).ok


def test_a_chain_written_under_a_key_fails_under_another_key_or_none():
    with override_settings(COUNTERSIGN_AUDIT_HMAC_KEY="the key"):
        request = PendingRequestFactory()
        append(request, n=1)

    for other in ("another key", ""):
        with override_settings(COUNTERSIGN_AUDIT_HMAC_KEY=other):
            check = audit_chain_verify_request(request_id=request.pk)
            assert [(p.position, p.tampering) for p in check.problems] == [(1, "edited")]


def test_data_reads_back_with_the_same_hash_whatever_the_database_does_to_numbers():
    request = PendingRequestFactory()
    append(request, big=1e20, whole=2.0, small=1.5e-7, negative_zero=-0.0, nested={"list": [1.0, 0.1, (1, 2)]})

    assert audit_chain_verify_request(request_id=request.pk).ok


def test_data_a_json_round_trip_would_change_is_hashed_as_it_reads_back():
    request = PendingRequestFactory()
    append(request, keys={1: "one", None: "none", 2.5: "float"}, status=Status.PENDING, flag=True, pair=("a", 2.0))

    assert audit_chain_verify_request(request_id=request.pk).ok


@pytest.mark.parametrize(
    "data",
    [
        {"verdict": {"mode": "auto", "skipped": [], "policy_id": 1, "usage": {"count": 3.0}}},
        {"nested": [[1.0, -0.0, 1e20, 0.5], (True, None, "x")], "empty": {}},
        {1: "integer key", "1": "string key"},
        {"status": Status.ALLOWED, "enum_key": {Status.PENDING: 1}},
        {"deep": [[[[[[[[[[{"x": 1.0}]]]]]]]]]]},
    ],
)
def test_data_is_hashed_as_a_json_round_trip_of_it_reads(data):
    def round_trip(value):
        value = json.loads(json.dumps(value))
        return _plain_as_stored(value)

    assert _as_stored(data) == round_trip(data)
    assert json.dumps(_as_stored(data), sort_keys=True) == json.dumps(round_trip(data), sort_keys=True)


def test_a_request_object_read_before_another_append_still_appends_at_the_next_position():
    request = PendingRequestFactory()
    stale = ActionRequest.objects.get(pk=request.pk)
    append(request, n=1)
    append(request, n=2)

    event = append(stale, n=3)

    assert (event.position, event.prev_hash) == (3, AuditEvent.objects.get(request=request, position=2).hash)
    assert audit_chain_verify_request(request_id=request.pk).ok


def test_appending_costs_one_update_of_the_head_beside_the_insert():
    request = PendingRequestFactory()
    append(request, n=1)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        audit(request, kind="note", now=timezone.now(), actor_kind="system", actor_label="test")

    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert statements == ["UPDATE", "INSERT"]


@pytest.mark.django_db(transaction=True)
def test_audit_outside_a_transaction_is_refused():
    request = PendingRequestFactory()

    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit(request, kind="note", now=timezone.now(), actor_kind="system", actor_label="test")

    assert not AuditEvent.objects.filter(request=request).exists()


def test_the_admin_shows_the_chain_in_order_and_read_only(client, admin_user, agent, alice):
    request = audited(agent, alice)
    client.force_login(admin_user)

    html = client.get(f"/admin/approvals/actionrequest/{request.pk}/change/").content.decode()

    hashes = list(AuditEvent.objects.filter(request=request).order_by("position").values_list("hash", flat=True))
    assert [html.rindex(h) for h in hashes] == sorted(html.rindex(h) for h in hashes)
    assert 'name="audit_events-0-data"' not in html
