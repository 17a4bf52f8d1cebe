"""pytest plugin (``-p tests.servers`` in pytest.ini): start real servers once per test session.

It runs at plugin import, before pytest-django reads the settings, because the
settings read REDIS_URL and DATABASE_URL from the environment once.

- Redis: a fresh redis-server on a free port (or COUNTERSIGN_TEST_REDIS_URL).
- COUNTERSIGN_TEST_DB=postgres: a throwaway PostgreSQL cluster (or COUNTERSIGN_TEST_DATABASE_URL).
- otherwise SQLite, in a file so that other processes (a Celery worker) share the test database.
"""

from __future__ import annotations

import atexit
import os
import tempfile

from countersign_servers import start_postgres, start_redis

_started = []


def _boot() -> None:
    if os.environ.get("COUNTERSIGN_TEST_SERVERS_STARTED"):
        return  # a child process (a worker started by a test) inherits the parent's servers
    redis_url = os.environ.get("COUNTERSIGN_TEST_REDIS_URL")
    if not redis_url:
        server = start_redis()
        _started.append(server)
        redis_url = server.url
    os.environ["REDIS_URL"] = redis_url
    os.environ.pop("CELERY_BROKER_URL", None)
    # Each test session gets its own channel prefix, so a shared Redis never mixes sessions.
    os.environ["COUNTERSIGN_CHANNEL_PREFIX"] = f"cs-test-{os.getpid()}"

    if os.environ.get("COUNTERSIGN_TEST_DB") == "postgres":
        database_url = os.environ.get("COUNTERSIGN_TEST_DATABASE_URL")
        if not database_url:
            server = start_postgres()
            _started.append(server)
            database_url = server.url
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
        test_dir = tempfile.mkdtemp(prefix="countersign-test-")
        os.environ["COUNTERSIGN_TEST_SQLITE_PATH"] = os.path.join(test_dir, "test.sqlite3")
    os.environ["COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE"] = "true"  # the tests receive webhooks on loopback
    os.environ["COUNTERSIGN_TEST_SERVERS_STARTED"] = "1"
    atexit.register(_stop)


def _stop() -> None:
    while _started:
        _started.pop().stop()


_boot()
