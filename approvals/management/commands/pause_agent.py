from django.core.management.base import BaseCommand, CommandError

from approvals.services import action_type_pause, agent_pause
from core.errors import ServiceError

from ._pause_options import actor, add_common_arguments


class Command(BaseCommand):
    help = (
        "Kill switch: pause an agent (or, with --action-type, an action type for every agent). Its new "
        "submissions are blocked, its pending requests cancelled, its approvals not yet started revoked."
    )

    def add_arguments(self, parser):
        add_common_arguments(parser)
        parser.add_argument("--reason", required=True, help="Why (required); reviewers see it on the queue page.")

    def handle(self, *args, name, action_type, by, reason, **options):
        user, label = actor(by, "pause_agent")
        try:
            if action_type:
                outcome = action_type_pause(action_type=name, reason=reason, by=user, by_label=label)
            else:
                outcome = agent_pause(agent_name=name, reason=reason, by=user, by_label=label)
        except ServiceError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        pause = outcome.pause
        self.stdout.write(
            f"Paused {pause.kind_label} {pause.target}: {outcome.cancelled} pending request(s) cancelled, "
            f"{outcome.revoked} approval(s) revoked."
        )
