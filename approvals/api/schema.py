"""drf-spectacular only sees DRF views; the async long-poll view is a plain Django view,
so this hook documents it, with every status it can return."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


def _error_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def add_wait_endpoint(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    paths = result.setdefault("paths", {})
    paths["/api/v1/actions/{request_id}/wait"] = {
        "get": {
            "operationId": "actions_wait",
            "summary": "Wait for a decision (long-poll)",
            "description": (
                "Returns as soon as the request leaves `pending` (approved, rejected, expired, cancelled), or "
                "after `timeout` seconds with the request still `pending`: call again. Holds no server thread."
            ),
            "tags": ["api"],
            "parameters": [
                {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
                {
                    "name": "timeout",
                    "in": "query",
                    "required": False,
                    "description": "Seconds to wait, 0 to 55 (default 30).",
                    "schema": {"type": "number", "minimum": 0, "maximum": 55},
                },
            ],
            "security": [{"AgentKey": []}],
            "responses": {
                "200": {
                    "description": "The request, decided or still pending at the timeout.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionRequestOutput"}}},
                },
                "400": _error_ref("`invalid_timeout`: timeout is not a number from 0 to 55."),
                "401": _error_ref("`not_authenticated`: missing, unknown or revoked API key."),
                "404": _error_ref("`not_found`: no such request for this agent."),
            },
        }
    }
    return result


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("Submissions allowed per minute by the tightest limit (the agent's or the key's)."),
    "RateLimit-Remaining": _header("Submissions left in the current one-minute window."),
    "RateLimit-Reset": _header("Seconds until the oldest counted submission leaves the window."),
}
RETRY_AFTER = {"Retry-After": _header("Seconds to wait before submitting again (on `rate_limited`).")}


def add_rate_limit_headers(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular cannot attach headers to a response: the submit operation's are added here."""
    operation = result.get("paths", {}).get("/api/v1/actions/", {}).get("post")
    if not operation:
        return result
    for status, response in operation.get("responses", {}).items():
        if status in {"200", "201"}:
            response["headers"] = dict(RATE_LIMIT_HEADERS)
        elif status == "429":
            response["headers"] = {**RETRY_AFTER, **RATE_LIMIT_HEADERS}
    return result


class AgentKeyScheme(OpenApiAuthenticationExtension):
    """Documents approvals.api.authentication.AgentKeyAuthentication as the ``AgentKey`` bearer scheme."""

    target_class = "approvals.api.authentication.AgentKeyAuthentication"
    match_subclasses = True
    name = "AgentKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The agent's API key."}
