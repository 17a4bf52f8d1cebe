"""Every script in examples/ runs offline against the live test gateway: it is started as a subprocess
with COUNTERSIGN_URL and COUNTERSIGN_API_KEY, the test approves (with an edit) or rejects the request
it submits through the service layer while it waits, and its output is checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from approvals.models import ActionRequest
from approvals.services import action_request_decide
from tests.client.conftest import pending_request

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EDITED_BODY = "Your refund of 40 EUR was sent today."


@pytest.fixture
def start_example(example_agent, live_url):
    started: list[subprocess.Popen] = []

    def start(script: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, "COUNTERSIGN_URL": live_url, "COUNTERSIGN_API_KEY": example_agent}
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def approve_with_edit(reviewer) -> ActionRequest:
    request = pending_request(action_type="send_external_email", timeout=60)
    action_request_decide(
        request_id=request.pk, reviewer=reviewer, approve=True, final_params={**request.params, "body": EDITED_BODY}
    )
    return request


def output_of(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-3000:]
    return out


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("decorator_quickstart.py", (), ["OUTCOME: sent to jane@customer.example"]),
        ("langgraph_gate.py", (), ["TOOL: sent to jane@customer.example", "AI: I have emailed Jane."]),
        ("langgraph_gate.py", ("--interrupt",), ["CHECKPOINTED waiting for", "TOOL: sent to jane@customer.example"]),
        (
            "openai_agents_gate.py",
            (),
            ["PAUSED on ['send_external_email']", "FINAL: Done: sent to jane@customer.example"],
        ),
        ("mcp_proxy/client.py", (), ["TOOLS: ['send_external_email']", "RESULT: sent to jane@customer.example"]),
    ],
)
def test_example_runs_the_edited_action_after_approval(start_example, alice, script, args, expected):
    process = start_example(script, *args)
    request = approve_with_edit(alice)

    out = output_of(process)
    assert "Asking a reviewer" in out
    for line in expected:
        assert line in out
    assert EDITED_BODY in out  # the edited parameters are the ones that ran
    request.refresh_from_db()
    assert request.status == "executed"


def test_quickstart_returns_the_reason_when_rejected(start_example, alice):
    process = start_example("decorator_quickstart.py")
    request = pending_request(action_type="send_external_email", timeout=60)
    action_request_decide(request_id=request.pk, reviewer=alice, approve=False, reason="not_needed: Jane called us")

    out = output_of(process)
    assert "SENDING" not in out
    assert "NOT performed" in out
    assert "Jane called us" in out
