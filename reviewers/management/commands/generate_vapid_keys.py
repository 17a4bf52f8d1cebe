"""Print a new VAPID key pair for Web Push, as the environment lines Countersign reads."""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Command(BaseCommand):
    help = "Generate a VAPID key pair for Web Push and print the COUNTERSIGN_VAPID_* lines to set."

    def add_arguments(self, parser):
        parser.add_argument("--subject", default="mailto:admin@example.org", help="A mailto: or https: contact.")

    def handle(self, *args, subject: str, **options):
        key = ec.generate_private_key(ec.SECP256R1())
        private = _b64url(key.private_numbers().private_value.to_bytes(32, "big"))
        public = _b64url(
            key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
        self.stdout.write(f"COUNTERSIGN_VAPID_PUBLIC_KEY={public}\n")
        self.stdout.write(f"COUNTERSIGN_VAPID_PRIVATE_KEY={private}\n")
        self.stdout.write(f"COUNTERSIGN_VAPID_SUBJECT={subject}\n")
