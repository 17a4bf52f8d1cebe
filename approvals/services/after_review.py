"""Review afterwards: a reviewer labels what ran without one (every ``log`` request, a sample of ``auto``)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput, TransitionRefused

from ..models import ActionRequest, AfterReview, AfterReviewLabel, AfterReviewLabelKind, Status, Surface
from ..selectors import action_request_for_reviewer
from ._effects import audit

MAX_NOTE = 2000


def after_review_sampled(request_id: uuid.UUID, rate: float) -> bool:
    """Whether an auto-mode request is in its policy's review sample: fixed by its id, so a replay agrees."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(b"after-review:" + request_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def after_review_for(*, request_id: uuid.UUID, status: str, mode: str, sample_rate: float) -> str:
    """What a new request's review-afterwards state starts as: due for log, and for sampled auto requests."""
    if status != Status.ALLOWED:
        return AfterReview.NONE
    if mode == "log" or (mode == "auto" and after_review_sampled(request_id, sample_rate)):
        return AfterReview.DUE
    return AfterReview.NONE


def _checked(label: str, reason_category: str, note: str) -> tuple[str, str, str]:
    if label not in AfterReviewLabelKind.values:
        raise InvalidInput(
            f"label must be one of {', '.join(AfterReviewLabelKind.values)}.", details={"label": label[:50]}
        )
    reason_category = (reason_category or "").strip()
    if label != AfterReviewLabelKind.FINE and not reason_category:
        raise InvalidInput("A flag needs a reason category (what went wrong), e.g. wrong_recipient.")
    if len(reason_category) > 50:
        raise InvalidInput("reason_category must be at most 50 characters.")
    if len(note or "") > MAX_NOTE:
        raise InvalidInput(f"note must be at most {MAX_NOTE} characters.")
    return label, reason_category, (note or "").strip()


def action_request_label(
    *,
    request_id: Any,
    reviewer: AbstractBaseUser,
    label: str,
    reason_category: str = "",
    note: str = "",
    surface: str = Surface.WEB,
) -> AfterReviewLabel:
    """Label a request that ran unattended: fine, should have asked a human, or should have been blocked.

    Invariant: a request is labelled at most once, only while it is due and visible to the
    reviewer, whatever the number of reviewers labelling at once (conditional UPDATE on its
    state); the label, its audit row and the state change commit together.
    """
    label, reason_category, note = _checked(label, reason_category, note)
    request = action_request_for_reviewer(reviewer=reviewer, request_id=request_id)
    now = timezone.now()
    with transaction.atomic():
        won = ActionRequest.objects.filter(pk=request.pk, after_review=AfterReview.DUE).update(
            after_review=AfterReview.LABELLED
        )
        if not won:
            request.refresh_from_db(fields=["after_review"])
            if request.after_review == AfterReview.LABELLED:
                raise TransitionRefused("Someone already labelled this request.", code="already_labelled")
            raise TransitionRefused(
                "This request is not waiting for a label (it was not sampled, or it is too old now).",
                code="not_due",
            )
        request.after_review = AfterReview.LABELLED
        labelled = AfterReviewLabel.objects.create(
            request=request,
            label=label,
            reason_category=reason_category,
            note=note,
            reviewer=reviewer,
            reviewer_username=reviewer.get_username(),
            surface=surface,
            labelled_at=now,
        )
        audit(
            request,
            kind="labelled",
            now=now,
            actor_kind="reviewer",
            actor_label=reviewer.get_username(),
            data={"label": label, "reason_category": reason_category, "note": note, "surface": surface},
        )
    return labelled


def after_reviews_lapse_due(*, now: datetime | None = None) -> int:
    """Move requests due longer than ``COUNTERSIGN_AFTER_REVIEW_MAX_AGE_DAYS`` to unlabelled: the queue stays bounded."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.COUNTERSIGN_AFTER_REVIEW_MAX_AGE_DAYS)
    return ActionRequest.objects.filter(after_review=AfterReview.DUE, created_at__lt=cutoff).update(
        after_review=AfterReview.UNLABELLED
    )
