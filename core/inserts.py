"""INSERT new rows with SQL written once per model, several rows in one round trip.

For the hottest writes (every submission writes a request and its first audit event): Django's
``save()`` builds its INSERT afresh on every call, which costs more than the database's own work
for one row (bench/README.md). The values are still prepared by the model fields themselves
(``pre_save``, ``get_db_prep_save``), as ``save()`` prepares them, so a column someone adds with a
default is filled in too. No ``pre_save``/``post_save`` signals are sent: use this only for models
no receiver listens to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection, models
from django.db.models.fields import AutoFieldMixin


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
    return [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in statement.fields]


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
