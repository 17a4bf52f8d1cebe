"""Other processes on the test database: the DATABASE_URL to give them, and a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
WORKER_START_SECONDS = 30


def database_url_for_tests() -> str:
    """A DATABASE_URL naming the database this test session uses (not the one in settings)."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextmanager
def celery_worker_process(
    *, name: str, log_path: Path, env: Mapping[str, str | None] = {}, beat_schedule: Path | None = None
) -> Iterator[subprocess.Popen]:
    """``celery -A config worker`` (``-B`` too when ``beat_schedule`` is given) on the test database.

    ``env`` is laid over this process's environment; a None value removes the variable.
    Yields once the worker answers a ping through this process's Celery app (so through
    whatever broker the app points at now), and stops it on the way out.
    """
    from config.celery import app

    worker_env = {**os.environ, "DATABASE_URL": database_url_for_tests()}
    worker_env.pop("COUNTERSIGN_CELERY_EAGER", None)
    for key, value in env.items():
        if value is None:
            worker_env.pop(key, None)
        else:
            worker_env[key] = value
    hostname = f"{name}-{os.getpid()}@countersign-tests"
    beat = ["-B", "--schedule", str(beat_schedule)] if beat_schedule else []
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", *beat, "--pool=solo", "--loglevel=INFO"]
    command += ["--without-gossip", "--without-mingle", "--hostname", hostname]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {log_path}: {log_path.read_text()[-2000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
