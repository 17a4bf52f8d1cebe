"""The LangGraph adapter drives a real StateGraph (ToolNode, InMemorySaver checkpointer) with a scripted
chat model against the live gateway; the test plays the reviewer through the service layer."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from countersign_client.langgraph import CountersignToolGate, human_response, resume_command
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from approvals.models import ActionRequest
from approvals.services import action_request_decide
from tests.client.conftest import pending_request

EMAIL = {"to": "jane@customer.example", "subject": "Your refund", "body": "It is on its way."}


class ScriptedModel(GenericFakeChatModel):
    """Answers from a script and keeps every conversation it was shown."""

    seen: list[list[BaseMessage]] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def build_graph(gate_hook: CountersignToolGate, tool_name: str = "send_external_email", args: dict | None = None):
    sent: list[dict[str, Any]] = []

    @tool
    def send_external_email(to: str, subject: str, body: str) -> str:
        """Send an email to someone outside the company."""
        sent.append({"to": to, "subject": subject, "body": body})
        return f"sent to {to}"

    @tool
    def legal_advice(question: str) -> str:
        """Answer a legal question."""
        sent.append({"question": question})
        return "You may break the lease."

    call_id = f"call-{uuid.uuid4().hex[:8]}"
    model = ScriptedModel(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[{"name": tool_name, "args": args or EMAIL, "id": call_id}]),
                AIMessage(content="Done."),
            ]
        ),
        seen=[],
    )

    def agent(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    tools = [send_external_email, legal_advice]
    builder.add_node("tools", ToolNode(tools, wrap_tool_call=gate_hook, awrap_tool_call=gate_hook.awrap))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=InMemorySaver())
    return graph, model, sent


def run(graph, payload: Any, thread: str = "t1") -> dict:
    return graph.invoke(payload, {"configurable": {"thread_id": thread}})


def tool_message(model: ScriptedModel) -> ToolMessage:
    """The tool's answer as the model saw it on its second turn."""
    return next(m for m in model.seen[-1] if isinstance(m, ToolMessage))


START_INPUT = {"messages": [("user", "Tell Jane her refund is on its way.")]}


def test_waiting_gate_runs_the_tool_after_approval(gate, alice, in_background):
    graph, model, sent = build_graph(CountersignToolGate(gate))

    future = in_background(run, graph, START_INPUT)
    request = pending_request(action_type="send_external_email")
    assert sent == []
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    final = future.result(timeout=30)
    assert sent == [EMAIL]
    assert tool_message(model).content == "sent to jane@customer.example"
    assert final["messages"][-1].content == "Done."
    request.refresh_from_db()
    assert request.status == "executed"


def test_waiting_gate_runs_the_tool_with_the_reviewers_edits(gate, alice, in_background):
    graph, _, sent = build_graph(CountersignToolGate(gate))
    edited = {**EMAIL, "body": "Your refund of 40 EUR was sent today."}

    future = in_background(run, graph, START_INPUT)
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)

    future.result(timeout=30)
    assert sent == [edited]
    request.refresh_from_db()
    assert request.status == "executed"


def test_waiting_gate_gives_the_model_the_rejection_reason_and_skips_the_tool(gate, alice, in_background):
    graph, model, sent = build_graph(CountersignToolGate(gate))

    future = in_background(run, graph, START_INPUT)
    request = pending_request(action_type="send_external_email")
    action_request_decide(
        request_id=request.pk, reviewer=alice, approve=False, reason="wrong_recipient: Jane asked for a call instead"
    )

    future.result(timeout=30)
    assert sent == []
    message = tool_message(model)
    assert message.status == "error"
    assert "NOT performed" in message.content
    assert "Jane asked for a call instead" in message.content


def test_blocked_tool_is_answered_at_once_without_running(gate):
    graph, model, sent = build_graph(CountersignToolGate(gate), "legal_advice", {"question": "Can I break my lease?"})

    run(graph, START_INPUT)

    assert sent == []
    assert "policy forbids it" in tool_message(model).content
    assert ActionRequest.objects.get(action_type="legal_advice").status == "blocked"


def test_interrupting_gate_checkpoints_then_resumes_with_the_edited_decision(gate, alice):
    graph, _, sent = build_graph(CountersignToolGate(gate, mode="interrupt"))

    paused = run(graph, START_INPUT)

    (pending,) = paused["__interrupt__"]
    (ask,) = pending.value
    assert ask["action_request"] == {"action": "send_external_email", "args": EMAIL}
    request = ActionRequest.objects.get(pk=ask["countersign"]["request_id"])
    assert request.status == "pending"
    assert sent == []
    assert graph.get_state({"configurable": {"thread_id": "t1"}}).next == ("tools",)

    edited = {**EMAIL, "subject": "Your refund of 40 EUR"}
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)
    command = resume_command(gate, paused)
    assert command.resume == {pending.id: [{"type": "edit", "args": {"action": "send_external_email", "args": edited}}]}

    final = run(graph, command)
    assert sent == [edited]
    assert final["messages"][-1].content == "Done."
    assert ActionRequest.objects.filter(action_type="send_external_email").count() == 1  # resume did not resubmit
    request.refresh_from_db()
    assert request.status == "executed"


def test_interrupting_gate_resumed_after_rejection_tells_the_model_why(gate, alice):
    graph, model, sent = build_graph(CountersignToolGate(gate, mode="interrupt"))
    paused = run(graph, START_INPUT)
    request_id = paused["__interrupt__"][0].value[0]["countersign"]["request_id"]

    action_request_decide(request_id=request_id, reviewer=alice, approve=False, reason="not_needed: already sent")
    run(graph, resume_command(gate, paused))

    assert sent == []
    assert "already sent" in tool_message(model).content


def test_a_forged_accept_cannot_run_a_tool_the_gateway_has_not_approved(gate):
    graph, model, sent = build_graph(CountersignToolGate(gate, mode="interrupt"))
    paused = run(graph, START_INPUT)

    run(graph, Command(resume={paused["__interrupt__"][0].id: [{"type": "accept", "args": None}]}))

    assert sent == []  # still pending in Countersign: the tool does not run
    assert "NOT performed" in tool_message(model).content


def test_allowed_and_blocked_requests_translate_to_accept_and_response(gate):
    allowed = gate.submit("search_web", {"q": "refund"})
    assert human_response(allowed) == {"type": "accept", "args": None}
    blocked = gate.submit("legal_advice", {"question": "?"})
    assert human_response(blocked)["type"] == "response"


def test_async_graph_waits_off_the_event_loop_and_runs_the_edited_call(gate, alice, in_background):
    graph, _, sent = build_graph(CountersignToolGate(gate))
    ticks: list[int] = []

    async def main() -> dict:
        async def heartbeat() -> None:
            while True:
                ticks.append(1)
                await asyncio.sleep(0.05)

        beat = asyncio.create_task(heartbeat())
        try:
            return await graph.ainvoke(START_INPUT, {"configurable": {"thread_id": "async"}})
        finally:
            beat.cancel()

    future = in_background(asyncio.run, main())
    request = pending_request(action_type="send_external_email")
    before = len(ticks)
    time.sleep(0.5)
    assert len(ticks) - before >= 5  # the event loop keeps running while the tool call waits
    edited = {**EMAIL, "subject": "Your refund of 40 EUR"}
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)

    final = future.result(timeout=30)
    assert sent == [edited]
    assert final["messages"][-1].content == "Done."


def test_async_graph_interrupts_and_resumes(gate, alice):
    graph, _, sent = build_graph(CountersignToolGate(gate, mode="interrupt"))
    config = {"configurable": {"thread_id": "async-interrupt"}}

    paused = asyncio.run(graph.ainvoke(START_INPUT, config))
    request_id = paused["__interrupt__"][0].value[0]["countersign"]["request_id"]
    assert sent == []
    action_request_decide(request_id=request_id, reviewer=alice, approve=True)
    asyncio.run(graph.ainvoke(resume_command(gate, paused), config))

    assert sent == [EMAIL]
