"""Transaction-scoped named locks: many holders of the shared side, or one of the exclusive side.

PostgreSQL: advisory locks (``pg_advisory_xact_lock[_shared]``), released at commit or rollback;
no row is locked, so holders of the shared side never wait for one another. SQLite: nothing to
do, because every transaction here is IMMEDIATE (config/settings.py): it takes the database's
one write lock when it begins, so two writing transactions never overlap at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import connection


@lru_cache(maxsize=4096)
def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def transaction_lock(*names: str, exclusive: bool) -> None:
    """Hold the locks ``names`` until the current transaction ends, taken in one round trip.

    Call inside ``transaction.atomic``.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("transaction_lock must be taken inside a transaction")
    if connection.vendor != "postgresql" or not names:
        return
    with connection.cursor() as cursor:
        cursor.execute(lock_statement(names, exclusive=exclusive))


def transaction_lock_then_read(*names: str, exclusive: bool, sql: str, params: Sequence[Any]) -> list[tuple]:
    """``transaction_lock``, then one read that sees everything committed before the locks were granted.

    One round trip: on PostgreSQL the lock and the read go as two statements of one query, and
    under READ COMMITTED each statement takes its own snapshot, so the read's is taken once the
    locks are held. Returns the read's rows. Call inside ``transaction.atomic``.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("transaction_lock_then_read must be called inside a transaction")
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or not names:
            cursor.execute(sql, params)
            return cursor.fetchall()
        cursor.execute(f"{lock_statement(names, exclusive=exclusive)}; {sql}", params)
        cursor.nextset()
        return cursor.fetchall()


def lock_statement(names: Sequence[str], *, exclusive: bool) -> str:
    """The SELECT taking ``names`` (PostgreSQL), for a caller sending it with other statements.

    The keys are written in (integers this module computes, never text from outside): no binding
    to pay for on the submit path, which sends it before every write.
    """
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    return "SELECT " + ", ".join(f"{function}({_key(name)})" for name in names)
