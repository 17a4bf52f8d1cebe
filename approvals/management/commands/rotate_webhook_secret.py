from django.core.management.base import BaseCommand, CommandError

from approvals.models import Agent
from approvals.services import agent_webhook_secret_rotate


class Command(BaseCommand):
    help = (
        "Give an agent a new webhook signing secret and print it (shown once). "
        "Deliveries sent from now on are signed with the new secret only."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The agent's name.")

    def handle(self, *args, name, **options):
        try:
            agent = Agent.objects.get(name=name)
        except Agent.DoesNotExist:
            raise CommandError(f"No agent {name!r}.") from None
        secret = agent_webhook_secret_rotate(agent=agent)
        self.stderr.write(f"New webhook secret for {agent.name}. Store it now; it is not shown again.")
        self.stdout.write(secret)
