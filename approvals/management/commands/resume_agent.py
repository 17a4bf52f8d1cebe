from django.core.management.base import BaseCommand, CommandError

from approvals.services import action_type_resume, agent_resume
from core.errors import ServiceError

from ._pause_options import actor, add_common_arguments


class Command(BaseCommand):
    help = (
        "Lift the pause of an agent (or, with --action-type, of an action type). New submissions meet the "
        "policy table again; cancelled requests stay cancelled and revoked approvals stay revoked."
    )

    def add_arguments(self, parser):
        add_common_arguments(parser)

    def handle(self, *args, name, action_type, by, **options):
        user, label = actor(by, "resume_agent")
        try:
            if action_type:
                pause = action_type_resume(action_type=name, by=user, by_label=label)
            else:
                pause = agent_resume(agent_name=name, by=user, by_label=label)
        except ServiceError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        self.stdout.write(f"Resumed {pause.kind_label} {pause.target} (paused by {pause.paused_by_label}).")
