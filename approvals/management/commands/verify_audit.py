from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from approvals.audit_chain import audit_chain_verify_all, audit_chain_verify_request
from approvals.models import ActionRequest


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chains and report every edited, inserted or deleted event by request id and "
        "position. Exits 1 if anything is wrong; prints one summary line when all is well."
    )

    def add_arguments(self, parser):
        parser.add_argument("--request", dest="request_id", metavar="ID", help="Check this request's chain only.")
        parser.add_argument(
            "--chunk-size", type=int, default=500, help="Requests read per batch, and events per database round trip."
        )

    def handle(self, *args, request_id=None, chunk_size=500, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        if request_id:
            try:
                checks = [audit_chain_verify_request(request_id=request_id, chunk_size=chunk_size)]
            except (ActionRequest.DoesNotExist, ValidationError):
                raise CommandError(f"No action request {request_id}.") from None
        else:
            checks = audit_chain_verify_all(chunk_size=chunk_size)
        requests = events = broken = problems = 0
        for check in checks:
            requests += 1
            events += check.events
            if check.problems:
                broken += 1
                problems += len(check.problems)
                for problem in check.problems:
                    self.stdout.write(str(problem))
        if broken:
            raise CommandError(
                f"Audit trail NOT verified: {_count(problems, 'problem')} in {broken} of {_count(requests, 'request')} "
                f"({_count(events, 'event')} read).",
                returncode=1,
            )
        self.stdout.write(f"Audit trail verified: {_count(requests, 'request')}, {_count(events, 'event')}.")
