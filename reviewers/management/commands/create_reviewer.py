import secrets

from django.core.management.base import BaseCommand

from reviewers.services import DEFAULT_REVIEWER_GROUP, reviewer_create


class Command(BaseCommand):
    help = "Create (or update) a reviewer: a user in a reviewer group."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", help="Defaults to a random password, printed once.")
        parser.add_argument("--group", default=DEFAULT_REVIEWER_GROUP, help="Reviewer group (created if missing).")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, password=None, group=DEFAULT_REVIEWER_GROUP, email="", **options):
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        user = reviewer_create(username=username, password=password, group_name=group, email=email)
        self.stdout.write(f"Reviewer {user.get_username()} is in group {group!r}.")
        if generated:
            self.stdout.write(f"Password: {password}")
