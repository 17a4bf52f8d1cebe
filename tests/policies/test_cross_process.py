"""No stale verdicts after a publish: another, long-lived process sees the change on its next evaluation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from policies.services import policy_create, policy_update
from tests.processes import ROOT, database_url_for_tests

WORKER = """
import django, sys
django.setup()
from policies.evaluation import RequestFacts, evaluate
from policies.selectors import policy_table_current
for line in sys.stdin:
    verdict = evaluate(table=policy_table_current(), request=RequestFacts(action_type=line.strip()))
    print(verdict.mode, verdict.table_version, flush=True)
"""


@pytest.fixture
def worker(transactional_db):
    env = dict(os.environ, DATABASE_URL=database_url_for_tests(), DJANGO_SETTINGS_MODULE="config.settings")
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def ask(action_type: str) -> tuple[str, int]:
        process.stdin.write(action_type + "\n")
        process.stdin.flush()
        mode, version = process.stdout.readline().split()
        return mode, int(version)

    yield ask
    process.stdin.close()
    process.wait(timeout=10)


def test_a_worker_process_sees_a_published_change_on_its_next_verdict(worker, admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "search_web", "mode": "auto"}, change_note="v1")
    assert worker("search_web") == ("auto", 1)
    assert worker("search_web") == ("auto", 1)  # served from the worker's cached snapshot

    policy_update(actor=admin_user, policy_id=policy.id, data={"mode": "block"}, change_note="v2: stop searching")

    assert worker("search_web") == ("block", 2)
