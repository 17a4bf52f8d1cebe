"""Transaction-scoped named locks: many holders of the shared side, or one of the exclusive side.

PostgreSQL: advisory locks (``pg_advisory_xact_lock[_shared]``), released at commit or rollback;
no row is locked, so holders of the shared side never wait for one another. SQLite: nothing to
do, because every transaction here is IMMEDIATE (config/settings.py): it takes the database's
one write lock when it begins, so two writing transactions never overlap at all.
"""

from __future__ import annotations

import hashlib

from django.db import connection


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
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"{function}(%s)" for _ in names), [_key(name) for name in names])
