from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from policies.yaml_io import policies_to_yaml


class Command(BaseCommand):
    help = "Write the policy table as YAML (to stdout, or to --output)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="File to write; default stdout.")

    def handle(self, *args, output=None, **options):
        text = policies_to_yaml()
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote the policy table to {output}.")
        else:
            self.stdout.write(text, ending="")
