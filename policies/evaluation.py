"""Evaluate the policy table. Pure: no ORM, no settings, no clock.

Order, which a reviewer or an agent developer can predict from the table alone:
enabled policies whose pattern matches the action type, highest priority first,
then exact names before globs, then the older policy (lower id). The first one
decides. When nothing matches, the table's default applies, and the default
fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

MODES = ("auto", "log", "approve", "block")
RISK_BY_MODE = {"auto": "low", "log": "medium", "approve": "high", "block": "critical"}
GLOB_CHARACTERS = frozenset("*?[")


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
    is_glob: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        object.__setattr__(self, "is_glob", any(ch in GLOB_CHARACTERS for ch in self.action_pattern))

    def matches(self, action_type: str) -> bool:
        if self.is_glob:
            return fnmatchcase(action_type, self.action_pattern)
        return action_type == self.action_pattern

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (-self.priority, 1 if self.is_glob else 0, self.id)


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
    """An immutable, pre-sorted snapshot of the enabled policies."""

    policies: tuple[CompiledPolicy, ...]
    default: DefaultRule = DefaultRule()
    version: int = 0

    @classmethod
    def build(
        cls, policies: list[CompiledPolicy], *, default: DefaultRule | None = None, version: int = 0
    ) -> PolicyTable:
        ordered = tuple(sorted(policies, key=lambda p: p.sort_key))
        return cls(policies=ordered, default=default or DefaultRule(), version=version)

    def candidates(self, action_type: str) -> list[CompiledPolicy]:
        return [p for p in self.policies if p.matches(action_type)]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    action_type: str
    params: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    agent_name: str = ""


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

    @property
    def is_default(self) -> bool:
        return self.policy_id is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "risk": self.risk,
            "policy_id": self.policy_id,
            "policy_pattern": self.policy_pattern,
            "table_version": self.table_version,
        }


def evaluate(*, table: PolicyTable, request: RequestFacts) -> Verdict:
    candidates = table.candidates(request.action_type)
    if not candidates:
        default = table.default
        return Verdict(
            mode=default.mode,
            reason=(
                f"No policy matches '{request.action_type}'; the default applies and fails closed ({default.mode})."
            ),
            risk=RISK_BY_MODE[default.mode],
            pending_ttl_seconds=default.pending_ttl_seconds,
            approval_ttl_seconds=default.approval_ttl_seconds,
            table_version=table.version,
        )
    winner = candidates[0]
    how = "glob" if winner.is_glob else "exact"
    reason = (
        f"Policy #{winner.id} ({how} '{winner.action_pattern}', priority {winner.priority}) sets mode {winner.mode}."
    )
    if len(candidates) > 1:
        others = ", ".join(f"#{p.id} '{p.action_pattern}'" for p in candidates[1:4])
        reason += f" It outranks {len(candidates) - 1} other matching polic{'y' if len(candidates) == 2 else 'ies'}: {others}."
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
    )
