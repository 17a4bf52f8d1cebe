"""The decide service's one read answers the visibility rule as its other forms answer it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from approvals.models import ActionRequest
from approvals.selectors import user_is_reviewer
from approvals.visibility import reviewer_may_see, with_visibility_to
from tests.factories import PendingRequestFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(alice, finance, charlie):
    """Reviewers through a group (alice, fiona in finance), one holding the permission directly, one in a
    group without it, a superuser, inactive ones, and charlie in no group."""
    review = Permission.objects.get(codename="review_actionrequest", content_type__app_label="approvals")
    direct = UserFactory(username="direct")
    direct.user_permissions.add(review)
    idle_group = UserFactory(username="idle_group")
    idle_group.groups.add(Group.objects.create(name="no permission here"))
    retired = UserFactory(username="retired", is_active=False)
    retired.user_permissions.add(review)
    return [
        alice,
        finance,
        charlie,
        direct,
        idle_group,
        retired,
        UserFactory(username="root", is_superuser=True),
        UserFactory(username="old_root", is_superuser=True, is_active=False),
    ]


def test_visible_and_may_review_match_the_rule_for_every_reviewer_and_routing(people, finance):
    finance_group = finance.groups.get()
    requests = [PendingRequestFactory(), PendingRequestFactory(reviewer_group=finance_group)]
    seen = set()
    for user in people:
        for request in requests:
            row = with_visibility_to(ActionRequest.objects.all(), user).get(pk=request.pk)
            fresh = type(user).objects.get(pk=user.pk)  # permissions read afresh, not cached on the object
            expected = (reviewer_may_see(reviewer=user, request=request), user_is_reviewer(fresh))
            assert (row.visible_to_reviewer, row.user_may_review) == expected, (user.username, request.reviewer_group)
            seen.add(expected)
    assert seen == {(True, True), (False, True), (True, False), (False, False)}
