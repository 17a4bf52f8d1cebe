"""The one set of limits on JSON that comes in through any door (agent API, policies API,
reviewer endpoints, the queue's websocket).

``loads_limited(text)`` parses JSON text and refuses, with a stable code and the path of the
offending value (``details.path``, e.g. ``params.a[3].b``):

- ``json_too_deep``: more than COUNTERSIGN_JSON_MAX_DEPTH nested objects/arrays. The depth is
  counted on the text, without recursion and before ``json.loads`` sees it: Python's parser
  recurses once per level, and 50,000 levels end in a RecursionError (a 500).
- ``json_too_large``: an object with more than COUNTERSIGN_JSON_MAX_KEYS keys, an array with more
  items, or a string (or key) longer than COUNTERSIGN_JSON_MAX_STRING characters.
- ``invalid_characters``: U+0000 (PostgreSQL's jsonb and text columns refuse it, SQLite stores it:
  refusing it everywhere keeps both databases alike) or a lone surrogate (``"\\ud800"``: it
  cannot be encoded as UTF-8, so it breaks the database or the response later).
- ``invalid_number``: ``NaN``, ``Infinity``, ``-Infinity`` (not JSON, though Python accepts them),
  numbers that overflow a float (``1e400``) and integers too long to convert.

Depth counts every object and array from the top of the document: the body itself is 1, so
``params`` of a submission may nest ``max_depth - 1`` levels.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core.errors import ServiceError

# Strings (with their escapes) and the structural characters; numbers and literals are skipped.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_PATH_KEY_SHOWN = 64


class JsonLimitError(ServiceError):
    """JSON that parses but is refused by the limits; ``details.path`` names the offending value."""

    status = 422

    def __init__(self, code: str, message: str, *, path: str, **extra: Any) -> None:
        super().__init__(message, code=code, details={"path": path, **extra})


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int
    max_keys: int
    max_string: int

    @classmethod
    def from_settings(cls) -> JsonLimits:
        return cls(
            max_depth=settings.COUNTERSIGN_JSON_MAX_DEPTH,
            max_keys=settings.COUNTERSIGN_JSON_MAX_KEYS,
            max_string=settings.COUNTERSIGN_JSON_MAX_STRING,
        )


class _Unrepresentable:
    """What the parser hooks return for a number we refuse, so the walk can report where it was."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_float(text: str) -> Any:
    value = float(text)
    return value if value - value == 0 else _Unrepresentable(text)


def _parse_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        return _Unrepresentable(text[:20] + "…")


def key_path(parent: str, key: str) -> str:
    if not _PLAIN_KEY.fullmatch(key):
        shown = key if len(key) <= _PATH_KEY_SHOWN else key[:_PATH_KEY_SHOWN] + "…"
        return f"{parent}[{json.dumps(shown)}]"  # ensure_ascii: NUL and surrogates shown escaped
    return f"{parent}.{key}" if parent else key


def _frames_path(frames: list[list[Any]]) -> str:
    path = ""
    for kind, label in frames:
        if kind == "[":
            path += f"[{label}]"
        elif label is not None:
            try:
                key = json.loads(label)
            except ValueError:
                key = label.strip('"')
            path = key_path(path, key)
    return path


def _deepest_allowed(text: str, max_depth: int) -> str | None:
    """The path of the first container nested deeper than ``max_depth``, or None. No recursion.

    Only has to be right for valid JSON: anything else is refused by ``json.loads`` afterwards.
    """
    frames: list[list[Any]] = []  # [kind, index or raw key token] per open container
    expecting_key = False
    for match in _TOKENS.finditer(text):
        token = match.group()
        first = token[0]
        if first == '"':
            if expecting_key:
                frames[-1][1] = token
                expecting_key = False
        elif first in "[{":
            if len(frames) >= max_depth:
                return _frames_path(frames)
            frames.append([first, 0 if first == "[" else None])
            expecting_key = first == "{"
        elif first in "]}":
            if frames:
                frames.pop()
            expecting_key = False
        elif frames:  # a comma
            if frames[-1][0] == "[":
                frames[-1][1] += 1
            else:
                expecting_key = True
    return None


def _check_string(value: str, path: str, limits: JsonLimits, *, what: str) -> None:
    if len(value) > limits.max_string:
        raise JsonLimitError(
            "json_too_large",
            f"A {what} at {path or 'the top'} is longer than {limits.max_string} characters; send less.",
            path=path,
            limit=limits.max_string,
        )
    bad = _BAD_CHARACTERS.search(value)
    if bad:
        character = "U+0000 (NUL)" if bad.group() == "\x00" else "a lone surrogate"
        raise JsonLimitError(
            "invalid_characters",
            f"The {what} at {path or 'the top'} contains {character}; remove it.",
            path=path,
        )


def _path(top: str, where: tuple[Any, ...] | None) -> str:
    """The path of a value from the chain of keys and indexes that leads to it (built only for an error)."""
    steps: list[str | int] = []
    while where is not None:
        where, step = where
        steps.append(step)
    path = top
    for step in reversed(steps):
        path = f"{path}[{step}]" if isinstance(step, int) else key_path(path, step)
    return path


def check_value(value: Any, *, limits: JsonLimits | None = None, path: str = "") -> None:
    """Walk a parsed JSON value (iteratively) and raise JsonLimitError at the first value over a limit."""
    limits = limits or JsonLimits.from_settings()
    # Each value waits with the chain of steps to it, (parent's chain, key or index): its path as text
    # costs more than the whole check, so it is written out only for the value refused.
    pending: list[tuple[Any, tuple[Any, ...] | None, int]] = [(value, None, 0)]
    while pending:
        node, where, depth = pending.pop()
        if isinstance(node, dict | list):
            depth += 1
            if depth > limits.max_depth:
                here = _path(path, where)
                raise JsonLimitError(
                    "json_too_deep",
                    f"The JSON nests deeper than {limits.max_depth} levels at {here or 'the top'}; flatten it.",
                    path=here,
                    limit=limits.max_depth,
                )
            if len(node) > limits.max_keys:
                here = _path(path, where)
                noun = "keys" if isinstance(node, dict) else "items"
                raise JsonLimitError(
                    "json_too_large",
                    f"The value at {here or 'the top'} has more than {limits.max_keys} {noun}; send fewer.",
                    path=here,
                    limit=limits.max_keys,
                )
            if isinstance(node, dict):
                children = []
                for key, child in node.items():
                    if len(key) > limits.max_string or _BAD_CHARACTERS.search(key):
                        _check_string(key, _path(path, (where, key)), limits, what="key")
                    children.append((child, (where, key), depth))
            else:
                children = [(child, (where, index), depth) for index, child in enumerate(node)]
            pending.extend(reversed(children))
        elif isinstance(node, str):
            if len(node) > limits.max_string or _BAD_CHARACTERS.search(node):
                _check_string(node, _path(path, where), limits, what="string")
        elif isinstance(node, _Unrepresentable):
            here = _path(path, where)
            raise JsonLimitError(
                "invalid_number",
                f"The number at {here or 'the top'} ({node.text}) is not a finite JSON number; send a finite one.",
                path=here,
            )
        elif isinstance(node, float) and node - node != 0:
            here = _path(path, where)
            raise JsonLimitError(
                "invalid_number",
                f"The number at {here or 'the top'} is not finite (NaN or Infinity); send a finite one.",
                path=here,
            )


def loads_limited(text: str | bytes, *, limits: JsonLimits | None = None) -> Any:
    """Parse JSON text within the limits.

    Raises JsonLimitError (422) for a refused value, ValueError (json.JSONDecodeError,
    UnicodeDecodeError) for text that is not JSON.
    """
    limits = limits or JsonLimits.from_settings()
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")
    # Nesting deeper than max_depth takes more than max_depth opening brackets: most bodies are not scanned.
    too_deep = None
    if text.count("[") + text.count("{") > limits.max_depth:
        too_deep = _deepest_allowed(text, limits.max_depth)
    if too_deep is not None:
        raise JsonLimitError(
            "json_too_deep",
            f"The JSON nests deeper than {limits.max_depth} levels at {too_deep or 'the top'}; flatten it.",
            path=too_deep,
            limit=limits.max_depth,
        )
    try:
        value = json.loads(text, parse_constant=_Unrepresentable, parse_float=_parse_float, parse_int=_parse_int)
    except RecursionError:  # only with a max_depth set above what the interpreter can recurse
        raise JsonLimitError(
            "json_too_deep", "The JSON nests too deep to parse; flatten it.", path="", limit=limits.max_depth
        ) from None
    check_value(value, limits=limits)
    return value
