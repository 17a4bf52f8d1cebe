"""bench/e2e.py's production shape: a throwaway PostgreSQL (or SQLite), a Redis, uvicorn with N workers, a
Celery worker; and the people who use it (reviewers with sessions, agents with keys)."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --- the servers -------------------------------------------------------------------------------


@dataclass
class Shape:
    url: str
    env: dict[str, str]
    stops: list[Callable[[], None]] = field(default_factory=list)
    # The processes the bench started, by role (for CPU per request; empty when measuring --url).
    pids: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        for action in reversed(self.stops):
            try:
                action()
            except Exception as exc:
                print(f"  (teardown: {exc})", file=sys.stderr)


def wait_for_http(url: str, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(0.2)


def start_shape(args: argparse.Namespace) -> Shape:
    from countersign_servers import free_port, start_postgres, start_redis

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": str(ROOT),
            "COUNTERSIGN_DEBUG": "false",
        }
    )
    shape = Shape(url=args.url or "", env=env)
    if args.url:
        return shape
    redis = start_redis()
    shape.stops.append(redis.stop)
    if redis.process is not None:
        shape.pids["redis"] = redis.process.pid
    env["REDIS_URL"] = redis.url
    if args.db == "postgres":
        postgres = start_postgres(database="countersign_bench")
        shape.stops.append(postgres.stop)
        env["DATABASE_URL"] = postgres.url
    else:
        scratch = tempfile.mkdtemp(prefix="countersign-e2e-")
        env["DATABASE_URL"] = f"sqlite:///{scratch}/bench.sqlite3"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    port = free_port()
    logs = tempfile.mkdtemp(prefix="countersign-e2e-logs-")
    print(f"logs: {logs}")

    def spawn(name: str, command: list[str]) -> None:
        log = open(f"{logs}/{name}.log", "wb")  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        shape.pids[name] = process.pid

        def stop() -> None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()

        shape.stops.append(stop)

    spawn(
        "uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--ws",
            args.ws,
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
    )
    spawn("celery", [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "-l", "WARNING"])
    shape.url = f"http://127.0.0.1:{port}"
    wait_for_http(shape.url)
    return shape


# --- the people: reviewers with sessions, agents with keys ---------------------------------------


@dataclass
class People:
    decider_cookie: str
    csrf: str
    watcher_cookies: list[str]
    agent_keys: list[str]
    # For "limits on against limits off": agents whose limit is checked on every submission but never
    # reached, and agents with no limit at all (the limiter is skipped).
    limited_keys: list[str]
    unlimited_keys: list[str]


def people_create(*, watchers: int, agents: int) -> People:
    from django.conf import settings
    from django.test import Client

    from approvals.services import agent_create, agent_limits_set
    from bench.baseline import baseline_table_create
    from policies.services import policies_load_defaults
    from reviewers.services import reviewer_create

    policies_load_defaults()
    baseline_table_create()
    run = secrets.token_hex(3)

    def session_cookie(username: str) -> str:
        user = reviewer_create(username=username, password=secrets.token_urlsafe(16))
        client = Client()
        client.force_login(user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    def limited_agent(name: str, per_minute: int, max_pending: int | None = None) -> str:
        agent, key = agent_create(name=name)
        agent_limits_set(
            agent=agent, rate_limit_per_minute=per_minute, key_rate_limit_per_minute=per_minute, max_pending=max_pending
        )
        return key

    csrf = secrets.token_hex(16)  # a 32-character secret: Django accepts it unmasked in the header
    return People(
        decider_cookie=f"{settings.SESSION_COOKIE_NAME}={session_cookie(f'bench-decider-{run}')}; "
        f"{settings.CSRF_COOKIE_NAME}={csrf}",
        csrf=csrf,
        watcher_cookies=[
            f"{settings.SESSION_COOKIE_NAME}={session_cookie(f'bench-watcher-{run}-{i}')}" for i in range(watchers)
        ],
        # The latency agents submit hundreds a minute and hold 1,000 pending at once in the full run: their
        # limits are checked on every submission (as in production) but set above what the bench does.
        agent_keys=[limited_agent(f"bench-agent-{run}-{i}", 10_000_000, max_pending=100_000) for i in range(agents)],
        limited_keys=[limited_agent(f"bench-limited-{run}-{i}", 10_000_000) for i in range(agents)],
        unlimited_keys=[limited_agent(f"bench-unlimited-{run}-{i}", 0) for i in range(agents)],
    )
