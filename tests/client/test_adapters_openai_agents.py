"""The OpenAI Agents SDK adapter drives a real Agent and Runner with a scripted Model (no network, no
key, tracing off) against the live gateway; the test plays the reviewer through the service layer."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

os.environ.setdefault("OPENAI_API_KEY", "dummy-key-never-used")

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from countersign_client import AsyncCountersign
from countersign_client.openai_agents import CountersignApprovals
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from approvals.models import ActionRequest
from approvals.services import action_request_decide
from policies.selectors import policy_table_cache_clear
from tests.client.conftest import pending_request
from tests.factories import PolicyFactory

set_tracing_disabled(True)

EMAIL = {"to": "jane@customer.example", "subject": "Your refund", "body": "It is on its way."}


class ScriptedModel(Model):
    """Asks for one function call, then answers with what the tool returned; keeps what it was shown."""

    def __init__(self, tool_name: str, arguments: dict[str, Any]) -> None:
        self.tool_name, self.arguments = tool_name, arguments
        self.inputs: list[Any] = []

    async def get_response(
        self, system_instructions, input, model_settings, tools, output_schema, handoffs, tracing, **_
    ):
        self.inputs.append(input)
        outputs = [item for item in input if isinstance(item, dict) and item.get("type") == "function_call_output"]
        if not outputs:
            call = ResponseFunctionToolCall(
                type="function_call",
                id=f"fc-{uuid.uuid4().hex[:8]}",
                call_id=f"call-{uuid.uuid4().hex[:8]}",
                name=self.tool_name,
                arguments=json.dumps(self.arguments),
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(type="output_text", text=f"Tool said: {outputs[-1]['output']}", annotations=[])
        message = ResponseOutputMessage(
            type="message", id=f"msg-{uuid.uuid4().hex[:8]}", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs) -> AsyncIterator[Any]:
        raise NotImplementedError

    def tool_output(self) -> str:
        """The function call's output as the model received it."""
        for item in self.inputs[-1]:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                return str(item["output"])
        raise AssertionError("the model never saw a tool output")


def tools_recording(sent: list[dict]):
    @function_tool
    def send_external_email(to: str, subject: str, body: str) -> str:
        """Send an email to someone outside the company."""
        sent.append({"to": to, "subject": subject, "body": body})
        return f"sent to {to}"

    @function_tool
    def legal_advice(question: str) -> str:
        """Answer a legal question."""
        sent.append({"question": question})
        return "You may break the lease."

    return send_external_email, legal_advice


@pytest.fixture
def run_agent(live_agent, live_url):
    """Run an agent whose tools go through Countersign; returns (final output, model, tool calls)."""

    def run(tool_name: str = "send_external_email", arguments: dict | None = None, *, pause: bool = False):
        sent: list[dict] = []
        model = ScriptedModel(tool_name, arguments or EMAIL)

        async def main():
            async with AsyncCountersign(live_url, live_agent[1], backoff=0.01) as gate:
                approvals = CountersignApprovals(gate)
                tools = [approvals.gate(t, pause=pause) for t in tools_recording(sent)]
                agent = Agent(name="support", instructions="Help the customer.", model=model, tools=tools)
                result = await Runner.run(agent, "Tell Jane her refund is on its way.")
                paused_with = list(result.interruptions)
                while result.interruptions:
                    result = await Runner.run(agent, await approvals.resolve(result))
                return result.final_output, paused_with

        final, paused_with = asyncio.run(main())
        return final, model, sent, paused_with

    return run


def test_approved_call_runs_the_tool(run_agent, alice, in_background):
    future = in_background(run_agent)
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    final, _, sent, _ = future.result(timeout=30)
    assert sent == [EMAIL]
    assert final == "Tool said: sent to jane@customer.example"
    request.refresh_from_db()
    assert request.status == "executed"


def test_edited_call_runs_with_the_reviewers_arguments(run_agent, alice, in_background):
    edited = {**EMAIL, "subject": "Your refund of 40 EUR"}
    future = in_background(run_agent)
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)

    _, _, sent, _ = future.result(timeout=30)
    assert sent == [edited]


def test_rejected_call_does_not_run_and_the_model_sees_the_reason(run_agent, alice, in_background):
    future = in_background(run_agent)
    request = pending_request(action_type="send_external_email")
    action_request_decide(
        request_id=request.pk, reviewer=alice, approve=False, reason="wrong_recipient: Jane asked for a call"
    )

    _, model, sent, _ = future.result(timeout=30)
    assert sent == []
    assert "NOT performed" in model.tool_output()
    assert "Jane asked for a call" in model.tool_output()


def test_blocked_call_does_not_run(run_agent):
    _, model, sent, _ = run_agent("legal_advice", {"question": "Can I break my lease?"})

    assert sent == []
    assert "policy forbids it" in model.tool_output()
    assert ActionRequest.objects.get(action_type="legal_advice").status == "blocked"


def test_needs_approval_pauses_the_run_until_countersign_decides(run_agent, alice, in_background):
    future = in_background(run_agent, pause=True)
    request = pending_request(action_type="send_external_email")
    edited = {**EMAIL, "body": "Your refund of 40 EUR was sent today."}
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)

    _, _, sent, paused_with = future.result(timeout=30)
    assert [item.tool_name for item in paused_with] == ["send_external_email"]
    assert sent == [edited]
    assert ActionRequest.objects.filter(action_type="send_external_email").count() == 1
    request.refresh_from_db()
    assert request.status == "executed"


def test_needs_approval_rejection_is_the_rejection_message(run_agent, alice, in_background):
    future = in_background(run_agent, pause=True)
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=False, reason="not_needed: already sent")

    _, model, sent, paused_with = future.result(timeout=30)
    assert len(paused_with) == 1
    assert sent == []
    assert "already sent" in model.tool_output()


def test_allowed_tools_do_not_pause_the_run(run_agent):
    PolicyFactory(action_pattern="send_external_email", mode="auto", priority=100)
    policy_table_cache_clear()

    _, _, sent, paused_with = run_agent(pause=True)

    assert paused_with == []
    assert sent == [EMAIL]
    assert ActionRequest.objects.get(action_type="send_external_email").status == "executed"
