from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from policies.selectors import policy_table_from_rows
from policies.services import policy_table_plan, policy_table_replace
from policies.simulation import policy_table_simulate
from policies.yaml_io import policies_from_yaml


class Command(BaseCommand):
    help = (
        "Make the policy table exactly what a YAML file says (as export_policies writes it). Every row is "
        "validated before anything changes; the change is one new version. A row updates the policy with its "
        "id, or, when the id is absent or unknown here, the policy with the same action_pattern, priority and "
        "condition; other rows are created and unmatched policies deleted. --dry-run prints what each row would "
        "do and the simulation, and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="YAML file, or - for stdin.")
        parser.add_argument("--note", "-m", default="", help="The change note (required unless --dry-run).")
        parser.add_argument("--dry-run", action="store_true", help="Validate and simulate; change nothing.")
        parser.add_argument("--days", type=int, default=7, help="Simulation window in days (default 7).")
        parser.add_argument("--limit", type=int, default=None, help="Simulate the last N requests instead.")

    def handle(self, *args, path, note, dry_run, days, limit, **options):
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        try:
            rows = policies_from_yaml(text)
            changes = policy_table_plan(rows=rows)
            for change in changes:
                self.stdout.write(change.describe())
            report = policy_table_simulate(
                table=policy_table_from_rows(rows), days=None if limit else days, limit=limit
            )
            self.stdout.write(
                f"Simulation: replayed {report.replayed} requests; {report.changed} would change mode; "
                f"{report.previously_rejected_now_unattended} previously rejected by humans would now run unattended."
            )
            for line in report.summary():
                self.stdout.write(f"  {line}")
            if dry_run:
                self.stdout.write("Dry run: nothing changed.")
                return
            version = policy_table_replace(actor=None, rows=rows, note=note)
            counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "unchanged", "delete")}
        except ServiceError as exc:
            details = "".join(f"\n  {field}: {' '.join(msgs)}" for field, msgs in exc.details.get("fields", {}).items())
            raise CommandError(f"{exc.code}: {exc.message}{details}\nNothing was changed.") from None
        summary = ", ".join(f"{n} {a}d" if a != "unchanged" else f"{n} unchanged" for a, n in counts.items())
        self.stdout.write(f"Imported {len(rows)} policies as version {version.number} ({summary}).")
