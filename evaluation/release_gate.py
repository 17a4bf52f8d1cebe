"""The release gate: does a new agent version behave as well as the one it replaces, on its real decisions?

Compares the requests of one agent tagged ``context.agent_version`` = baseline with those tagged
candidate, check by check, with drift's statistics (``evaluation.drift``): a rate check fails when
the candidate is worse by at least ``min_effect_points`` percentage points AND a one-sided
two-proportion z-test reaches ``z_threshold``; time to decide fails when the candidate's median is
``time_factor`` times the baseline's AND a one-sided Mann-Whitney test reaches ``z_threshold``.
Both conditions, so neither a small sample's noise nor a tiny but significant shift fails a release.

The verdict is ``insufficient_data`` until the candidate has ``COUNTERSIGN_RELEASE_GATE_MIN_DECISIONS``
human decisions; otherwise ``fail`` if any check fails, else ``pass``. A check whose sample is
below ``MIN_CHECK_N`` on either side says so and neither passes nor fails.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from approvals.models import ActionRequest, Agent, DecisionOutcome, Status

from .drift import DriftConfig, mann_whitney_z, two_proportion_z

MIN_CHECK_N = 10
MAX_REQUESTS_PER_VERSION = 5000


@dataclass(frozen=True)
class VersionFacts:
    """One version's requests, reduced to what the checks read (newest ``MAX_REQUESTS_PER_VERSION``)."""

    requests: int
    rows: list[tuple[Any, ...]]  # (mode, status, execution_status, outcome, edited, seconds_to_decide)

    @property
    def decisions(self) -> int:
        return sum(1 for row in self.rows if row[3] is not None)


@dataclass(frozen=True)
class RateCheck:
    """A share of some population that is worse when it is higher (or lower, ``higher_is_worse=False``)."""

    name: str
    description: str
    population: Callable[[tuple], bool]
    hit: Callable[[tuple], bool]
    higher_is_worse: bool = True


RATE_CHECKS = (
    RateCheck("escalation_rate", "share of requests that needed a human", lambda r: True, lambda r: r[0] == "approve"),
    RateCheck("blocked_rate", "share of requests blocked", lambda r: True, lambda r: r[1] == Status.BLOCKED),
    RateCheck(
        "approval_rate",
        "share of human decisions that approved",
        lambda r: r[3] is not None,
        lambda r: r[3] == DecisionOutcome.APPROVED,
        higher_is_worse=False,
    ),
    RateCheck(
        "rejection_rate",
        "share of human decisions that rejected",
        lambda r: r[3] is not None,
        lambda r: r[3] == DecisionOutcome.REJECTED,
    ),
    RateCheck(
        "edit_rate",
        "share of approvals a reviewer had to edit",
        lambda r: r[3] == DecisionOutcome.APPROVED,
        lambda r: bool(r[4]),
    ),
    RateCheck(
        "expiry_rate",
        "share of requests for a human that expired undecided",
        lambda r: r[0] == "approve" and r[1] != Status.PENDING,
        lambda r: r[1] == Status.EXPIRED,
    ),
    RateCheck(
        "execution_failure_rate",
        "share of reported runs that failed",
        lambda r: r[2] in ("succeeded", "failed"),
        lambda r: r[2] == "failed",
    ),
)


@dataclass
class CheckResult:
    name: str
    description: str
    verdict: str  # pass | fail | insufficient_data
    baseline: float | None
    candidate: float | None
    baseline_n: int
    candidate_n: int
    z: float | None = None
    effect: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "verdict": self.verdict,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "baseline_n": self.baseline_n,
            "candidate_n": self.candidate_n,
            "z": self.z,
            "effect": self.effect,
        }


@dataclass
class GateReport:
    agent: str
    baseline: str
    candidate: str
    verdict: str
    reason: str
    baseline_requests: int
    candidate_requests: int
    baseline_decisions: int
    candidate_decisions: int
    min_decisions: int
    checks: list[CheckResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "verdict": self.verdict,
            "reason": self.reason,
            "baseline_requests": self.baseline_requests,
            "candidate_requests": self.candidate_requests,
            "baseline_decisions": self.baseline_decisions,
            "candidate_decisions": self.candidate_decisions,
            "min_decisions": self.min_decisions,
            "checks": [check.as_dict() for check in self.checks],
        }


def version_facts(*, agent: Agent, version: str) -> VersionFacts:
    requests = ActionRequest.objects.filter(agent=agent, agent_version=version)
    rows = list(
        requests.order_by("-created_at").values_list(
            "mode", "status", "execution_status", "decision__outcome", "decision__edited", "decision__seconds_to_decide"
        )[:MAX_REQUESTS_PER_VERSION]
    )
    return VersionFacts(requests=requests.count(), rows=rows)


def agent_versions(*, agent: Agent) -> list[str]:
    """Every version the agent has sent, in order (at most 1,000)."""
    versions = ActionRequest.objects.filter(agent=agent).exclude(agent_version="").order_by("agent_version")
    return list(versions.values_list("agent_version", flat=True).distinct()[:1000])


def _rate_check(check: RateCheck, base: VersionFacts, cand: VersionFacts, config: DriftConfig) -> CheckResult:
    base_pop = [row for row in base.rows if check.population(row)]
    cand_pop = [row for row in cand.rows if check.population(row)]
    base_hits, cand_hits = sum(map(check.hit, base_pop)), sum(map(check.hit, cand_pop))
    base_rate = base_hits / len(base_pop) if base_pop else None
    cand_rate = cand_hits / len(cand_pop) if cand_pop else None
    result = CheckResult(
        check.name, check.description, "insufficient_data", base_rate, cand_rate, len(base_pop), len(cand_pop)
    )
    if len(base_pop) < MIN_CHECK_N or len(cand_pop) < MIN_CHECK_N:
        return result
    if check.higher_is_worse:
        z = two_proportion_z(cand_hits, len(cand_pop), base_hits, len(base_pop))
        effect = cand_rate - base_rate
    else:
        z = two_proportion_z(base_hits, len(base_pop), cand_hits, len(cand_pop))
        effect = base_rate - cand_rate
    result.z, result.effect = round(z, 2), round(effect, 4)
    worse = z >= config.z_threshold and effect >= config.min_effect_points / 100
    result.verdict = "fail" if worse else "pass"
    return result


def _time_check(base: VersionFacts, cand: VersionFacts, config: DriftConfig) -> CheckResult:
    base_times = [row[5] for row in base.rows if row[5] is not None]
    cand_times = [row[5] for row in cand.rows if row[5] is not None]
    result = CheckResult(
        "time_to_decide",
        "median seconds from submission to a human decision",
        "insufficient_data",
        statistics.median(base_times) if base_times else None,
        statistics.median(cand_times) if cand_times else None,
        len(base_times),
        len(cand_times),
    )
    if len(base_times) < MIN_CHECK_N or len(cand_times) < MIN_CHECK_N:
        return result
    z = mann_whitney_z(cand_times, base_times)
    factor = result.candidate / result.baseline if result.baseline else float("inf")
    result.z, result.effect = round(z, 2), round(factor, 2)
    result.verdict = "fail" if z >= config.z_threshold and factor >= config.time_factor else "pass"
    return result


def release_gate(
    *, agent: Agent, baseline: str, candidate: str, config: DriftConfig | None = None, min_decisions: int | None = None
) -> GateReport:
    """Compare ``candidate`` with ``baseline`` over the agent's real requests; see the module docstring."""
    config = config or DriftConfig.from_settings()
    min_decisions = settings.COUNTERSIGN_RELEASE_GATE_MIN_DECISIONS if min_decisions is None else min_decisions
    base, cand = version_facts(agent=agent, version=baseline), version_facts(agent=agent, version=candidate)
    checks = [_rate_check(check, base, cand, config) for check in RATE_CHECKS]
    checks.append(_time_check(base, cand, config))
    failed = [check.name for check in checks if check.verdict == "fail"]
    if cand.decisions < min_decisions:
        verdict = "insufficient_data"
        reason = (
            f"Not enough data yet: {candidate} has {cand.decisions} human decisions, the gate needs {min_decisions}."
        )
    elif failed:
        verdict = "fail"
        reason = f"{candidate} is significantly worse than {baseline} on: {', '.join(failed)}."
    else:
        verdict = "pass"
        reason = f"{candidate} is not significantly worse than {baseline} on any check."
    return GateReport(
        agent=agent.name,
        baseline=baseline,
        candidate=candidate,
        verdict=verdict,
        reason=reason,
        baseline_requests=base.requests,
        candidate_requests=cand.requests,
        baseline_decisions=base.decisions,
        candidate_decisions=cand.decisions,
        min_decisions=min_decisions,
        checks=checks,
    )
