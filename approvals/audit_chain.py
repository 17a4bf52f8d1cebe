"""The audit trail as a hash chain: what an event's hash covers, and checking a request's chain.

Each request's events form a chain of their own, so concurrent requests never wait on one
global chain. Event ``n`` of a request stores ``position = n``, ``prev_hash`` (the hash of
event ``n - 1``, "" for the first) and ``hash``, the SHA-256 hex digest of the canonical JSON
(``core.canonical``: sorted keys, no spaces, UTF-8) of::

    {"position": n, "prev_hash": "...", "request_id": "<the request's UUID, 8-4-4-4-12>",
     "kind": "...", "from_status": "...", "to_status": "...",
     "actor_kind": "...", "actor_label": "...", "data": {...},
     "created_at": "YYYY-MM-DDTHH:MM:SS.ffffffZ"}

``created_at`` is written in UTC with microseconds. ``data`` is hashed as the database gives
it back: a float with no fractional part counts as the integer it equals (PostgreSQL's jsonb
returns ``1e20`` as ``100000000000000000000``). With ``COUNTERSIGN_AUDIT_HMAC_KEY`` set, the
digest is HMAC-SHA256 of the same text under that key.

The request row keeps the chain's head (``audit_length``, ``audit_head``), so deleting the
last event is detected as well as editing, inserting or deleting any other. Events are
appended only by ``services._effects.audit``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import transaction

from core.canonical import canonical_json, sha256_hex

from .models import ActionRequest, AuditEvent

EDITED = "edited"
INSERTED = "inserted"
DELETED = "deleted"

# The columns a chain check reads (the admin and the page may load more).
CHAIN_FIELDS = (
    "id",
    "request_id",
    "position",
    "prev_hash",
    "hash",
    "kind",
    "from_status",
    "to_status",
    "actor_kind",
    "actor_label",
    "data",
    "created_at",
)


class ChainedEvent(Protocol):
    request_id: Any
    position: int
    prev_hash: str
    hash: str
    kind: str
    from_status: str
    to_status: str
    actor_kind: str
    actor_label: str
    data: Any
    created_at: datetime


class _NotPlainJson(Exception):
    """A value a JSON round trip would change in a way ``_as_stored`` does not write out itself."""


def _as_stored(value: Any) -> Any:
    """``value`` as it reads back from a JSON column on SQLite and PostgreSQL alike: tuples become
    lists, and a float with no fractional part the integer it equals.

    Plain JSON values (string keys, lists, tuples, strings, numbers, booleans, null) are walked
    once; anything else (a key that is not a string, a value of another type) takes a real JSON
    round trip, which also refuses what the column would refuse.
    """
    try:
        return _plain_as_stored(value)
    except (_NotPlainJson, RecursionError):
        return _plain_as_stored(json.loads(json.dumps(value)))


def _plain_as_stored(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _NotPlainJson
        return {key: _plain_as_stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_as_stored(item) for item in value]
    raise _NotPlainJson


def _uuid_text(value: Any) -> str:
    return str(value) if isinstance(value, UUID) else str(UUID(str(value)))


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_event_hash(event: ChainedEvent) -> str:
    """The hash ``event`` must carry, from its content, its position and the hash before it."""
    text = canonical_json(
        {
            "position": event.position,
            "prev_hash": event.prev_hash,
            "request_id": _uuid_text(event.request_id),
            "kind": event.kind,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor_kind": event.actor_kind,
            "actor_label": event.actor_label,
            "data": _as_stored(event.data),
            "created_at": _timestamp(event.created_at),
        }
    )
    key = settings.COUNTERSIGN_AUDIT_HMAC_KEY
    if key:
        return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    return sha256_hex(text)


@dataclass(frozen=True)
class ChainProblem:
    """One sign of tampering: at which position, of which kind, in words."""

    request_id: str
    position: int
    tampering: str
    detail: str

    def __str__(self) -> str:
        return f"request {self.request_id} position {self.position}: {self.tampering}: {self.detail}"


@dataclass(frozen=True)
class ChainCheck:
    request_id: str
    events: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_chain_check(
    *, request_id: Any, audit_length: int, audit_head: str, events: Iterable[ChainedEvent]
) -> ChainCheck:
    """Check one request's events, in position order, against each other and the request's head.

    Pure: reads nothing. ``events`` is consumed once, so a streamed queryset stays streamed.
    """
    request_id = str(request_id)
    problems: list[ChainProblem] = []

    def found(position: int, tampering: str, detail: str) -> None:
        problems.append(ChainProblem(request_id, position, tampering, detail))

    expected = 1
    previous_hash = ""
    before_previous: str | None = None
    previous_kind = ""
    last_position = 0
    count = 0
    for event in events:
        count += 1
        position = event.position
        if audit_event_hash(event) != event.hash:
            found(
                position,
                EDITED,
                f"event {position} ({event.kind}) does not match its hash: its content or position was changed",
            )
        if position < expected:
            found(position, INSERTED, f"a second event at position {position} ({event.kind})")
        elif position > expected:
            missing = f"event {expected} is" if position == expected + 1 else f"events {expected} to {position - 1} are"
            found(expected, DELETED, f"{missing} missing")
        elif event.prev_hash != previous_hash:
            if position > 2 and event.prev_hash == before_previous:
                found(
                    position - 1,
                    INSERTED,
                    f"event {position - 1} ({previous_kind}) is not in the chain: event {position} follows "
                    f"event {position - 2}",
                )
            else:
                found(
                    position,
                    EDITED,
                    f"event {position} ({event.kind}) does not follow event {position - 1}: an event before it "
                    "was rewritten, inserted or deleted",
                )
        before_previous, previous_hash, previous_kind = previous_hash, event.hash, event.kind
        expected = max(expected, position + 1)
        last_position = max(last_position, position)
    if last_position < audit_length:
        missing = (
            f"event {audit_length} is"
            if last_position + 1 == audit_length
            else f"events {last_position + 1} to {audit_length} are"
        )
        found(last_position + 1, DELETED, f"{missing} missing (the request records {audit_length} events)")
    elif last_position > audit_length:
        found(
            last_position,
            INSERTED,
            f"the chain holds events up to position {last_position}, the request records {audit_length}",
        )
    elif previous_hash != audit_head:
        found(last_position, EDITED, f"event {last_position}, the last, does not match the hash the request records")
    return ChainCheck(request_id=request_id, events=count, problems=tuple(problems))


def audit_chain_verify_request(*, request_id: Any, chunk_size: int = 1000) -> ChainCheck:
    """Check one request's chain as of one moment.

    The request row is locked first: an appender holds that lock from its head update to its
    commit, so the head and the events read next belong together (no append half-seen).
    Raises ``ActionRequest.DoesNotExist``.
    """
    with transaction.atomic():
        audit_length, audit_head = (
            ActionRequest.objects.select_for_update().filter(pk=request_id).values_list("audit_length", "audit_head")
        ).get()
        events = (
            AuditEvent.objects.filter(request_id=request_id)
            .order_by("position", "id")
            .only(*CHAIN_FIELDS)
            .iterator(chunk_size=chunk_size)
        )
        return audit_chain_check(request_id=request_id, audit_length=audit_length, audit_head=audit_head, events=events)


def audit_chain_verify_all(*, chunk_size: int = 500) -> Iterator[ChainCheck]:
    """Every request's chain, ``chunk_size`` requests at a time, their events streamed: constant memory.

    A chain that fails while writers are appending is checked again under its row lock
    (``audit_chain_verify_request``) before it is reported, so a race is never called tampering.
    """
    after = None
    while True:
        heads = ActionRequest.objects.order_by("pk")
        if after is not None:
            heads = heads.filter(pk__gt=after)
        rows = list(heads.values_list("pk", "audit_length", "audit_head")[:chunk_size])
        if not rows:
            return
        after = rows[-1][0]
        batch = {pk: (length, head) for pk, length, head in rows}
        events = (
            AuditEvent.objects.filter(request_id__in=list(batch))
            .order_by("request_id", "position", "id")
            .only(*CHAIN_FIELDS)
            .iterator(chunk_size=chunk_size)
        )
        suspects = []
        for request_id, chain in groupby(events, key=lambda event: event.request_id):
            audit_length, audit_head = batch.pop(request_id)
            check = audit_chain_check(
                request_id=request_id, audit_length=audit_length, audit_head=audit_head, events=chain
            )
            if check.ok:
                yield check
            else:
                suspects.append(request_id)
        for request_id, (audit_length, audit_head) in batch.items():
            check = audit_chain_check(
                request_id=request_id, audit_length=audit_length, audit_head=audit_head, events=()
            )
            if check.ok:
                yield check
            else:
                suspects.append(request_id)
        for request_id in suspects:
            try:
                yield audit_chain_verify_request(request_id=request_id, chunk_size=chunk_size)
            except ActionRequest.DoesNotExist:
                continue  # deleted since the batch was read: nothing left to vouch for
