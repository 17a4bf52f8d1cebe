"""Which requests a reviewer may see: one rule, in the three forms its users need.

A request routed to a reviewer group exists only for that group's members; a request
routed to no group is everyone's. The queue, the history, a request's page, decide, batch,
claims, the realtime publisher and the websocket consumer all ask this module.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from .models import ActionRequest

REVIEW_PERMISSION = Q(codename="review_actionrequest", content_type__app_label="approvals")
# Stands for "routed to no group" in the expression below (group ids start at 1).
NO_GROUP = 0
QUEUE_GROUP = "queue.everyone"


def reviewer_group_ids(user: AbstractBaseUser) -> list[int]:
    return list(user.groups.values_list("id", flat=True))


def requests_visible_to(queryset: QuerySet[ActionRequest], user: AbstractBaseUser) -> QuerySet[ActionRequest]:
    """``queryset`` narrowed to what ``user`` may see (history, a request's page).

    The plain form: PostgreSQL estimates it well and keeps walking the finish-time index of
    the history, where the coalesced form below makes it misjudge the match and sort instead.
    """
    return queryset.filter(Q(reviewer_group__isnull=True) | Q(reviewer_group__in=user.groups.all()))


def pending_visible_to(queryset: QuerySet[ActionRequest], user: AbstractBaseUser) -> QuerySet[ActionRequest]:
    """The same rule for the live queue, as one indexable expression.

    Not "group IS NULL OR group IN (...)": on the pending-by-deadline index the OR tempts
    SQLite into a multi-index scan and a full sort, where one IN over the coalesced group
    keeps the index order.
    """
    return queryset.alias(visible_group=Coalesce("reviewer_group_id", Value(NO_GROUP))).filter(
        visible_group__in=[NO_GROUP, *reviewer_group_ids(user)]
    )


def reviewer_may_see(*, reviewer: AbstractBaseUser, request: ActionRequest) -> bool:
    """The same rule for one request already in hand (decide, batch, claims)."""
    if request.reviewer_group_id is None:
        return True
    return reviewer.groups.filter(pk=request.reviewer_group_id).exists()


def with_visibility_to(queryset: QuerySet[ActionRequest], user: AbstractBaseUser) -> QuerySet[ActionRequest]:
    """The same rule, answered in the query that reads the request (decide): ``visible_to_reviewer``.

    The same query answers ``user_may_review``: whether ``user`` holds the review permission at all
    (``selectors.user_is_reviewer``'s rule, without reading every permission the user has).
    """
    membership = get_user_model().groups.through.objects.filter(user_id=user.pk, group_id=OuterRef("reviewer_group_id"))
    if not user.is_active or user.is_superuser:
        may_review: Any = Value(bool(user.is_active))
    else:
        may_review = Exists(
            Permission.objects.filter(REVIEW_PERMISSION).filter(Q(user=user.pk) | Q(group__user=user.pk))
        )
    return queryset.annotate(
        visible_to_reviewer=ExpressionWrapper(
            Q(reviewer_group__isnull=True) | Exists(membership), output_field=BooleanField()
        ),
        user_may_review=ExpressionWrapper(may_review, output_field=BooleanField()),
    )


def reviewer_group_channel(group_id: int) -> str:
    return f"queue.group.{group_id}"


def queue_channel_for(request: ActionRequest) -> str:
    """The live channel a request's queue events go to: only those who may see it listen there."""
    group_id = request.reviewer_group_id
    return reviewer_group_channel(group_id) if group_id is not None else QUEUE_GROUP


def queue_channels_for(user: AbstractBaseUser) -> list[str]:
    """The live channels a reviewer's open queue joins: everyone's, and one per group they belong to."""
    return [QUEUE_GROUP, *(reviewer_group_channel(group_id) for group_id in reviewer_group_ids(user))]


def reviewers_who_may_see(*, group_id: int | None) -> QuerySet:
    """The same rule from the other side: the active reviewers who may see a request routed to ``group_id``.

    A reviewer holds ``approvals.review_actionrequest`` through a group, directly, or as a superuser
    (``user_is_reviewer``); a request routed to a group is seen by that group's members only.
    """
    perm_ids = Permission.objects.filter(REVIEW_PERMISSION).values("pk")
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(user_permissions__in=perm_ids) | Q(groups__permissions__in=perm_ids))
    )
    if group_id is not None:
        users = users.filter(pk__in=get_user_model().groups.through.objects.filter(group_id=group_id).values("user_id"))
    return users.distinct()
