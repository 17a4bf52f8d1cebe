from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from approvals.models import Agent
from approvals.services import agent_create
from policies.services import policies_load_defaults
from reviewers.services import reviewer_create

DEMO_ADMIN = ("admin", "admin-demo-password")
DEMO_REVIEWER = ("reviewer", "reviewer-demo-password")
DEMO_AGENT = "demo-agent"


class Command(BaseCommand):
    help = "Load the default policy table and a demo admin, reviewer and agent (for make run)."

    def add_arguments(self, parser):
        parser.add_argument("--key-file", help="Also write the demo agent's API key to this file.")

    def handle(self, *args, key_file=None, **options):
        policies_load_defaults()
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username=DEMO_ADMIN[0], defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(DEMO_ADMIN[1])
            admin.save()
        if not user_model.objects.filter(username=DEMO_REVIEWER[0]).exists():
            reviewer_create(username=DEMO_REVIEWER[0], password=DEMO_REVIEWER[1])
        lines = [
            "",
            "Countersign demo accounts",
            f"  admin     {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}   http://127.0.0.1:8000/admin/",
            f"  reviewer  {DEMO_REVIEWER[0]} / {DEMO_REVIEWER[1]}   http://127.0.0.1:8000/queue/",
        ]
        if not Agent.objects.filter(name=DEMO_AGENT).exists():
            agent, raw_key = agent_create(name=DEMO_AGENT)
            lines += [
                f"  agent     {DEMO_AGENT}",
                f"    API key (shown once):        {raw_key}",
                f"    webhook secret (shown once): {agent.webhook_secret}",
            ]
            if key_file:
                with open(key_file, "w") as handle:
                    handle.write(raw_key + "\n")
        else:
            lines.append(f"  agent     {DEMO_AGENT} (exists; its API key was shown when it was created)")
        self.stdout.write("\n".join(lines) + "\n")
