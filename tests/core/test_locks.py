"""core.locks: named transaction locks, taken in the same round trip as what follows them."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from core.locks import lock_statement, transaction_lock, transaction_lock_then_read

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's"),
]


def advisory_locks_held() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY mode")
        return [mode for (mode,) in cursor.fetchall()]


def test_the_lock_statement_names_each_lock_by_a_64_bit_key_of_its_name_and_never_the_name_itself():
    statement = lock_statement(["gate:agent:1", "x'); DROP TABLE y; --"], exclusive=False)
    assert statement.startswith("SELECT pg_advisory_xact_lock_shared(")
    assert "DROP" not in statement and "%" not in statement
    assert lock_statement(["gate:agent:1"], exclusive=True) == lock_statement(["gate:agent:1"], exclusive=True)
    assert lock_statement(["gate:agent:1"], exclusive=True) != lock_statement(["gate:agent:2"], exclusive=True)


def test_locks_are_held_until_the_transaction_ends_and_the_read_after_them_gets_its_parameters():
    with transaction.atomic():
        transaction_lock("one", "two", exclusive=False)
        assert advisory_locks_held() == ["ShareLock", "ShareLock"]
        rows = transaction_lock_then_read("three", exclusive=True, sql="SELECT %s::int + %s::int", params=[40, 2])
        assert rows == [(42,)]
        assert advisory_locks_held() == ["ExclusiveLock", "ShareLock", "ShareLock"]
    assert advisory_locks_held() == []
