"""Requests that need several approvals: one vote per reviewer, the last needed one decides."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.canonical import canonical_json
from core.errors import InvalidInput, TransitionRefused

from ..models import ActionRequest, Decision, Status, Vote
from ._effects import announce_updated, audit
from ._finalise import finalise_decision
from .refusals import transition_refusal


def decide_by_quorum(
    *,
    request: ActionRequest,
    reviewer: AbstractBaseUser,
    approve: bool,
    final_params: dict[str, Any] | None,
    reason: str,
    reason_category: str,
    note: str,
    seen_revision: int | None,
    surface: str,
) -> Decision | Vote:
    """Record one reviewer's vote; the vote that completes the quorum, or any rejection, decides.

    Voters on one request are serialised by a row lock (PostgreSQL) or by the
    IMMEDIATE write transaction (SQLite), so the approval count a voter reads is
    never stale; the final transition is still the one conditional UPDATE in
    _finalise_decision, so exactly one caller moves the request out of pending.
    """
    if approve and final_params is not None and canonical_json(final_params) != canonical_json(request.params):
        raise InvalidInput(
            "Requests that need several approvals cannot be edited: every approver must see the same parameters.",
            code="edit_not_allowed_with_quorum",
        )
    with transaction.atomic():
        now = timezone.now()
        locked = (
            ActionRequest.objects.select_for_update(of=("self",))
            .select_related("agent", "reviewer_group")
            .filter(pk=request.pk, status=Status.PENDING, expires_at__gt=now)
            .first()
        )
        if locked is None:
            request.refresh_from_db()
            raise transition_refusal(request, now=now, verb="approve" if approve else "reject")
        if Vote.objects.filter(request=locked, reviewer=reviewer).exists():
            raise TransitionRefused(
                "You already voted on this request; another reviewer must add the next approval.",
                code="already_voted",
            )
        vote = Vote.objects.create(
            request=locked,
            reviewer=reviewer,
            reviewer_username=reviewer.get_username(),
            approve=approve,
            reason_category=reason_category,
            reason=reason,
            note=note or "",
            created_at=now,
            surface=surface,
        )
        approvals = Vote.objects.filter(request=locked, approve=True).count()
        if approve and approvals < locked.required_approvals:
            audit(
                locked,
                kind="vote_approve",
                now=now,
                actor_kind="reviewer",
                actor_label=reviewer.get_username(),
                data={
                    "approvals": approvals,
                    "required": locked.required_approvals,
                    "note": note,
                    "surface": surface,
                },
            )
            announce_updated(locked)
            return vote
        return finalise_decision(
            request=locked,
            now=now,
            reviewer=reviewer,
            approve=approve,
            final_params=None,
            reason=reason,
            reason_category=reason_category,
            note=note,
            seen_revision=seen_revision,
            surface=surface,
            votes=list(Vote.objects.filter(request=locked).values_list("reviewer_username", "approve")),
        )
