"""Reviewer quality (staff only): how each reviewer decides, and how far two reviewers agree.

Reads only. Per reviewer over a window: decisions, median time to decide (from submission, and
from opening the card), approval rate beside their groups' (weighted by where they decided),
and fast approvals (approved within ``COUNTERSIGN_FAST_APPROVAL_SECONDS`` of first opening the
card, from ``CardOpening``). Agreement: blind second opinions on a deterministic sample of
decided requests, compared with the decision per action type (percent agreement, Cohen's kappa).
"""

from __future__ import annotations

import hashlib
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from approvals.models import ActionRequest, Decision, DecisionOutcome, Vote
from approvals.visibility import requests_visible_to

from .models import CardOpening, SecondOpinion

SECOND_OPINION_SCAN = 500  # the most recent decided requests looked at for the next blind review


def cohens_kappa(pairs: Iterable[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters' labels, item by item; None when it is undefined (no items, or chance is 1)."""
    pairs = list(pairs)
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for first, second in pairs if first == second) / n
    first_counts = Counter(first for first, _ in pairs)
    second_counts = Counter(second for _, second in pairs)
    expected = sum(first_counts[label] * second_counts[label] for label in first_counts) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def second_opinion_sampled(request_id: uuid.UUID, rate: float) -> bool:
    """Whether a decided request is in the blind second-opinion sample: fixed by its id, so replays agree."""
    digest = hashlib.sha256(b"second-opinion:" + request_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def second_opinion_next(*, user: AbstractBaseUser) -> ActionRequest | None:
    """The next decided request ``user`` may see, in the sample, that they neither decided nor voted on nor judged yet."""
    rate = settings.COUNTERSIGN_SECOND_OPINION_RATE
    if rate <= 0:
        return None
    candidates: QuerySet[ActionRequest] = (
        requests_visible_to(ActionRequest.objects.filter(decision__reviewer__isnull=False), user)
        .exclude(decision__reviewer=user)
        .exclude(pk__in=Vote.objects.filter(reviewer=user).values("request_id"))
        .exclude(pk__in=SecondOpinion.objects.filter(reviewer=user).values("request_id"))
        .select_related("agent")
        .order_by("-decision__decided_at")
    )
    for request in candidates[:SECOND_OPINION_SCAN]:
        if second_opinion_sampled(request.pk, rate):
            return request
    return None


@dataclass(frozen=True)
class ReviewerFigures:
    username: str
    decisions: int
    approvals: int
    median_seconds_to_decide: float | None
    median_seconds_from_opening: float | None
    approval_rate: float | None
    group_approval_rate: float | None
    fast_approvals: int


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def reviewer_figures(*, since: datetime, until: datetime) -> list[ReviewerFigures]:
    """Each human reviewer's figures over decisions made in [since, until), busiest first."""
    fast_seconds = settings.COUNTERSIGN_FAST_APPROVAL_SECONDS
    rows = list(
        Decision.objects.filter(reviewer__isnull=False, decided_at__gte=since, decided_at__lt=until).values_list(
            "reviewer_id",
            "reviewer_username",
            "outcome",
            "seconds_to_decide",
            "decided_at",
            "request_id",
            "request__reviewer_group_id",
        )
    )
    openings = {
        (request_id, user_id): opened_at
        for request_id, user_id, opened_at in CardOpening.objects.filter(
            request_id__in={row[5] for row in rows}
        ).values_list("request_id", "user_id", "opened_at")
    }
    by_group: dict[Any, list[bool]] = defaultdict(list)
    by_reviewer: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_group[row[6]].append(row[2] == DecisionOutcome.APPROVED)
        by_reviewer[row[0]].append(row)
    group_rate = {group: sum(approved) / len(approved) for group, approved in by_group.items()}

    figures = []
    for reviewer_id, decided in by_reviewer.items():
        approvals = [row for row in decided if row[2] == DecisionOutcome.APPROVED]
        from_opening = {
            row[5]: (row[4] - openings[(row[5], reviewer_id)]).total_seconds()
            for row in decided
            if (row[5], reviewer_id) in openings
        }
        figures.append(
            ReviewerFigures(
                username=decided[-1][1],
                decisions=len(decided),
                approvals=len(approvals),
                median_seconds_to_decide=_median([row[3] for row in decided]),
                median_seconds_from_opening=_median(list(from_opening.values())),
                approval_rate=len(approvals) / len(decided),
                # What their groups approve, weighted by how many of their own decisions each group had.
                group_approval_rate=sum(group_rate[row[6]] for row in decided) / len(decided),
                fast_approvals=sum(
                    1 for row in approvals if row[5] in from_opening and from_opening[row[5]] < fast_seconds
                ),
            )
        )
    return sorted(figures, key=lambda figure: (-figure.decisions, figure.username))


@dataclass(frozen=True)
class Agreement:
    action_type: str
    pairs: int
    agreed: int
    kappa: float | None

    @property
    def agreement_rate(self) -> float:
        return self.agreed / self.pairs if self.pairs else 0.0


def reviewer_agreement(*, since: datetime, until: datetime) -> list[Agreement]:
    """Per action type: blind second opinions given in [since, until) against the decisions they re-judged."""
    pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for action_type, outcome, approve in SecondOpinion.objects.filter(
        created_at__gte=since, created_at__lt=until, request__decision__isnull=False
    ).values_list("request__action_type", "request__decision__outcome", "approve"):
        pairs[action_type].append((outcome == DecisionOutcome.APPROVED, approve))
    return [
        Agreement(
            action_type=action_type,
            pairs=len(judged),
            agreed=sum(1 for first, second in judged if first == second),
            kappa=cohens_kappa(judged),
        )
        for action_type, judged in sorted(pairs.items())
    ]
