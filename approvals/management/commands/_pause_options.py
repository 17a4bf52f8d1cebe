"""What pause_agent and resume_agent share: who runs them, and the service errors as command errors."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError


def add_common_arguments(parser) -> None:
    parser.add_argument("name", help="The agent's name (or, with --action-type, the action type).")
    parser.add_argument(
        "--action-type", action="store_true", help="NAME is an action type: pause it (resume it) for every agent."
    )
    parser.add_argument("--by", default="", help="The staff username to record (default: the operating-system user).")


def actor(by: str, command: str) -> tuple[AbstractBaseUser | None, str]:
    """The user named by --by, or no user and a label naming the command and the operating-system user."""
    if by:
        user = get_user_model().objects.filter(username=by, is_staff=True, is_active=True).first()
        if user is None:
            raise CommandError(f"No active staff user is named {by!r}.")
        return user, ""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return None, f"manage.py {command} (os user {who})"
