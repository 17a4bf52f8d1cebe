from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

DEFAULT_REVIEWER_GROUP = "reviewers"


def reviewer_group_ensure(*, name: str = DEFAULT_REVIEWER_GROUP) -> Group:
    """A reviewer group is a Django group holding the review permission."""
    group, _ = Group.objects.get_or_create(name=name)
    permission = Permission.objects.get(codename="review_actionrequest", content_type__app_label="approvals")
    group.permissions.add(permission)
    return group


@transaction.atomic
def reviewer_create(
    *, username: str, password: str, group_name: str = DEFAULT_REVIEWER_GROUP, email: str = ""
) -> AbstractBaseUser:
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(username=username, defaults={"email": email})
    user.set_password(password)
    user.save()
    user.groups.add(reviewer_group_ensure(name=group_name))
    return user
