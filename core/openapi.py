"""OpenAPI postprocessing: the errors every operation that takes a JSON body can return."""

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
