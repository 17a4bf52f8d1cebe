"""Deciding several cards of one action type at once, each on its own."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from core.errors import InvalidInput, ServiceError

from ..models import ActionRequest, Surface
from .decisions import action_request_decide

BATCH_LIMIT = 100


def action_requests_decide_batch(
    *,
    reviewer: AbstractBaseUser,
    items: list[tuple[Any, int | None]],
    approve: bool,
    reason: str = "",
    reason_category: str = "",
    note: str = "",
    surface: str = Surface.BATCH,
) -> list[dict[str, Any]]:
    """Decide several requests of one action type as the reviewer confirmed them.

    Each request is decided in its own transaction with the revision the reviewer saw,
    so one that changed, expired or was decided by someone else is refused on its own
    while the rest go through. Batch approval never edits params. Each decision records
    ``surface`` (the queue page's batch unless another door says otherwise).
    """
    if len(items) > BATCH_LIMIT:
        raise InvalidInput(f"At most {BATCH_LIMIT} requests per batch.", code="batch_too_large")
    ids = [request_id for request_id, _ in items]
    try:
        action_types = set(
            ActionRequest.objects.filter(pk__in=ids).values_list("action_type", flat=True).distinct().order_by()
        )
    except (ValueError, ValidationError):
        raise InvalidInput("Every item needs the id of an action request.", code="invalid_items") from None
    if len(action_types) > 1:
        raise InvalidInput(
            "A batch holds requests of one action type only: select cards of the same type "
            f"(this selection mixes {', '.join(sorted(action_types))}).",
            code="mixed_action_types",
        )
    results: list[dict[str, Any]] = []
    for request_id, revision in items:
        try:
            decision = action_request_decide(
                request_id=request_id,
                reviewer=reviewer,
                approve=approve,
                reason=reason,
                reason_category=reason_category,
                note=note,
                seen_revision=revision,
                surface=surface,
            )
        except InvalidInput:
            # The reviewer's input is wrong for every item alike (e.g. a rejection without a
            # reason); it is checked before any write, so the first item stops the whole batch.
            raise
        except ServiceError as exc:
            results.append({"id": str(request_id), "ok": False, "code": exc.code, "message": exc.message})
        else:
            results.append({"id": str(request_id), "ok": True, "status": decision.request.status})
    return results
