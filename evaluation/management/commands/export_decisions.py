"""manage.py export_decisions --since 2026-01-01T00:00:00Z --format jsonl|csv [--output FILE]"""

from __future__ import annotations

import csv

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from core.errors import ServiceError
from evaluation.records import CSV_COLUMNS, csv_row, decision_records
from evaluation.selectors import decision_filters_from, decisions_filtered

CHUNK = 2000


class Command(BaseCommand):
    help = "Export decisions as evaluation records (schema decision-record.v1), streamed row by row."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO-8601 timestamp: decided at or after")
        parser.add_argument("--until", help="ISO-8601 timestamp: decided before")
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--action-type", dest="action_type")
        parser.add_argument("--agent")
        parser.add_argument("--decision")
        parser.add_argument("--reason-category", dest="reason_category")
        parser.add_argument("--policy-version", dest="policy_version")
        parser.add_argument("--output", "-o", help="File to write; standard output when omitted")

    def handle(self, *args, **options):
        try:
            filters = decision_filters_from(
                {
                    k: options.get(k)
                    for k in ("since", "until", "action_type", "agent", "decision", "reason_category", "policy_version")
                }
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        queryset = decisions_filtered(filters)
        if options["output"]:
            out = open(options["output"], "w", newline="", encoding="utf-8")  # noqa: SIM115
        else:
            self.stdout.ending = ""  # records carry their own line endings
            out = self.stdout
        encoder = DjangoJSONEncoder(separators=(",", ":"))
        count = 0
        try:
            if options["format"] == "csv":
                writer = csv.writer(out)
                writer.writerow(CSV_COLUMNS)
                for record in decision_records(queryset, chunk_size=CHUNK):
                    writer.writerow(csv_row(record, encoder.encode))
                    count += 1
            else:
                for record in decision_records(queryset, chunk_size=CHUNK):
                    out.write(encoder.encode(record) + "\n")
                    count += 1
        finally:
            if options["output"]:
                out.close()
        self.stderr.write(f"exported {count} decisions")
