"""Agents register a JSON Schema for an action type's params; reviewers' edits are checked against it."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import ActionTypeSchema
from approvals.selectors import action_type_schema_get
from approvals.services import action_type_schema_delete, action_type_schema_put
from core.errors import InvalidInput
from core.serializers import error_doc
from core.timefmt import isoformat

from .serializers import ACTION_TYPE_REGEX, ActionTypeSchemaOutputSerializer


def _as_json(row: ActionTypeSchema) -> dict[str, Any]:
    return {
        "action_type": row.action_type,
        "schema": row.params_schema,
        "registered_by": row.registered_by.name if row.registered_by_id else None,
        "created_at": isoformat(row.created_at),
        "updated_at": isoformat(row.updated_at),
    }


def _checked_name(name: str) -> str:
    if not re.match(ACTION_TYPE_REGEX, name):
        raise InvalidInput(
            "Use the action type as agents submit it: lower-case letters, digits and _ . : -.",
            code="invalid_action_type",
        )
    return name


AUTH = {401: error_doc("Missing, unknown or revoked API key (`not_authenticated`).")}
NAME = {422: error_doc("The action type name is malformed (`invalid_action_type`).")}
EXAMPLE = {
    "type": "object",
    "required": ["to", "subject"],
    "properties": {
        "to": {"type": "string", "format": "email"},
        "subject": {"type": "string", "maxLength": 200},
        "priority": {"enum": ["low", "normal", "high"]},
    },
    "additionalProperties": False,
}


class ActionTypeSchemaView(APIView):
    @extend_schema(
        operation_id="action_type_schema_retrieve",
        summary="Read the params schema of an action type",
        responses={
            200: ActionTypeSchemaOutputSerializer,
            404: error_doc("No schema is registered for this action type (`not_found`)."),
            **AUTH,
            **NAME,
        },
    )
    def get(self, request, name):
        return Response(_as_json(action_type_schema_get(action_type=_checked_name(name))))

    @extend_schema(
        operation_id="action_type_schema_put",
        summary="Register or replace the params schema of an action type",
        description=(
            "The body **is** the JSON Schema (draft 2020-12), not wrapped in another object. Its top level "
            'must be `"type": "object"`; `$ref` may only point inside the schema (`#...`). Reviewers then '
            "get a form generated from it, and edited params that do not satisfy it (formats such as `email` "
            "included) are refused with `422 invalid_params`, each problem listed in `details.errors` as "
            "`{path, message}`. Only the agent that registered a schema (or an admin) may replace or delete it."
        ),
        request=OpenApiTypes.OBJECT,
        examples=[OpenApiExample("An email action", value=EXAMPLE, request_only=True)],
        responses={
            200: OpenApiResponse(ActionTypeSchemaOutputSerializer, description="Replaced."),
            201: OpenApiResponse(ActionTypeSchemaOutputSerializer, description="Registered."),
            400: error_doc("The body is not valid JSON (`malformed_json`)."),
            403: error_doc(
                "The action type is outside this key's scope (`out_of_scope`), or another agent registered "
                "its schema (`schema_owned_by_another_agent`)."
            ),
            409: error_doc("Another first registration won the race (`schema_conflict`): read it and retry."),
            413: error_doc("Body larger than COUNTERSIGN_MAX_BODY_BYTES (`payload_too_large`)."),
            415: error_doc("Body is not JSON (`unsupported_media_type`)."),
            422: error_doc(
                "Not a usable schema (`invalid_schema`, with `details.path` and `details.message`), or a "
                "malformed action type name (`invalid_action_type`)."
            ),
            **AUTH,
        },
    )
    def put(self, request, name):
        row, created = action_type_schema_put(agent=request.user, action_type=_checked_name(name), schema=request.data)
        return Response(_as_json(row), status=201 if created else 200)

    @extend_schema(
        operation_id="action_type_schema_delete",
        summary="Remove the params schema of an action type",
        request=None,
        responses={
            204: OpenApiResponse(description="Removed: edits are only checked for being a JSON object."),
            403: error_doc("Outside this key's scope (`out_of_scope`) or another agent's schema."),
            404: error_doc("No schema is registered for this action type (`not_found`)."),
            **AUTH,
            **NAME,
        },
    )
    def delete(self, request, name):
        action_type_schema_delete(agent=request.user, action_type=_checked_name(name))
        return Response(status=204)
