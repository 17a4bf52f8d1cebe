"""OpenAPI postprocessing: the errors an operation can return because of what it is, documented
once here rather than in each view (a view documents only the errors of its own rules)."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
LIMIT_CODES = (
    "the JSON limits (`json_too_deep`, `json_too_large`, `invalid_characters`, `invalid_number`; "
    "`details.path` names the value, e.g. `params.a[3].b`)"
)
BODY_ERRORS = {
    "400": "The body is not valid JSON (`malformed_json`).",
    "413": "Body larger than COUNTERSIGN_MAX_BODY_BYTES (`payload_too_large`).",
    "422": f"The body breaks {LIMIT_CODES}.",
}


def _error(description: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": ERROR_REF}}, "description": description}


def add_body_limit_errors(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Each operation with a request body documents 400, 413 and 422 (the JSON limits, which the
    parser applies to every body before the view runs), adding the limit codes to a 422 it has."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in BODY_ERRORS.items():
                if status not in responses:
                    responses[status] = _error(description)
                elif status == "422" and "json_too_deep" not in responses[status].get("description", ""):
                    responses[status]["description"] = (
                        responses[status].get("description", "").rstrip() + f" Or the body breaks {LIMIT_CODES}."
                    ).strip()
    return result


SHARED_ERRORS = (
    # (applies to the operation?, status, description)
    (
        lambda operation: any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])),
        "400",
        "A query parameter contains a NUL character (`invalid_characters`).",
    ),
    (
        lambda operation: "requestBody" in operation,
        "415",
        "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).",
    ),
    (
        lambda operation: any(parameter.get("in") == "path" for parameter in operation.get("parameters", [])),
        "404",
        "Nothing at this path for you: no such resource, one you may not see, or a malformed id (`not_found`).",
    ),
    (
        lambda operation: any(requirement for requirement in operation.get("security", [])),
        "401",
        "No valid credentials (`not_authenticated`): see the operation's security schemes.",
    ),
)


def add_shared_errors(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Each operation documents the errors it returns because of its shape: 415 when it takes a
    body, 404 when its path has parameters (also Django's answer to a malformed one), 401 when it
    needs credentials. A status a view documents itself keeps the view's description."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for applies, status, description in SHARED_ERRORS:
                if status not in responses and applies(operation):
                    responses[status] = _error(description)
    return result
