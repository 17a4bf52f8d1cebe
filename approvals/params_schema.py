"""JSON Schemas that agents register for an action type's params, and checking params against them.

Pure functions over plain data (no ORM): what subset of JSON Schema we accept, and the list
of ``{"path", "message"}`` problems a reviewer's edited params have.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
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


# Agent-supplied patterns run in linear time (RE2), so no schema can stall the decide request
# with catastrophic backtracking; RE2 has no backreferences or lookaround, and says so.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _patterns(node: Any, path: list[Any]) -> Iterator[tuple[list[Any], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield [*path, key], value
            elif key == "patternProperties" and isinstance(value, dict):
                for expression in value:
                    yield [*path, key, expression], expression
            yield from _patterns(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _patterns(value, [*path, index])


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, properties: dict, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in properties.items():
        expression = _compiled(pattern)
        for name, value in instance.items():
            if expression.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


ParamsValidator = validators.extend(
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
)


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
    for path, expression in _patterns(schema, []):
        try:
            _compiled(expression)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            return [
                {
                    "path": json_pointer(path),
                    "message": f"Patterns are evaluated with RE2 (no backreferences or lookaround): {expression!r} "
                    f"is not accepted ({reason}).",
                }
            ]
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
    validator = ParamsValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems: list[dict[str, str]] = []
    for error in validator.iter_errors(params):
        for problem in _problem(error):
            if problem not in problems:
                problems.append(problem)
    problems.sort(key=lambda p: p["path"])
    return problems[:MAX_ERRORS_REPORTED]
