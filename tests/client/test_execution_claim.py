"""Two agent processes retrying the same tool call: the tool runs once, the other gets AlreadyExecuted.

Real subprocesses (each with its own client and no shared in-process lock) against the live
gateway; the test plays the reviewer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from approvals.models import ActionRequest, AuditEvent
from approvals.services import action_request_decide
from tests.client.conftest import pending_request

SCRIPT = Path(__file__).with_name("retrying_process.py")


def retrying_process(mode: str, live_url: str, key: str, ran_log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), mode, live_url, key, "call-twice", str(ran_log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "calling"
    return process


@pytest.mark.parametrize("mode", ["sync", "async", "guard"])
def test_two_processes_retrying_one_tool_call_run_it_once(mode, live_agent, live_url, alice, tmp_path):
    _, key = live_agent
    ran_log = tmp_path / "ran.log"
    processes = [retrying_process(mode, live_url, key, ran_log) for _ in range(2)]
    request = pending_request(action_type="send_external_email")
    time.sleep(0.5)  # let the second process's submission land on the same request

    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        outputs.append(out.strip().splitlines()[-1])
    assert ran_log.read_text().splitlines() == ["sent"]
    assert sorted(line.split(" ", 1)[0] for line in outputs) == ["AlreadyExecuted", "ran"], outputs
    assert any("already started at" in line for line in outputs), outputs  # refused by the claim
    assert ActionRequest.objects.count() == 1
    request.refresh_from_db()
    assert request.status == "executed"
    assert request.execution_result == {"message_id": "m-1"}
    kinds = list(AuditEvent.objects.filter(request=request).values_list("kind", flat=True))
    assert kinds.count("execution_started") == 1
    violations = AuditEvent.objects.filter(request=request, kind="violation").values_list("data", flat=True)
    assert [v["violation"] for v in violations] == ["execution_already_started"]
