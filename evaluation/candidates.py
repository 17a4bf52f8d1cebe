"""Auto-candidates: action types (optionally for one agent) that people approve unedited every time.

A report only. Nothing here writes a policy: a candidate comes with a draft table (the
current one plus one relaxing row) for the policy simulation page, where a person replays
real history against it and decides whether to save or publish it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q

from approvals.models import ActionRequest, AfterReviewLabel, AfterReviewLabelKind, Decision, DecisionOutcome
from policies.models import Mode, Policy
from policies.services import policy_table_snapshot
from policies.yaml_io import policies_to_yaml

RELAXED_MODE = str(Mode.LOG.value)  # runs without waiting, still flagged for after-the-fact review
MAX_GROUPS = 50


@dataclass(frozen=True)
class AutoCandidate:
    action_type: str
    agent: str | None  # None: every agent
    approved_unedited: int
    of: int
    total: int
    policy_priority: int  # of the policy that sends it to a human now (0 for the default)

    @property
    def condition(self) -> str:
        # json.dumps gives a double-quoted, escaped string literal, which CEL reads the same way.
        return f"agent.name == {json.dumps(self.agent)}" if self.agent else ""

    @property
    def label(self) -> str:
        return f"{self.action_type} when {self.condition}" if self.agent else self.action_type

    def relaxing_row(self) -> dict[str, object]:
        return {
            "action_pattern": self.action_type,
            "mode": RELAXED_MODE,
            "condition": self.condition,
            # Just above the row that escalates it today; rows that already outrank that one still do.
            "priority": self.policy_priority + 1,
            "enabled": True,
            "description": (
                f"Auto-candidate: the last {self.of} human decisions were approvals without edits. "
                "Proposed from the evaluation dashboard."
            ),
        }

    def draft_table_yaml(self) -> str:
        """The current table plus the relaxing row, as the simulation page reads it."""
        return policies_to_yaml([*policy_table_snapshot(), self.relaxing_row()])


def _clean_streak(qs, last_n: int) -> tuple[int, int]:
    recent = list(qs.order_by("-decided_at", "-id").values_list("outcome", "edited")[:last_n])
    clean = sum(1 for outcome, edited in recent if outcome == DecisionOutcome.APPROVED and not edited)
    return clean, len(recent)


def _escalating_priority(action_type: str, agent_id: object | None) -> int | None:
    """The priority of the policy behind the latest such request; None when it no longer goes to a human."""
    requests = ActionRequest.objects.filter(action_type=action_type)
    if agent_id is not None:
        requests = requests.filter(agent_id=agent_id)
    latest = requests.order_by("-created_at").values("mode", "policy_id").first()
    if latest is None or latest["mode"] != Mode.APPROVE:
        return None
    if latest["policy_id"] is None:
        return 0
    return Policy.objects.filter(pk=latest["policy_id"]).values_list("priority", flat=True).first() or 0


def auto_candidates(*, last_n: int = 200, min_n: int | None = None) -> list[AutoCandidate]:
    """Action types whose last ``last_n`` human decisions were all approvals without edits;
    where a type as a whole is not one, each agent for which it is (condition on the agent).

    Bounded: at most MAX_GROUPS action types and MAX_GROUPS (type, agent) pairs are read,
    ``last_n`` decisions each. Types that no longer escalate (already relaxed) are left out.
    """
    min_n = last_n if min_n is None else min_n
    types = (
        Decision.objects.values("request__action_type")
        .annotate(n=Count("id"))
        .filter(n__gte=min_n)
        .order_by("-n", "request__action_type")[:MAX_GROUPS]
    )
    out: list[AutoCandidate] = []
    not_whole: set[str] = set()
    for row in types:
        action_type = row["request__action_type"]
        clean, of = _clean_streak(Decision.objects.filter(request__action_type=action_type), last_n)
        if not of or clean < of:
            not_whole.add(action_type)
            continue
        priority = _escalating_priority(action_type, None)
        if priority is not None:
            out.append(AutoCandidate(action_type, None, clean, of, row["n"], priority))
    if not_whole:
        pairs = (
            Decision.objects.filter(request__action_type__in=not_whole)
            .values("request__action_type", "request__agent_id")
            .annotate(n=Count("id"), name=Max("request__agent__name"))
            .filter(n__gte=min_n)
            .order_by("-n", "request__action_type")[:MAX_GROUPS]
        )
        for row in pairs:
            action_type, agent_id = row["request__action_type"], row["request__agent_id"]
            qs = Decision.objects.filter(request__action_type=action_type, request__agent_id=agent_id)
            clean, of = _clean_streak(qs, last_n)
            if of and clean == of:
                priority = _escalating_priority(action_type, agent_id)
                if priority is not None:
                    out.append(AutoCandidate(action_type, row["name"], clean, of, row["n"], priority))
    return sorted(out, key=lambda c: (c.action_type, c.agent or ""))


# --- tightening candidates: the mirror image, from the review afterwards ---------------------------------

TIGHTENED_MODE = str(Mode.APPROVE.value)


@dataclass(frozen=True)
class TighteningCandidate:
    """An action type, for one agent, whose unattended requests reviewers flagged afterwards."""

    action_type: str
    agent: str
    flagged: int
    labelled: int
    policy_priority: int  # of the policy that lets it through unattended now

    @property
    def condition(self) -> str:
        return f"agent.name == {json.dumps(self.agent)}"

    @property
    def label(self) -> str:
        return f"{self.action_type} when {self.condition}"

    def tightening_row(self) -> dict[str, object]:
        return {
            "action_pattern": self.action_type,
            "mode": TIGHTENED_MODE,
            "condition": self.condition,
            # Just above the row that lets it through today.
            "priority": self.policy_priority + 1,
            "enabled": True,
            "description": (
                f"Tightening candidate: reviewers flagged {self.flagged} of the {self.labelled} unattended requests "
                "they labelled afterwards. Proposed from the evaluation dashboard."
            ),
        }

    def draft_table_yaml(self) -> str:
        """The current table plus the tightening row, as the simulation page reads it."""
        return policies_to_yaml([*policy_table_snapshot(), self.tightening_row()])


def _unattended_priority(action_type: str, agent_id: object) -> int | None:
    """The priority of the policy behind the latest such request; None when it no longer runs unattended."""
    latest = (
        ActionRequest.objects.filter(action_type=action_type, agent_id=agent_id)
        .order_by("-created_at")
        .values("mode", "policy_id")
        .first()
    )
    if latest is None or latest["mode"] not in (Mode.AUTO, Mode.LOG):
        return None
    if latest["policy_id"] is None:
        return 0
    return Policy.objects.filter(pk=latest["policy_id"]).values_list("priority", flat=True).first() or 0


def tightening_candidates(*, since: datetime) -> list[TighteningCandidate]:
    """(action type, agent) pairs with unattended requests flagged afterwards since ``since``, most flagged first.

    Types that no longer run unattended (already tightened) are left out.
    """
    pairs = (
        AfterReviewLabel.objects.filter(labelled_at__gte=since)
        .values("request__action_type", "request__agent_id")
        .annotate(
            labelled=Count("id"),
            flagged=Count("id", filter=~Q(label=AfterReviewLabelKind.FINE)),
            name=Max("request__agent__name"),
        )
        .filter(flagged__gt=0)
        .order_by("-flagged", "request__action_type")[:MAX_GROUPS]
    )
    out = []
    for row in pairs:
        priority = _unattended_priority(row["request__action_type"], row["request__agent_id"])
        if priority is not None:
            out.append(
                TighteningCandidate(row["request__action_type"], row["name"], row["flagged"], row["labelled"], priority)
            )
    return out
