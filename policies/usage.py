"""Usage in policy conditions: ``usage.count("1h")``, ``usage.sum("params.amount", "24h")``, ``usage.all.…``.

Pure, like the evaluation it serves. A condition's usage calls are found when it is compiled and
each is replaced by a variable named after the query (``usage_q_…``), so the CEL program stays a
plain expression and the same query in two policies is looked up once. At evaluation time the
caller hands in a ``UsageReader`` that answers each query: the database for a live submission
(approvals), an in-memory ledger of replayed verdicts for the simulation.

A query always concerns the action type being evaluated: ``usage.*`` for this agent,
``usage.all.*`` for every agent. Its window is a literal duration (``30s``, ``10m``, ``1h``,
``7d``, at most 90 days); a sum's field is a literal path under ``params``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

MAX_WINDOW_SECONDS = 90 * 24 * 3600
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_FIELD = re.compile(r"^params(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,5}$")
_STRING = r"""(?:"([^"\\]*)"|'([^'\\]*)')"""
_CALL = re.compile(
    r"usage\s*\.\s*(?P<all>all\s*\.\s*)?(?P<kind>count|sum)\s*\(\s*"
    rf"(?P<first>{_STRING})\s*(?:,\s*(?P<second>{_STRING})\s*)?\)"
)
_USAGE_WORD = re.compile(r"(?<![A-Za-z0-9_.])usage(?![A-Za-z0-9_])")
USAGE_VARIABLE_PREFIX = "usage_q_"


class UsageError(ValueError):
    """A usage call the policy cannot be saved with; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """How much of this action type was used in the last ``window_seconds``: a count, or a sum of ``field``."""

    scope: str  # "agent" (this agent) or "all" (every agent)
    kind: str  # "count" or "sum"
    window_seconds: int
    field: str = ""  # "params.amount" for a sum
    window: str = dataclasses.field(default="", compare=False)  # as written ("24h"), for messages

    @property
    def variable(self) -> str:
        key = f"{self.scope}|{self.kind}|{self.window_seconds}|{self.field}".encode()
        return USAGE_VARIABLE_PREFIX + hashlib.sha256(key).hexdigest()[:12]

    @property
    def field_path(self) -> tuple[str, ...]:
        return tuple(self.field.split(".")[1:]) if self.field else ()

    def label(self) -> str:
        scope = "usage.all" if self.scope == "all" else "usage"
        window = self.window or _window_text(self.window_seconds)
        if self.kind == "count":
            return f'{scope}.count("{window}")'
        return f'{scope}.sum("{self.field}", "{window}")'


class UsageReader(Protocol):
    def usage(self, query: UsageQuery) -> float: ...


def _window_text(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def window_seconds(text: str) -> int:
    match = _WINDOW.match(text)
    if match is None:
        raise UsageError(f'Usage window {text!r} is not a duration: write e.g. "30s", "10m", "1h" or "7d".')
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_WINDOW_SECONDS:
        raise UsageError(f"Usage window {text!r} is longer than 90 days.")
    return seconds


def _literal(match: re.Match, group: str) -> str | None:
    text = match.group(group)
    if text is None:
        return None
    return text[1:-1]


def _query_from(match: re.Match) -> UsageQuery:
    scope = "all" if match.group("all") else "agent"
    kind = match.group("kind")
    first, second = _literal(match, "first"), _literal(match, "second")
    if kind == "count":
        if second is not None:
            raise UsageError('usage.count takes one argument, the window: usage.count("1h").')
        return UsageQuery(scope=scope, kind="count", window_seconds=window_seconds(first), window=first)
    if second is None:
        raise UsageError('usage.sum takes a field and a window: usage.sum("params.amount", "24h").')
    if _FIELD.match(first) is None:
        raise UsageError(
            f'usage.sum can add up a field of params, named by a path such as "params.amount"; got {first!r}.'
        )
    return UsageQuery(scope=scope, kind="sum", window_seconds=window_seconds(second), field=first, window=second)


def _string_end(source: str, index: int) -> int:
    """Where the string literal opening at ``index`` ends (one past its closing quote)."""
    quote = source[index : index + 3] if source[index : index + 3] in ('"""', "'''") else source[index]
    end = index + len(quote)
    while end < len(source) and source[end : end + len(quote)] != quote:
        end += 2 if source[end] == "\\" else 1
    return end + len(quote)


def usage_rewrite(source: str) -> tuple[str, tuple[UsageQuery, ...]]:
    """``source`` with each usage call replaced by its variable, and the queries in order of first use.

    String literals are left alone. Raises UsageError for ``usage`` used any other way (a
    window or field that is not a literal, an unknown method, ``usage`` on its own).
    """
    if "usage" not in source:
        return source, ()
    queries: dict[UsageQuery, None] = {}
    pieces: list[str] = []
    index = copied = 0
    while index < len(source):
        char = source[index]
        if char in "\"'":
            index = _string_end(source, index)
            continue
        word = _USAGE_WORD.match(source, index)
        if word is None:
            index += 1
            continue
        call = _CALL.match(source, index)
        if call is None:
            raise UsageError(
                'usage is read with literal arguments: usage.count("1h"), usage.sum("params.amount", "24h"), '
                'usage.all.count("10m") or usage.all.sum("params.amount", "24h").'
            )
        query = _query_from(call)
        queries.setdefault(query, None)
        pieces.append(source[copied:index])
        pieces.append(query.variable)
        index = copied = call.end()
    pieces.append(source[copied:])
    return "".join(pieces), tuple(queries)


def usage_variables(queries: tuple[UsageQuery, ...], reader: UsageReader) -> dict[str, float]:
    return {query.variable: reader.usage(query) for query in queries}
