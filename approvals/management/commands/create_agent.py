from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from approvals.services import agent_create
from core.errors import InvalidInput


class Command(BaseCommand):
    help = "Create an agent. Prints its webhook secret, then its API key as the last line (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", help="Username of the person responsible for this agent.")
        parser.add_argument("--callback-url", default="", help="Default webhook URL for this agent's requests.")

    def handle(self, *args, name, owner=None, callback_url="", **options):
        owner_user = None
        if owner:
            try:
                owner_user = get_user_model().objects.get(username=owner)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {owner!r}.") from None
        try:
            agent, raw_key = agent_create(name=name, owner=owner_user, default_callback_url=callback_url)
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"Agent {agent.name} created ({agent.id}). Store these now; they are not shown again.")
        self.stdout.write(agent.webhook_secret)
        self.stdout.write(raw_key)
