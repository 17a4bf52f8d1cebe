"""INSERT new rows with SQL written once per model, several rows in one round trip.

For the hottest writes (every submission writes a request and its first audit event): Django's
``save()`` builds its INSERT afresh on every call, which costs more than the database's own work
for one row (bench/README.md). The values are still prepared by the model fields themselves
(``pre_save``, ``get_db_prep_save``), as ``save()`` prepares them, so a column someone adds with a
default is filled in too. No ``pre_save``/``post_save`` signals are sent: use this only for models
no receiver listens to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import DEFERRED
from django.db.models.fields import AutoFieldMixin

from .locks import lock_statement
from .prepared import execute_prepared


@cache
def _row_fields(model: type[models.Model]) -> tuple[tuple[models.Field, ...], frozenset[str]]:
    """The model's concrete fields in order, and the names of those that take a related object."""
    fields = tuple(model._meta.concrete_fields)
    return fields, frozenset(f.name for f in fields if f.is_relation and f.name != f.attname)


def new_row[M: models.Model](model: type[M], **values: Any) -> M:
    """``model(**values)`` without ``Model.__init__``'s keyword search, for the rows every submission
    and decision builds (``ActionRequest`` with its agent: 22 -> 19 us; bench/README.md).

    Built as Django builds a row it read: every concrete field's value in order, a field not given
    taking its default (a generated field none). A related object given by name (``agent=...``)
    is then set through its descriptor, as ``model(**values)`` sets it. Concrete fields only.
    """
    fields, relations = _row_fields(model)
    related = {name: values.pop(name) for name in relations & values.keys()}
    args = [
        values.pop(f.attname) if f.attname in values else DEFERRED if f.generated else f.get_default() for f in fields
    ]
    if values:
        raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {', '.join(sorted(values))}")
    row = model(*args)
    for name, obj in related.items():
        setattr(row, name, obj)
    return row


@dataclass(frozen=True)
class InsertStatement:
    sql: str
    fields: tuple[models.Field, ...]
    # The database-generated primary key, read back after the INSERT (None: the row brings its own).
    generated_key: models.Field | None


@cache
def insert_statement(model: type[models.Model], vendor: str) -> InsertStatement:
    """The INSERT of one ``model`` row, every concrete column but a generated primary key."""
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not isinstance(f, AutoFieldMixin) and not f.generated)
    generated_key = meta.pk if isinstance(meta.pk, AutoFieldMixin) else None
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Table and column names come from the models and are quoted; values are parameters.
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    if generated_key is not None and vendor == "postgresql":
        sql += f" RETURNING {quote(generated_key.column)}"
    return InsertStatement(sql=sql, fields=fields, generated_key=generated_key)


def insert_params(obj: models.Model, statement: InsertStatement) -> list[Any]:
    # The connection itself, not the ``connection`` proxy: each field reads it several times.
    wrapper = connections[DEFAULT_DB_ALIAS]
    return [f.get_db_prep_save(f.pre_save(obj, add=True), wrapper) for f in statement.fields]


def insert_new(*objs: models.Model) -> None:
    """INSERT ``objs`` in this order, as ``obj.save(force_insert=True)`` would, and set each generated key.

    PostgreSQL: one round trip (the INSERTs go as statements of one query). Elsewhere one per row.
    """
    statements = [insert_statement(type(obj), connection.vendor) for obj in objs]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Each statement bound on its own, as the one query would bind them (client-side): psycopg keeps
            # how to bind a statement of up to 50 parameters, and a request with its first event has 57.
            cursor.execute(
                "; ".join(cursor.mogrify(s.sql, insert_params(obj, s)) for obj, s in zip(objs, statements, strict=True))
            )
            for index, (obj, statement) in enumerate(zip(objs, statements, strict=True)):
                if statement.generated_key is not None:
                    setattr(obj, statement.generated_key.attname, cursor.fetchone()[0])
                if index < len(objs) - 1:
                    cursor.nextset()
        else:
            for obj, statement in zip(objs, statements, strict=True):
                cursor.execute(statement.sql, insert_params(obj, statement))
                if statement.generated_key is not None:
                    setattr(obj, statement.generated_key.attname, cursor.lastrowid)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _select_cast(field: models.Field) -> str:
    """The type a value is cast to in an INSERT ... SELECT: a SELECT's untyped literals would be text.

    A bounded string is cast to ``text``: the column's own type is then applied on assignment, which
    refuses a value too long where an explicit ``varchar(n)`` cast would cut it short.
    """
    db_type = field.db_type(connection)
    return "text" if re.fullmatch(r"(varchar|char)\(\d+\)", db_type) else db_type


@cache
def insert_select_statement(model: type[models.Model]) -> InsertStatement:
    """``INSERT INTO <table> (<columns>) SELECT <values cast to their types>`` (PostgreSQL), to be
    followed by a WHERE or a FROM that decides whether the row is written."""
    statement = insert_statement(model, "postgresql")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in statement.fields)
    values = ", ".join(f"%s::{_select_cast(f)}" for f in statement.fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT {values}"
    return InsertStatement(sql=sql, fields=statement.fields, generated_key=statement.generated_key)


def insert_new_if(*objs: models.Model, condition: str, params: Sequence[Any], shared_locks: Sequence[str] = ()) -> bool:
    """INSERT ``objs`` in this order, all or none, only if ``condition`` holds; PostgreSQL, one round trip.

    ``condition`` is an SQL expression with ``params``, read in the snapshot of the statement that
    writes the rows. That statement comes after the one taking the shared side of ``shared_locks``
    (``core.locks``), in the same query: under READ COMMITTED it sees everything committed before
    the locks were granted, and the locks are held until its transaction ends. Outside
    ``transaction.atomic`` the query is a transaction of its own, without BEGIN or COMMIT; inside,
    it has a savepoint, so a failed INSERT (an IntegrityError) leaves the caller's transaction
    usable. The statement is prepared for the session (``core.prepared``). Returns whether the rows
    were written; each generated key is set, as ``insert_new`` does.
    """
    if connection.vendor != "postgresql":
        raise NotImplementedError("insert_new_if is written for PostgreSQL only")
    statements = [insert_select_statement(type(obj)) for obj in objs]
    values: list[Any] = []
    for index, (obj, statement) in enumerate(zip(objs, statements, strict=True)):
        values += insert_params(obj, statement)
        if index == 0:
            values += params
    locks = lock_statement(shared_locks, exclusive=False) if shared_locks else ""
    row = execute_prepared(_conditional_insert_sql(tuple(type(obj) for obj in objs), condition), values, after=locks)
    if row is None:
        return False
    for obj, statement, key in zip(objs, statements, row, strict=True):
        if statement.generated_key is not None:
            setattr(obj, statement.generated_key.attname, key)
        obj._state.adding = False
        obj._state.db = connection.alias
    return True


@cache
def _conditional_insert_sql(models_: tuple[type[models.Model], ...], condition: str) -> str:
    """``WITH written_0 AS (INSERT ... WHERE <condition> RETURNING pk), written_1 AS (INSERT ... FROM
    written_0 RETURNING pk), ... SELECT <each pk>``: the rows after the first are written only with it."""
    quote = connection.ops.quote_name
    returned = [quote(model._meta.pk.column) for model in models_]
    parts = []
    for index, (model, pk) in enumerate(zip(models_, returned, strict=True)):
        gate = f"WHERE {condition}" if index == 0 else f"FROM written_{index - 1}"
        parts.append(f"written_{index} AS ({insert_select_statement(model).sql} {gate} RETURNING {pk})")
    tables = ", ".join(f"written_{index}" for index in range(len(models_)))
    keys = ", ".join(f"written_{index}.{pk}" for index, pk in enumerate(returned))
    return f"WITH {', '.join(parts)} SELECT {keys} FROM {tables}"  # noqa: S608
