"""JSON Schemas that agents register for an action type's params, and checking params against them.

Pure functions over plain data (no ORM): what subset of JSON Schema we accept, and the list
of ``{"path", "message"}`` problems a reviewer's edited params have.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
MAX_SCHEMA_BYTES = 64 * 1024
MAX_ERRORS_REPORTED = 50
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")


def json_pointer(parts: Any) -> str:
    """RFC 6901: ``["to", 0]`` → ``/to/0``; the whole document is the empty string."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _references(node: Any, path: list[Any]) -> Iterator[tuple[list[Any], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in REFERENCE_KEYWORDS and isinstance(value, str):
                yield [*path, key], value
            yield from _references(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _references(value, [*path, index])


def schema_problems(schema: Any) -> list[dict[str, str]]:
    """Why this schema cannot be registered (empty when it can).

    Accepted: JSON Schema draft 2020-12 whose top level describes an object (params are
    always an object). Refused: references outside the document itself, because resolving
    them would make the gateway fetch URLs an agent chose.
    """
    if not isinstance(schema, dict):
        return [{"path": "", "message": "The schema must be a JSON object."}]
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        return [{"path": "", "message": f"The schema is larger than {MAX_SCHEMA_BYTES} bytes."}]
    if schema.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
        return [{"path": "/$schema", "message": f"Only JSON Schema draft 2020-12 ({DRAFT_2020_12}) is supported."}]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [{"path": json_pointer(exc.absolute_path), "message": exc.message}]
    if schema.get("type") != "object":
        return [{"path": "/type", "message": 'Params are a JSON object: the top level needs "type": "object".'}]
    for path, target in _references(schema, []):
        if not target.startswith("#"):
            return [
                {
                    "path": json_pointer(path),
                    "message": f"Only references within this schema (starting with '#') are allowed, not {target!r}.",
                }
            ]
    return []


def _problem(error: ValidationError) -> Iterator[dict[str, str]]:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # Point at the missing field itself, so a form can show the message beside it.
        for name in error.validator_value:
            if name not in error.instance:
                yield {"path": json_pointer([*path, name]), "message": f"{name!r} is required."}
        return
    yield {"path": json_pointer(path), "message": error.message}


def params_problems(schema: dict[str, Any], params: Any) -> list[dict[str, str]]:
    """Every way ``params`` fails ``schema`` (formats such as ``email`` checked), ordered by path."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems: list[dict[str, str]] = []
    for error in validator.iter_errors(params):
        for problem in _problem(error):
            if problem not in problems:
                problems.append(problem)
    problems.sort(key=lambda p: p["path"])
    return problems[:MAX_ERRORS_REPORTED]
