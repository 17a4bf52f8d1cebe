"""Which agent an API key belongs to: the lookup every agent request starts with.

On PostgreSQL an agent read for its key carries how it was read (``agent.read``): the versions of its
row and of its key's row (``ROW_VERSION``: every UPDATE changes it, even one later in the same
transaction). A write can then check,
in its own condition, that neither changed since (``agent_key_unchanged_sql``).

That check lets a submission take the agent this process remembers for the key
(``agent_for_api_key_remembered``) and skip the lookup's round trip. Such an agent is unconfirmed:
the one-round-trip write checks its versions, and any other path reads it again first
(``agent_for_api_key_confirmed``). A revoked key, a disabled agent or any edit to either row is
therefore obeyed by the first submission after it, and that process then forgets what it remembered.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field
from django.db.models.expressions import Col
from django.utils import timezone

from ..models import Agent, AgentKey, hash_api_key

# How often a key's last_used_at is written: at most once a minute, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# A row version's identity (PostgreSQL): the transaction that wrote it (xmin) and where it lies (ctid).
# An UPDATE always makes a new version, with a new xmin, or (later in the same transaction) a new ctid.
ROW_VERSION = "({row}xmin::text || ' ' || {row}ctid::text)"
# How long a process may remember an agent before reading it again (which also writes last_used_at when due).
REMEMBERED_SECONDS = 30.0
# Keys remembered per process; past it, the oldest is forgotten.
REMEMBERED_KEYS_MAX = 10_000


@dataclass(frozen=True)
class AgentRead:
    """How an agent was read for its key (PostgreSQL): the key's hash, both rows' versions then, and
    whether it came from this process's memory (unconfirmed) rather than from the database."""

    key_hash: str
    agent_version: str
    key_version: str
    from_memory: bool = False


@dataclass(frozen=True)
class _Entry:
    values: tuple[Any, ...]
    key_id: int
    key_scopes: tuple[str, ...]
    read: AgentRead
    # Wall-clock time (time.time()), like last_used_at, which a read after it marks when due.
    until: float


_remembered: dict[str, _Entry] = {}
_remembered_lock = threading.Lock()


@cache
def _agent_fields() -> tuple[Field, ...]:
    return tuple(f for f in Agent._meta.concrete_fields if f.name != "webhook_secret")


@cache
def _json_field_indexes() -> tuple[int, ...]:
    return tuple(i for i, f in enumerate(_agent_fields()) if f.get_internal_type() == "JSONField")


def _key_and_agent_tables() -> str:
    """A key (``k``) joined to its agent (``a``), for the statements below."""
    q = connection.ops.quote_name
    return f"{q(AgentKey._meta.db_table)} k JOIN {q(Agent._meta.db_table)} a ON a.{q('id')} = k.{q('agent_id')}"


@cache
def _key_lookup_sql(vendor: str, by: str) -> str:
    """The agent of a live key found by ``by`` (its hash, or its id), with the key's id and scope:
    one statement, written once per database.

    Hand-written because every agent request runs it: the ORM spent three times the database's
    own time building this query (bench/README.md). The agent's webhook secret is left out (it
    is decrypted only when a webhook is signed, which loads it on its own). The key's id, its scope,
    whether its ``last_used_at`` is due and, on PostgreSQL, both rows' versions follow the agent's columns.
    """
    q = connection.ops.quote_name
    columns = ", ".join(f"a.{q(f.column)}" for f in _agent_fields())
    key_columns = f"k.{q('id')}, k.{q('action_scopes')}, (k.{q('last_used_at')} IS NULL OR k.{q('last_used_at')} < %s)"
    if vendor == "postgresql":
        key_columns += f", {ROW_VERSION.format(row='a.')}, {ROW_VERSION.format(row='k.')}"
    tables = _key_and_agent_tables()
    where = f"k.{q(by)} = %s AND k.{q('revoked_at')} IS NULL AND a.{q('is_active')} = %s"
    # Only the models' names and placeholders: no value is ever formatted into it.
    return f"SELECT {columns}, {key_columns} FROM {tables} WHERE {where}"  # noqa: S608


@cache
def _unchanged_sql(vendor: str) -> str:
    q = connection.ops.quote_name
    tables = _key_and_agent_tables()
    return (
        f"EXISTS (SELECT 1 FROM {tables} WHERE k.{q('id')} = %s AND a.{q('id')} = %s "  # noqa: S608
        f"AND {ROW_VERSION.format(row='k.')} = %s AND {ROW_VERSION.format(row='a.')} = %s)"
    )


@cache
def _converters(field: Field, vendor: str) -> tuple[Any, Col]:
    column = field.get_col(field.model._meta.db_table)
    return (*connection.ops.get_db_converters(column), *column.get_db_converters(connection)), column


def _from_db(field: Field, value: Any) -> Any:
    """``value`` as the ORM reads it into ``field`` (the database's converters, then the field's)."""
    converters, column = _converters(field, connection.vendor)
    for convert in converters:
        value = convert(value, column, connection)
    return value


def _agent_built(values: tuple[Any, ...], *, key_id: int, key_scopes: tuple[str, ...], read: AgentRead | None) -> Agent:
    agent = Agent.from_db(connection.alias, [f.attname for f in _agent_fields()], list(values))
    # The key's own scope travels with the agent object to the submit service (see action_request_submit).
    agent.key_scopes = key_scopes
    # Which key it was, for that key's own rate limit (approvals.services.containment).
    agent.key_id = key_id
    agent.read = read
    return agent


def _looked_up(by: str, value: Any, *, key_hash: str) -> Agent | None:
    """The agent from the database (and the key marked used when due); remembered for ``key_hash`` on PostgreSQL."""
    now = timezone.now()
    touch_before = connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION)
    with connection.cursor() as cursor:
        cursor.execute(_key_lookup_sql(connection.vendor, by), [touch_before, value, True])
        row = cursor.fetchone()
    if row is None:
        _forget(key_hash)
        return None
    fields = _agent_fields()
    values = tuple(map(_from_db, fields, row[: len(fields)]))
    key_id, key_scopes, touch_due, *versions = row[len(fields) :]
    key_scopes = tuple(_from_db(AgentKey._meta.get_field("action_scopes"), key_scopes) or ())
    if touch_due:
        key_version = _key_touched(key_id, now)
        if versions:
            versions[1] = key_version
    read = None
    if versions:
        read = AgentRead(key_hash=key_hash, agent_version=versions[0], key_version=versions[1])
        _remember(key_hash, _Entry(values, key_id, key_scopes, replace(read, from_memory=True), until=time.time()))
    return _agent_built(values, key_id=key_id, key_scopes=key_scopes, read=read)


def _key_touched(key_id: int, now: datetime) -> str | None:
    """Mark the key used; on PostgreSQL, the version of its row this made."""
    if connection.vendor != "postgresql":
        AgentKey.objects.filter(pk=key_id).update(last_used_at=now)
        return None
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(AgentKey._meta.db_table)} SET {q('last_used_at')} = %s WHERE {q('id')} = %s "  # noqa: S608
            f"RETURNING {ROW_VERSION.format(row='')}",
            [now, key_id],
        )
        return cursor.fetchone()[0]


def _remember(key_hash: str, entry: _Entry) -> None:
    entry = replace(entry, until=time.time() + REMEMBERED_SECONDS)
    with _remembered_lock:
        _remembered.pop(key_hash, None)
        while len(_remembered) >= REMEMBERED_KEYS_MAX:
            del _remembered[next(iter(_remembered))]
        _remembered[key_hash] = entry


def _forget(key_hash: str) -> None:
    with _remembered_lock:
        _remembered.pop(key_hash, None)


def agent_keys_forget_all() -> None:
    """Forget every remembered agent in this process (tests; nothing else needs it)."""
    with _remembered_lock:
        _remembered.clear()


def agent_for_api_key(raw_key: str) -> Agent | None:
    """The active agent whose live key this is, read from the database, or None; marks the key used
    (at most once a minute)."""
    key_hash = hash_api_key(raw_key)
    return _looked_up("key_hash", key_hash, key_hash=key_hash)


def agent_for_api_key_remembered(raw_key: str) -> Agent | None:
    """As ``agent_for_api_key``, but on PostgreSQL the agent this process read for the key in the
    last ``REMEMBERED_SECONDS``, unconfirmed (``agent.read.from_memory``), when there is one.

    Only for a caller that confirms it before acting (see the module's docstring).
    """
    key_hash = hash_api_key(raw_key)
    entry = _remembered.get(key_hash)
    if entry is None or entry.until < time.time() or connection.vendor != "postgresql":
        return _looked_up("key_hash", key_hash, key_hash=key_hash)
    values = list(entry.values)
    for index in _json_field_indexes():
        # Each request gets its own lists: nothing one request does to its agent reaches the next.
        values[index] = copy.deepcopy(values[index])
    return _agent_built(tuple(values), key_id=entry.key_id, key_scopes=entry.key_scopes, read=entry.read)


def agent_for_api_key_confirmed(agent: Agent) -> Agent | None:
    """``agent`` unless it came from this process's memory; then the agent its key belongs to now,
    read again, or None when the key was revoked or the agent disabled since."""
    read: AgentRead | None = getattr(agent, "read", None)
    if read is None or not read.from_memory:
        return agent
    return _looked_up("id", agent.key_id, key_hash=read.key_hash)


def agent_key_unchanged_sql(agent: Agent) -> tuple[str, list[Any]]:
    """An SQL condition (with its parameters) true while ``agent``'s row and its key's row are as
    they were read (PostgreSQL); ``("TRUE", [])`` for an agent not read for a key (a service's caller)."""
    read: AgentRead | None = getattr(agent, "read", None)
    if read is None:
        return "TRUE", []
    condition = _unchanged_sql(connection.vendor)
    return condition, [agent.key_id, agent.pk, read.key_version, read.agent_version]


def agent_reads_same(first: Agent, second: Agent) -> bool:
    """Whether two reads of an agent for its key saw the same rows (both versions equal), or
    neither was read for a key."""
    a: AgentRead | None = getattr(first, "read", None)
    b: AgentRead | None = getattr(second, "read", None)
    if a is None or b is None:
        return a is b
    return (a.agent_version, a.key_version) == (b.agent_version, b.key_version)
