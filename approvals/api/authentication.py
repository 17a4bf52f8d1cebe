from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field
from django.db.models.expressions import Col
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from approvals.models import REVIEWER_TOKEN_PREFIX, Agent, AgentKey, hash_api_key

# How often a key's last_used_at is written: at most once a minute, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@cache
def _agent_fields() -> tuple[Field, ...]:
    return tuple(f for f in Agent._meta.concrete_fields if f.name != "webhook_secret")


@cache
def _key_lookup_sql(vendor: str) -> str:
    """The agent of a live key, with the key's id and scope: one statement, written once per database.

    Hand-written because every agent request runs it: the ORM spent three times the database's
    own time building this query (bench/README.md). The agent's webhook secret is left out (it
    is decrypted only when a webhook is signed, which loads it on its own). The key's id, its scope and
    whether its ``last_used_at`` is due follow the agent's columns.
    """
    q = connection.ops.quote_name
    columns = ", ".join(f"a.{q(f.column)}" for f in _agent_fields())
    key_columns = f"k.{q('id')}, k.{q('action_scopes')}, (k.{q('last_used_at')} IS NULL OR k.{q('last_used_at')} < %s)"
    tables = f"{q(AgentKey._meta.db_table)} k JOIN {q(Agent._meta.db_table)} a ON a.{q('id')} = k.{q('agent_id')}"
    where = f"k.{q('key_hash')} = %s AND k.{q('revoked_at')} IS NULL AND a.{q('is_active')} = %s"
    # Only the models' names and placeholders: no value is ever formatted into it.
    return f"SELECT {columns}, {key_columns} FROM {tables} WHERE {where}"  # noqa: S608


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


def agent_for_api_key(raw_key: str) -> Agent | None:
    """The active agent whose live key this is, or None; marks the key used (at most once a minute)."""
    now = timezone.now()
    touch_before = connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION)
    with connection.cursor() as cursor:
        cursor.execute(_key_lookup_sql(connection.vendor), [touch_before, hash_api_key(raw_key), True])
        row = cursor.fetchone()
    if row is None:
        return None
    *values, key_pk, key_scopes, key_touch_due = row
    fields = _agent_fields()
    agent = Agent.from_db(connection.alias, [f.attname for f in fields], list(map(_from_db, fields, values)))
    # The key's own scope travels with the agent object to the submit service (see action_request_submit).
    agent.key_scopes = tuple(_from_db(AgentKey._meta.get_field("action_scopes"), key_scopes) or ())
    # Which key it was, for that key's own rate limit (approvals.services.containment).
    agent.key_id = key_pk
    if key_touch_due:
        AgentKey.objects.filter(pk=key_pk).update(last_used_at=now)
    return agent


def bearer_token(header_value: bytes | str) -> str | None:
    if isinstance(header_value, bytes):
        header_value = header_value.decode("latin-1")
    parts = header_value.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


class AgentKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <agent API key>``."""

    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        token = bearer_token(header)
        if token is None:
            raise exceptions.AuthenticationFailed("Send the agent API key as 'Authorization: Bearer <key>'.")
        if token.startswith(REVIEWER_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                "This is a reviewer's personal access token: it works on /api/v1/review/ only. "
                "This endpoint takes an agent API key.",
                code="wrong_token_kind",
            )
        agent = agent_for_api_key(token)
        if agent is None:
            raise exceptions.AuthenticationFailed("This API key is unknown, revoked, or its agent is disabled.")
        return (agent, token)

    def authenticate_header(self, request):
        return 'Bearer realm="countersign"'


class IsAgent(BasePermission):
    message = "Only agents (with an API key) may call this endpoint."

    def has_permission(self, request, view):
        return isinstance(request.user, Agent)
