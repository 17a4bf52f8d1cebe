"""Statements PostgreSQL keeps parsed and planned for the session: ``PREPARE``d once per
connection, then ``EXECUTE``d.

For the hottest statements only. A submission's conditional INSERT (``core.inserts.insert_new_if``:
two rows, about 50 values and three subqueries) costs PostgreSQL more to parse and plan than to
run: 0.7 ms of backend CPU as plain text, 0.25 ms prepared (bench/README.md).

The values are still bound client-side, as Django binds them, into ``EXECUTE name(<values>)``, so
that the statement can follow others in the same query: one round trip, and a statement such as
``core.locks``' advisory locks still runs, and takes its snapshot, before it.

A connection is prepared on its second run of a statement, not its first: a connection opened for
one request (no pool, ``CONN_MAX_AGE = 0``) would otherwise pay a ``PREPARE`` round trip each time.
A session that lost its prepared statements (``DISCARD ALL``; a pooler in transaction mode, which
may hand the next query to another server connection) is noticed by its error, prepared again, and
the statement retried once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

import psycopg.errors
from django.db import DatabaseError, connection, transaction
from psycopg.adapt import Transformer

PREPARED = -1


@dataclass
class _Session:
    """What this module keeps per psycopg connection (a pooled one outlives Django's wrapper)."""

    # Writes values as literals, keeping the dumpers it found for each type.
    literals: Transformer
    # Statement name -> runs so far, or PREPARED once the session holds it.
    runs: dict[str, int] = field(default_factory=dict)


_sessions: WeakKeyDictionary[Any, _Session] = WeakKeyDictionary()


def _session() -> _Session:
    raw = connection.connection
    session = _sessions.get(raw)
    if session is None:
        session = _sessions[raw] = _Session(literals=Transformer.from_context(raw))
    return session


@cache
def _named(sql: str) -> tuple[str, str]:
    """The statement's name (from its text, so a changed statement is a new one) and its ``$n`` form."""
    if "%" in sql.replace("%s", ""):
        raise ValueError("a prepared statement's SQL may hold no '%' but its %s placeholders")
    count = iter(range(1, sql.count("%s") + 1))
    numbered = re.sub("%s", lambda _: f"${next(count)}", sql)
    return f"countersign_{hashlib.sha256(sql.encode()).hexdigest()[:24]}", numbered


def execute_prepared(sql: str, params: Sequence[Any], *, after: str = "") -> tuple[Any, ...] | None:
    """Run ``sql`` (``%s`` placeholders) with ``params`` and return its first row (None: no row).

    ``after``: statements (values already bound) sent before it in the same query; their results
    are skipped. PostgreSQL only. Inside a transaction each attempt has a savepoint of its own, so
    a failed one (an IntegrityError, a lost prepared statement) leaves the caller's transaction usable.
    """
    name, numbered = _named(sql)
    try:
        return _run(name, numbered, sql, params, after=after)
    except DatabaseError as exc:
        lost = isinstance(exc.__cause__, psycopg.errors.InvalidSqlStatementName)
        if not lost or connection.connection is None:
            raise
        # The session lost it (DISCARD ALL, a pooler): prepare it again, and run it again once.
        _session().runs[name] = 1
        return _run(name, numbered, sql, params, after=after)


def _run(name: str, numbered: str, sql: str, params: Sequence[Any], *, after: str) -> tuple[Any, ...] | None:
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        statement = _statement(cursor, name, numbered, sql, params)
        cursor.execute(f"{after}; {statement}" if after else statement)
        # Skip the results of ``after``'s statements: the last result is the statement's own.
        while cursor.nextset():
            pass
        return cursor.fetchone()


def _statement(cursor: Any, name: str, numbered: str, sql: str, params: Sequence[Any]) -> str:
    """What to send: the plain statement on this session's first run, EXECUTE from the second on
    (PREPAREd first, in a round trip of its own)."""
    session = _session()
    runs = session.runs.get(name, 0)
    if runs == 0:
        session.runs[name] = 1
        return cursor.mogrify(sql, params)
    if runs != PREPARED:
        try:
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                cursor.execute(f"PREPARE {name} AS {numbered}")
        except DatabaseError as exc:
            # Already there (prepared by a run whose bookkeeping was lost): use it.
            if not isinstance(exc.__cause__, psycopg.errors.DuplicatePreparedStatement):
                raise
        session.runs[name] = PREPARED
    return f"EXECUTE {name}({_bound(session.literals, params)})" if params else f"EXECUTE {name}"


def _bound(literals: Transformer, params: Sequence[Any]) -> str:
    """``params`` as SQL literals, comma-separated, quoted as ``mogrify`` quotes them.

    Each value goes straight to psycopg's literal writer: ``mogrify`` would also parse a query of
    placeholders and format the values into it, which cost as much again (bench/README.md).
    """
    literal = literals.as_literal
    return b", ".join([literal(value) for value in params]).decode(literals.encoding)
