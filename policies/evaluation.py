"""Evaluate the policy table. Pure: no ORM, no settings, no clock.

Order, which a reviewer or an agent developer can predict from the table alone:
enabled policies whose pattern matches the action type, highest priority first,
then exact names before globs, then the older policy (lower id). The first one
whose condition holds decides. A condition that is false, or that fails at run
time (a missing field, a wrong type), makes its policy not match; the verdict
records why, and evaluation falls through to the next candidate and finally to
the table's default, which fails closed.

Conditions are CEL (``common-expression-language``, a Rust implementation; see
README "Policy conditions" for why) over ``params``, ``context``, ``confidence``,
``agent`` (``name``, ``tags``) and ``action_type``. They are compiled once, when
the table snapshot is built, never per request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any

import cel

from .usage import USAGE_VARIABLE_PREFIX, UsageError, UsageQuery, UsageReader, usage_rewrite

MODES = ("auto", "log", "approve", "block")
ON_EXPIRY = ("reject", "escalate")
RISK_BY_MODE = {"auto": "low", "log": "medium", "approve": "high", "block": "critical"}
GLOB_CHARACTERS = frozenset("*?[")
CONDITION_VARIABLES = frozenset({"params", "context", "confidence", "agent", "action_type"})
# Comprehension macros bind their own variable names, which Program.variables() also reports.
_MACRO_CALL = re.compile(r"\.(all|exists|exists_one|map|filter)\s*\(")
CANDIDATE_CACHE_SIZE = 4096
OUT_OF_SCOPE = "out_of_scope"


class ConditionError(ValueError):
    """A condition that does not compile; the message is the compiler's, for the admin form and the API."""


def compile_condition(source: str) -> Any | None:
    """Compile a CEL condition, or raise ConditionError with a message an admin can act on."""
    return compile_condition_with_usage(source)[0]


def compile_condition_with_usage(source: str) -> tuple[Any | None, tuple[UsageQuery, ...]]:
    """The compiled condition and the usage queries it reads (``policies.usage``), or ConditionError."""
    source = (source or "").strip()
    if not source:
        return None, ()
    try:
        rewritten, queries = usage_rewrite(source)
        program = cel.compile(rewritten)
    except (UsageError, ValueError) as exc:
        raise ConditionError(str(exc)) from None
    if not _MACRO_CALL.search(source):
        unknown = sorted(
            name
            for name in set(program.variables()) - CONDITION_VARIABLES
            if not name.startswith(USAGE_VARIABLE_PREFIX)
        )
        if unknown:
            raise ConditionError(
                f"Unknown variable {', '.join(unknown)}: a condition can use {', '.join(sorted(CONDITION_VARIABLES))} "
                'and usage (usage.count("1h"), usage.sum("params.amount", "24h"), usage.all.count("10m")).'
            )
    return program, queries


def _glob_prefix(pattern: str) -> str:
    for index, ch in enumerate(pattern):
        if ch in GLOB_CHARACTERS:
            return pattern[:index]
    return pattern


def pattern_is_glob(pattern: str) -> bool:
    return any(ch in GLOB_CHARACTERS for ch in pattern)


def pattern_matches(pattern: str, action_type: str) -> bool:
    if pattern_is_glob(pattern):
        return re.match(translate(pattern), action_type) is not None
    return pattern == action_type


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    id: int
    action_pattern: str
    mode: str
    priority: int = 0
    pending_ttl_seconds: int = 4 * 3600
    approval_ttl_seconds: int = 15 * 60
    risk: str = ""
    description: str = ""
    condition: str = ""
    required_approvals: int = 1
    reviewer_group_id: int | None = None
    reviewer_group: str = ""
    on_expiry: str = "reject"
    escalation_group_id: int | None = None
    collapse_duplicates: bool | None = None
    sample_rate: float = 0.0
    is_glob: bool = field(init=False)
    program: Any = field(init=False, compare=False, repr=False)
    regex: Any = field(init=False, compare=False, repr=False)
    usage_queries: tuple[UsageQuery, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        if self.on_expiry not in ON_EXPIRY:
            raise ValueError(f"unknown on_expiry {self.on_expiry!r}")
        if self.required_approvals < 1:
            raise ValueError("required_approvals must be at least 1")
        is_glob = pattern_is_glob(self.action_pattern)
        object.__setattr__(self, "is_glob", is_glob)
        object.__setattr__(self, "regex", re.compile(translate(self.action_pattern)) if is_glob else None)
        program, usage_queries = compile_condition_with_usage(self.condition)
        object.__setattr__(self, "program", program)
        object.__setattr__(self, "usage_queries", usage_queries)

    def matches(self, action_type: str) -> bool:
        if self.is_glob:
            return self.regex.match(action_type) is not None
        return action_type == self.action_pattern

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (-self.priority, 1 if self.is_glob else 0, self.id)

    def label(self) -> str:
        return f"#{self.id} '{self.action_pattern}'"


@dataclass(frozen=True, slots=True)
class DefaultRule:
    mode: str = "approve"
    pending_ttl_seconds: int = 4 * 3600
    approval_ttl_seconds: int = 15 * 60

    def __post_init__(self) -> None:
        if self.mode not in ("approve", "block"):
            raise ValueError("the default mode must fail closed: 'approve' or 'block'")


@dataclass(frozen=True, slots=True)
class PolicyTable:
    """An immutable, pre-sorted, indexed snapshot of the enabled policies.

    Exact names are looked up in a dict; globs are bucketed by their literal
    prefix, so only globs that can match are tried. The candidate list per
    action type is memoised (the snapshot never changes, so neither do they).
    """

    policies: tuple[CompiledPolicy, ...]
    default: DefaultRule = DefaultRule()
    version: int = 0
    _exact: dict[str, tuple[CompiledPolicy, ...]] = field(default_factory=dict, compare=False, repr=False)
    _globs: dict[str, tuple[CompiledPolicy, ...]] = field(default_factory=dict, compare=False, repr=False)
    _prefix_lengths: tuple[int, ...] = field(default=(), compare=False, repr=False)
    _memo: dict[str, tuple[CompiledPolicy, ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls, policies: list[CompiledPolicy], *, default: DefaultRule | None = None, version: int = 0
    ) -> PolicyTable:
        ordered = tuple(sorted(policies, key=lambda p: p.sort_key))
        exact: dict[str, list[CompiledPolicy]] = {}
        globs: dict[str, list[CompiledPolicy]] = {}
        for policy in ordered:
            if policy.is_glob:
                globs.setdefault(_glob_prefix(policy.action_pattern), []).append(policy)
            else:
                exact.setdefault(policy.action_pattern, []).append(policy)
        return cls(
            policies=ordered,
            default=default or DefaultRule(),
            version=version,
            _exact={k: tuple(v) for k, v in exact.items()},
            _globs={k: tuple(v) for k, v in globs.items()},
            _prefix_lengths=tuple(sorted({len(k) for k in globs})),
        )

    def candidates(self, action_type: str) -> list[CompiledPolicy]:
        return list(self._candidates(action_type))

    def usage_queries(self, action_type: str) -> tuple[UsageQuery, ...]:
        """Every usage query a policy for ``action_type`` may read (none: evaluation needs no usage)."""
        found: dict[UsageQuery, None] = {}
        for policy in self._candidates(action_type):
            found.update(dict.fromkeys(policy.usage_queries))
        return tuple(found)

    def _candidates(self, action_type: str) -> tuple[CompiledPolicy, ...]:
        found = self._memo.get(action_type)
        if found is not None:
            return found
        matched = list(self._exact.get(action_type, ()))
        size = len(action_type)
        for length in self._prefix_lengths:
            if length > size:
                break
            for policy in self._globs.get(action_type[:length], ()):
                if policy.regex.match(action_type) is not None:
                    matched.append(policy)
        matched.sort(key=lambda p: p.sort_key)
        found = tuple(matched)
        if len(self._memo) >= CANDIDATE_CACHE_SIZE:
            self._memo.clear()  # bounded: agents choose action types, so they must not grow this forever
        self._memo[action_type] = found
        return found


@dataclass(frozen=True, slots=True)
class RequestFacts:
    action_type: str
    params: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    agent_name: str = ""
    agent_tags: tuple[str, ...] = ()
    # Each entry is one allow-list (the agent's, its key's); an empty tuple means "no limit".
    scopes: tuple[tuple[str, ...], ...] = ()

    def cel_variables(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "context": self.context,
            "confidence": self.confidence,
            "agent": {"name": self.agent_name, "tags": list(self.agent_tags)},
            "action_type": self.action_type,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    policy_id: int
    action_pattern: str
    why: str  # "condition_false" or "condition_error"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "action_pattern": self.action_pattern,
            "why": self.why,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    mode: str
    reason: str
    risk: str
    pending_ttl_seconds: int
    approval_ttl_seconds: int
    policy_id: int | None = None
    policy_pattern: str | None = None
    table_version: int = 0
    reason_code: str = "policy"  # "policy", "default" or "out_of_scope"
    skipped: tuple[Skipped, ...] = ()
    required_approvals: int = 1
    reviewer_group_id: int | None = None
    on_expiry: str = "reject"
    escalation_group_id: int | None = None
    # None: the default (identical pending retries collapse into one card).
    collapse_duplicates: bool | None = None
    # Share of auto-mode requests a reviewer labels afterwards (log mode: all of them).
    sample_rate: float = 0.0
    # The usage the deciding policy's condition read, as (label, value): e.g. ('usage.count("1h")', 10).
    usage: tuple[tuple[str, float], ...] = ()

    @property
    def is_default(self) -> bool:
        return self.policy_id is None

    @property
    def budget_exceeded(self) -> bool:
        """A usage condition is what held the request for a human or blocked it."""
        return bool(self.usage) and self.mode in ("approve", "block")

    @property
    def errors(self) -> tuple[Skipped, ...]:
        return tuple(s for s in self.skipped if s.why == "condition_error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "risk": self.risk,
            "policy_id": self.policy_id,
            "policy_pattern": self.policy_pattern,
            "table_version": self.table_version,
            "skipped": [s.as_dict() for s in self.skipped],
            "required_approvals": self.required_approvals,
            "reviewer_group_id": self.reviewer_group_id,
            **({"usage": dict(self.usage)} if self.usage else {}),
        }


def _describe_skipped(skipped: list[Skipped]) -> str:
    parts = []
    for s in skipped[:5]:
        if s.why == "condition_false":
            parts.append(f"#{s.policy_id} '{s.action_pattern}' (condition false)")
        else:
            parts.append(f"#{s.policy_id} '{s.action_pattern}' (condition error: {s.detail})")
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return "Skipped " + "; ".join(parts) + more + "."


def _out_of_scope(table: PolicyTable, request: RequestFacts) -> Verdict | None:
    for allowed in request.scopes:
        if allowed and not any(pattern_matches(p, request.action_type) for p in allowed):
            return Verdict(
                mode="block",
                reason=(
                    f"{OUT_OF_SCOPE}: this agent key may only request {', '.join(allowed)}; "
                    f"'{request.action_type}' is outside its scope, whatever the policy table says."
                ),
                risk=RISK_BY_MODE["block"],
                pending_ttl_seconds=table.default.pending_ttl_seconds,
                approval_ttl_seconds=table.default.approval_ttl_seconds,
                table_version=table.version,
                reason_code=OUT_OF_SCOPE,
            )
    return None


def _field_value(params: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = params
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _usage_value(query: UsageQuery, amount: float, request: RequestFacts) -> int | float:
    """A count is an int. A sum takes the type of this request's own value of the field, so that
    ``usage.sum("params.amount", "24h") + params.amount`` adds like to like in CEL (which never
    mixes int and double): an int sum is rounded up, never under-counting the budget."""
    if query.kind == "count":
        return int(amount)
    current = _field_value(request.params, query.field_path)
    if isinstance(current, int) and not isinstance(current, bool):
        return math.ceil(amount)
    return float(amount)


def _add_usage(
    context: Any, policy: CompiledPolicy, request: RequestFacts, usage: UsageReader | None, seen: dict[str, Any]
) -> None:
    for query in policy.usage_queries:
        if query.variable in seen:
            continue
        if usage is None:
            raise RuntimeError(f"{policy.label()} reads usage: pass a UsageReader to evaluate()")
        seen[query.variable] = value = _usage_value(query, usage.usage(query), request)
        context.add_variable(query.variable, value)


def evaluate(*, table: PolicyTable, request: RequestFacts, usage: UsageReader | None = None) -> Verdict:
    """The verdict for ``request``. ``usage`` answers the usage queries of the conditions that read any
    (``table.usage_queries(action_type)``); it is asked only for the policies actually tried."""
    if request.scopes:
        refused = _out_of_scope(table, request)
        if refused is not None:
            return refused
    candidates = table._candidates(request.action_type)
    skipped: list[Skipped] = []
    context: Any = None
    usage_seen: dict[str, Any] = {}
    winner: CompiledPolicy | None = None
    for policy in candidates:
        if policy.program is None:
            winner = policy
            break
        if context is None:
            # Converting the request to CEL values costs more than running a condition: do it once.
            context = cel.Context(variables=request.cel_variables())
        if policy.usage_queries:
            # Outside the try: usage that cannot be read must fail the verdict, never silently skip a budget.
            _add_usage(context, policy, request, usage, usage_seen)
        try:
            result = policy.program.execute(context)
        except Exception as exc:  # the CEL runtime raises KeyError, TypeError, RuntimeError, ...
            skipped.append(Skipped(policy.id, policy.action_pattern, "condition_error", _error_text(exc)))
            continue
        if result is True:
            winner = policy
            break
        if result is False:
            skipped.append(Skipped(policy.id, policy.action_pattern, "condition_false"))
        else:
            detail = f"the condition returned {type(result).__name__}, not a boolean"
            skipped.append(Skipped(policy.id, policy.action_pattern, "condition_error", detail))

    if winner is None:
        default = table.default
        if candidates:
            reason = (
                f"No policy for '{request.action_type}' applies; the default applies and fails closed "
                f"({default.mode}). {_describe_skipped(skipped)}"
            )
        else:
            reason = (
                f"No policy matches '{request.action_type}'; the default applies and fails closed ({default.mode})."
            )
        return Verdict(
            mode=default.mode,
            reason=reason,
            risk=RISK_BY_MODE[default.mode],
            pending_ttl_seconds=default.pending_ttl_seconds,
            approval_ttl_seconds=default.approval_ttl_seconds,
            table_version=table.version,
            reason_code="default",
            skipped=tuple(skipped),
        )

    how = "glob" if winner.is_glob else "exact"
    when = f", condition `{winner.condition.strip()}` holds" if winner.program is not None else ""
    reason = f"Policy #{winner.id} ({how} '{winner.action_pattern}', priority {winner.priority}{when}) sets mode {winner.mode}."
    if skipped:
        reason += " " + _describe_skipped(skipped)
    rest = [p for p in candidates if p is not winner and all(p.id != s.policy_id for s in skipped)]
    if rest:
        others = ", ".join(p.label() for p in rest[:3])
        reason += f" It outranks {len(rest)} other matching polic{'y' if len(rest) == 1 else 'ies'}: {others}."
    used = tuple((query.label(), usage_seen[query.variable]) for query in winner.usage_queries)
    if used:
        reason += " Usage: " + ", ".join(f"{label} = {value:g}" for label, value in used) + "."
    if winner.description:
        reason += f" {winner.description}"
    return Verdict(
        mode=winner.mode,
        reason=reason,
        risk=winner.risk or RISK_BY_MODE[winner.mode],
        pending_ttl_seconds=winner.pending_ttl_seconds,
        approval_ttl_seconds=winner.approval_ttl_seconds,
        policy_id=winner.id,
        policy_pattern=winner.action_pattern,
        table_version=table.version,
        skipped=tuple(skipped),
        required_approvals=winner.required_approvals,
        reviewer_group_id=winner.reviewer_group_id,
        on_expiry=winner.on_expiry,
        escalation_group_id=winner.escalation_group_id,
        collapse_duplicates=winner.collapse_duplicates,
        sample_rate=winner.sample_rate,
        usage=used,
    )


def _error_text(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such field {exc.args[0]!r}" if exc.args else "no such field"
    text = str(exc).split(". ")[0]
    return text[:200]
