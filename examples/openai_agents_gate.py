"""An OpenAI Agents SDK agent whose tool calls are approved in Countersign.

    pip install "./client[openai-agents]"
    export COUNTERSIGN_URL=http://127.0.0.1:8000 COUNTERSIGN_API_KEY=$(cat var/demo-agent.key)
    python examples/openai_agents_gate.py

The run pauses on the tool call (the SDK's needs_approval / interruptions flow), Countersign's queue
decides, and the run resumes. The model here is scripted so the example runs offline with no API key;
drop `model=ScriptedModel()` to use a real one.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid

os.environ.setdefault("OPENAI_API_KEY", "unused-by-the-scripted-model")

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from countersign_client import AsyncCountersign
from countersign_client.openai_agents import CountersignApprovals
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

set_tracing_disabled(True)  # offline: no traces are uploaded


@function_tool
def send_external_email(to: str, subject: str, body: str) -> str:
    """Send an email to someone outside the company."""
    print(f"SENDING to={to} subject={subject!r} body={body!r}", flush=True)
    return f"sent to {to}"


class ScriptedModel(Model):
    """Calls send_external_email once, then reports what the tool said."""

    async def get_response(self, system_instructions, input, *args, **kwargs) -> ModelResponse:
        outputs = [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
        if not outputs:
            arguments = {"to": "jane@customer.example", "subject": "Your refund", "body": "It is on its way."}
            call = ResponseFunctionToolCall(
                type="function_call",
                call_id=f"oa-{uuid.uuid4()}",
                name="send_external_email",
                arguments=json.dumps(arguments),
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(type="output_text", text=f"Done: {outputs[-1]['output']}", annotations=[])
        message = ResponseOutputMessage(
            type="message", id="msg-1", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


async def main() -> None:
    async with AsyncCountersign(os.environ["COUNTERSIGN_URL"], api_key=os.environ["COUNTERSIGN_API_KEY"]) as gate:
        approvals = CountersignApprovals(gate)
        agent = Agent(
            name="support",
            instructions="Help the customer.",
            model=ScriptedModel(),
            tools=[approvals.gate(send_external_email, pause=True)],
        )
        print("Asking a reviewer; approve it at /queue/ ...", flush=True)
        result = await Runner.run(agent, "Tell Jane her refund is on its way.")
        while result.interruptions:
            print(f"PAUSED on {[item.tool_name for item in result.interruptions]}", flush=True)
            result = await Runner.run(agent, await approvals.resolve(result))
        print(f"FINAL: {result.final_output}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
