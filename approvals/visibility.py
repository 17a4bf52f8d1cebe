"""Which requests a reviewer may see: one rule, in the three forms its users need.

A request routed to a reviewer group exists only for that group's members; a request
routed to no group is everyone's. The queue, the history, a request's page, decide, batch,
claims, the realtime publisher and the websocket consumer all ask this module.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from .models import ActionRequest

REVIEW_CODENAME, REVIEW_APP_LABEL = "review_actionrequest", "approvals"
REVIEW_PERMISSION = Q(codename=REVIEW_CODENAME, content_type__app_label=REVIEW_APP_LABEL)
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
    Both are SQL written once from the models (``_visibility_sql``): built as ORM expressions
    (``Exists`` over the memberships and permissions) they cost a decision 1.3 ms of CPU to compile.
    """
    visible_sql, may_review_sql = _visibility_sql()
    if not user.is_active or user.is_superuser:
        may_review: Any = Value(bool(user.is_active))
    else:
        may_review = RawSQL(  # noqa: S611 - SQL of our own (_visibility_sql); the values are parameters
            may_review_sql, [REVIEW_CODENAME, REVIEW_APP_LABEL, user.pk, user.pk], output_field=BooleanField()
        )
    return queryset.annotate(
        visible_to_reviewer=RawSQL(visible_sql, [user.pk], output_field=BooleanField()),  # noqa: S611 - as above
        user_may_review=may_review,
    )


@cache
def _visibility_sql() -> tuple[str, str]:
    """(the request row is routed to no group or to one of the user's, the user holds the review permission
    directly or through a group): each an SQL condition on the request table's row, the user's id a parameter."""
    quote = connection.ops.quote_name
    user_model = get_user_model()

    def column(model: Any, field: str) -> str:
        return f"{quote(model._meta.db_table)}.{quote(model._meta.get_field(field).column)}"

    def table(model: Any) -> str:
        return quote(model._meta.db_table)

    memberships = user_model.groups.through
    user_permissions = user_model.user_permissions.through
    group_permissions = Group.permissions.through
    routed_to = column(ActionRequest, "reviewer_group")
    # Table and column names come from the models and are quoted; values are parameters.
    visible = (
        f"({routed_to} IS NULL OR EXISTS (SELECT 1 FROM {table(memberships)} "  # noqa: S608
        f"WHERE {column(memberships, 'user')} = %s AND {column(memberships, 'group')} = {routed_to}))"
    )
    permission = column(Permission, "id")
    may_review = (
        f"EXISTS (SELECT 1 FROM {table(Permission)} INNER JOIN {table(ContentType)} "  # noqa: S608
        f"ON {column(ContentType, 'id')} = {column(Permission, 'content_type')} "
        f"WHERE {column(Permission, 'codename')} = %s AND {column(ContentType, 'app_label')} = %s "
        f"AND ({permission} IN (SELECT {column(user_permissions, 'permission')} FROM {table(user_permissions)} "
        f"WHERE {column(user_permissions, 'user')} = %s) "
        f"OR {permission} IN (SELECT {column(group_permissions, 'permission')} FROM {table(group_permissions)} "
        f"INNER JOIN {table(memberships)} ON {column(memberships, 'group')} = {column(group_permissions, 'group')} "
        f"WHERE {column(memberships, 'user')} = %s)))"
    )
    return visible, may_review


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
