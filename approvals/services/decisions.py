"""A reviewer approves (possibly with edited params) or rejects a pending request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.canonical import canonical_json
from core.errors import InvalidInput, NotFound, PermissionRefused, TransitionRefused

from ..email_links import email_link_read
from ..models import ActionRequest, Decision, QueueNotification, Surface
from ..params_schema import params_problems
from ..push import push_decision_read
from ..selectors import action_type_schemas
from ..visibility import with_visibility_to
from ._finalise import finalise_decision
from .quorum import decide_by_quorum


def action_request_decide(
    *,
    request_id: Any,
    reviewer: AbstractBaseUser,
    approve: bool,
    final_params: dict[str, Any] | None = None,
    reason: str = "",
    note: str = "",
    seen_revision: int | None = None,
    reason_category: str = "",
    surface: str = Surface.WEB,
) -> Decision:
    """Approve (possibly with edited params) or reject a pending request.

    Invariant: a request gets at most one decision, and only while it is pending
    and before its deadline, whatever the number of concurrent reviewers and
    whether or not the expiry sweep has run; only by a reviewer (the review permission) who may
    see the request. A rejection always carries a known
    reason category and a reason; an approval carries no category. ``surface`` is the door
    the reviewer decided through (``Surface``), recorded on the decision or vote.
    """
    if surface not in Surface.values:
        raise ValueError(f"Unknown decision surface {surface!r}.")
    reason = (reason or "").strip()
    if not approve and not reason:
        raise InvalidInput("A rejection needs a reason the agent can act on.", code="reason_required")
    reason_category = _reason_category(approve=approve, reason=reason, reason_category=reason_category)
    if final_params is not None and not isinstance(final_params, dict):
        raise InvalidInput(
            "Edited parameters must be a JSON object.",
            code="invalid_params",
            details={"errors": [{"path": "", "message": "Params must be a JSON object."}]},
        )

    try:
        # One query reads the row, what its snapshot needs, and whether this reviewer may see it.
        request = with_visibility_to(ActionRequest.objects.select_related("agent", "reviewer_group"), reviewer).get(
            pk=request_id
        )
    except (ActionRequest.DoesNotExist, ValueError, ValidationError):
        raise NotFound(f"No action request {request_id}.") from None
    if not request.user_may_review:
        raise PermissionRefused("Only members of a reviewer group can decide requests.", code="permission_denied")
    if not request.visible_to_reviewer:
        # Routed to another group: to this reviewer the request does not exist.
        raise NotFound(f"No action request {request_id}.")
    if approve and request.agent.owner_id is not None and request.agent.owner_id == reviewer.pk:
        raise PermissionRefused(
            "You own the agent that asked: someone else must approve this request (separation of duties).",
            code="owner_cannot_approve",
        )
    if approve and final_params is not None and canonical_json(final_params) != canonical_json(request.params):
        _check_edited_params(action_type=request.action_type, params=final_params)
    if request.required_approvals > 1:
        return decide_by_quorum(
            request=request,
            reviewer=reviewer,
            approve=approve,
            final_params=final_params,
            reason=reason,
            reason_category=reason_category,
            note=note,
            seen_revision=seen_revision,
            surface=surface,
        )
    with transaction.atomic():
        return finalise_decision(
            request=request,
            now=timezone.now(),
            reviewer=reviewer,
            approve=approve,
            final_params=final_params,
            reason=reason,
            reason_category=reason_category,
            note=note,
            seen_revision=seen_revision,
            surface=surface,
        )


def action_request_decide_by_email_link(
    *, token: str, reviewer: AbstractBaseUser, reason: str = "", reason_category: str = ""
) -> Decision:
    """Confirm the decision a reviewer's one-click email link preselected (surface ``email``).

    Invariant: a link decides at most once, only for the reviewer it was sent to, with the
    revision its email showed. Using it up and deciding are one transaction: a decision the
    service refuses (decided elsewhere, expired, changed since) leaves the link unused.
    """
    link = email_link_read(token=token, reviewer=reviewer)
    with transaction.atomic():
        used = QueueNotification.objects.filter(pk=link.notification.pk, link_used_at__isnull=True).update(
            link_used_at=timezone.now()
        )
        if not used:
            raise TransitionRefused("This link was used already: each email link decides once.", code="link_used")
        return action_request_decide(
            request_id=link.notification.request_id,
            reviewer=reviewer,
            approve=link.decision == "approve",
            reason=reason,
            reason_category=reason_category,
            seen_revision=link.revision,
            surface=Surface.EMAIL,
        )


def action_request_decide_by_push(*, token: str, reviewer: AbstractBaseUser) -> Decision:
    """The Approve action of a push notification: approve as ``reviewer`` with the revision it was sent with.

    The token came encrypted to one of the reviewer's devices and names the reviewer, the request
    and the revision; the caller also holds the reviewer's session (surface ``push``).
    """
    push = push_decision_read(token, user_id=reviewer.pk)
    return action_request_decide(
        request_id=push.request_id, reviewer=reviewer, approve=True, seen_revision=push.revision, surface=Surface.PUSH
    )


def _check_edited_params(*, action_type: str, params: dict[str, Any]) -> None:
    """A reviewer's edit must satisfy the schema the agent registered for the action type, if any."""
    schema = action_type_schemas([action_type]).get(action_type)
    if schema is None:
        return
    problems = params_problems(schema, params)
    if problems:
        listed = "; ".join(f"{p['path'] or '(params)'}: {p['message']}" for p in problems[:5])
        raise InvalidInput(
            f"The edited parameters do not match the schema registered for {action_type}: {listed}",
            code="invalid_params",
            details={"errors": problems},
        )


def _reason_category(*, approve: bool, reason: str, reason_category: str) -> str:
    """The rejection category slug to record (settings.COUNTERSIGN_REJECT_REASONS); empty for an approval."""
    category = (reason_category or "").strip()
    known = [slug for slug, _ in settings.COUNTERSIGN_REJECT_REASONS]
    if approve:
        if category:
            raise InvalidInput(
                "An approval takes no reason category; send reason_category only with a rejection.",
                code="invalid_reason_category",
                details={"reason_category": category},
            )
        return ""
    if not category:
        # Older callers wrote the category as a prefix of the reason ("wrong_data: the amount is off").
        prefix, colon, _ = reason.partition(":")
        if colon and prefix.strip().lower() in known:
            return prefix.strip().lower()
        raise InvalidInput(
            f"A rejection needs a reason_category, one of: {', '.join(known)}.",
            code="reason_category_required",
            details={"valid": known},
        )
    if category not in known:
        raise InvalidInput(
            f"Unknown reason_category {category!r}; use one of: {', '.join(known)}.",
            code="invalid_reason_category",
            details={"reason_category": category, "valid": known},
        )
    return category
