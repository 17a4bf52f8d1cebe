"""Settings for bench/e2e.py: the production settings plus the baseline endpoint.

The baseline (a bare DRF view that parses the same body as a submission and inserts one
row) is mounted only here, never by config.settings.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
