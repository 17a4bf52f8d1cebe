from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from core.crypto import derived_key, generate_key


class Command(BaseCommand):
    help = (
        "Print a new Fernet key for COUNTERSIGN_ENCRYPTION_KEYS. With --derived, print instead the key "
        "used when that setting is unset (derived from SECRET_KEY), to list it second when moving to explicit keys."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--derived", action="store_true", help="The key derived from this environment's SECRET_KEY."
        )

    def handle(self, *args, derived=False, **options):
        self.stdout.write(derived_key(settings.SECRET_KEY) if derived else generate_key())
