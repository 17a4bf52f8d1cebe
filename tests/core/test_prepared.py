"""core.prepared: a hot statement parsed and planned once per session, and never lost for good."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from psycopg.types.json import Jsonb

from core import prepared
from core.prepared import execute_prepared

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"),
]

QUOTED = "x'; DROP TABLE x; --"


@pytest.fixture
def sql(request) -> str:
    """A statement of this test's own: the test database's session outlives each test."""
    return f"SELECT %s::int + %s::int, %s::text /* {request.node.name} */"


def sent(queries) -> list[str]:
    """What reached the database, savepoints left out: EXECUTE with its first value, others by their first word."""
    words = []
    for query in queries.captured_queries:
        text = query["sql"]
        if not text.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            words.append(" ".join(text.split()[:2]) if text.startswith("EXECUTE") else text.split()[0])
    return words


def test_the_first_run_is_plain_the_second_prepares_then_every_run_executes(sql):
    name, _ = prepared._named(sql)
    with CaptureQueriesContext(connection) as queries:
        results = [execute_prepared(sql, [a, a + 1, QUOTED]) for a in (1, 3, 5)]
    assert results == [(3, QUOTED), (7, QUOTED), (11, QUOTED)]
    assert sent(queries) == ["SELECT", "PREPARE", f"EXECUTE {name}(3,", f"EXECUTE {name}(5,"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [name])
        assert cursor.fetchone() == (1,)


def test_statements_sent_before_it_run_first_in_the_same_query(request):
    probe = f"SELECT current_setting('countersign.probe', true) /* {request.node.name} */"
    for value in ("one", "two", "three"):
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            assert execute_prepared(probe, [], after=f"SET LOCAL countersign.probe = '{value}'") == (value,)
        assert [word for word in sent(queries) if word != "PREPARE"] == ["SET"]


def test_a_session_that_lost_its_prepared_statements_prepares_again(sql):
    execute_prepared(sql, [1, 1, ""]), execute_prepared(sql, [1, 1, ""])
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what DISCARD ALL, or a pooler's other server connection, leaves
    with CaptureQueriesContext(connection) as queries:
        assert execute_prepared(sql, [2, 2, ""])[0] == 4
    name, _ = prepared._named(sql)
    assert sent(queries) == [f"EXECUTE {name}(2,", "PREPARE", f"EXECUTE {name}(2,"]
    assert execute_prepared(sql, [3, 3, ""])[0] == 6


def test_a_statement_prepared_behind_its_bookkeeping_is_used(sql):
    execute_prepared(sql, [1, 1, ""]), execute_prepared(sql, [1, 1, ""])
    prepared._sessions.clear()  # as if this process forgot what the session holds
    assert execute_prepared(sql, [2, 4, ""])[0] == 6
    assert execute_prepared(sql, [2, 5, ""])[0] == 7  # PREPARE refused (it exists): used as it is
    assert execute_prepared(sql, [2, 6, ""])[0] == 8


@pytest.mark.django_db(transaction=True)
def test_a_connection_used_once_never_prepares(sql):
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert execute_prepared(sql, [1, 2, ""])[0] == 3
        assert sent(queries) == ["SELECT"]
        connection.close()  # a connection per request: no pool, CONN_MAX_AGE = 0


def test_a_failed_run_leaves_the_callers_transaction_usable(request):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE prepared_probe (id int PRIMARY KEY)")
    insert = f"INSERT INTO prepared_probe (id) VALUES (%s) RETURNING id /* {request.node.name} */"  # noqa: S608
    with transaction.atomic():
        assert [execute_prepared(insert, [n]) for n in (1, 2, 3)] == [(1,), (2,), (3,)]
        with pytest.raises(IntegrityError):
            execute_prepared(insert, [1])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM prepared_probe")
            assert cursor.fetchone() == (3,)


def test_a_changed_statement_is_a_new_one():
    assert prepared._named("SELECT %s::int")[0] != prepared._named("SELECT %s::int ")[0]
    assert prepared._named("SELECT %s::int + %s::int, %s::text")[1] == "SELECT $1::int + $2::int, $3::text"


def test_a_percent_sign_other_than_a_placeholder_is_refused():
    with pytest.raises(ValueError, match="placeholders"):
        prepared._named("SELECT 'a%b', %s")


def test_values_are_bound_as_mogrify_binds_them_and_read_back_unchanged(request):
    values = [
        QUOTED,
        "back\\slash and 'quotes' and \u00e9\u4e2d\U0001f600",
        None,
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        datetime.datetime(2026, 12, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC),
        decimal.Decimal("1.50"),
        True,
        -7,
        0.1,
        Jsonb({"a": [1, "x'y", None], "\\": "\\u00e9 written out"}),
    ]
    types = "text, text, text, uuid, timestamptz, numeric, boolean, int, float8, jsonb"
    sql = f"SELECT {', '.join(f'%s::{t}' for t in types.split(', '))} /* {request.node.name} */"
    with connection.cursor() as cursor:
        assert prepared._bound(prepared._session().literals, values) == cursor.mogrify(
            ", ".join(["%s"] * len(values)), values
        )
    for _ in range(3):  # plain, then prepared, then executed
        row = execute_prepared(sql, values)
        assert row[:9] == tuple(values[:9])
        assert json.loads(row[9]) == values[9].obj  # Django reads jsonb as text
