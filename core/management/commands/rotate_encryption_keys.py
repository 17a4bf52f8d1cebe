"""Re-encrypt every encrypted column under the first key of COUNTERSIGN_ENCRYPTION_KEYS.

The rotation: put the new key first and keep the old one after it (every process: web, worker,
beat), run this command, then remove the old key. Legacy plaintext values are encrypted too.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.fields import column_reencrypt, encrypted_columns


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (webhook secrets, Slack URLs, ...) with the first key of "
        "COUNTERSIGN_ENCRYPTION_KEYS. Idempotent; run it after putting a new key first, before removing the old one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (default 500).")

    def handle(self, *args, dry_run=False, batch_size=500, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        failures = []
        for model, model_field in encrypted_columns():
            report = column_reencrypt(model, model_field.name, batch_size=batch_size, dry_run=dry_run)
            self.stdout.write(
                f"{report.column}: {verb} {report.rotated} from an older key, "
                f"{'would encrypt' if dry_run else 'encrypted'} {report.encrypted} plaintext, "
                f"{report.unchanged} already under the first key or empty, {len(report.failed)} unreadable"
            )
            if report.failed:
                failures.append(f"{report.column} rows {', '.join(str(pk) for pk in report.failed)}")
        if failures:
            raise CommandError(
                "Some values cannot be decrypted with any key in COUNTERSIGN_ENCRYPTION_KEYS (left as they are): "
                + "; ".join(failures)
                + ". Add the key they were encrypted with (after the first) and run the command again."
            )
