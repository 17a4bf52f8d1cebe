from django.core.management.base import BaseCommand

from policies.services import policies_load_defaults


class Command(BaseCommand):
    help = "Load the standard risk map into the policy table (rows that already exist are left alone)."

    def handle(self, *args, **options):
        created = policies_load_defaults()
        self.stdout.write(f"Default policy table loaded: {created} new policies.")
