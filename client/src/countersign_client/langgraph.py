"""Gate a LangGraph tool node through Countersign (``pip install "countersign-client[langgraph]"``).

    tools = ToolNode([send_email], wrap_tool_call=CountersignToolGate(gate))
    # async graphs (graph.ainvoke): also pass awrap_tool_call=hook.awrap, so waiting never blocks the loop

Every tool call the node runs becomes an action request (``action_type`` = the tool name unless
``action_types`` maps it; the idempotency key comes from the tool call id). Two ways to wait:

- ``mode="wait"`` (default): the node long-polls Countersign until a human decides in its queue.
- ``mode="interrupt"``: the node calls LangGraph's ``interrupt()`` with an Agent Inbox-shaped
  ``HumanInterrupt`` that carries ``countersign.request_id``; the graph checkpoints and returns.
  Resume it with ``graph.invoke(resume_command(gate, result), config)`` once the request is decided
  (a webhook told you, or ``resume_command`` waits for it).

Either way the decision is translated into the Agent Inbox ``HumanResponse`` shape
(``{"type": "accept" | "edit" | "response" | "ignore", "args": ...}``) and applied: ``accept`` runs
the tool, ``edit`` runs it with the reviewer's arguments, ``response`` gives the model a
``ToolMessage`` with the reason instead of running it, ``ignore`` skips it. The gateway's record is
what counts: a resume value is never trusted to run a tool that Countersign did not approve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langgraph.types import Command, interrupt

from . import _common as c
from ._sync import Countersign
from .action import Action
from .errors import AlreadyExecuted, Cancelled, CountersignError

Mode = Literal["wait", "interrupt"]
HumanResponse = dict[str, Any]  # {"type": "accept" | "edit" | "response" | "ignore", "args": None | str | dict}


def human_response(action: Action) -> HumanResponse:
    """A decided Countersign request as the Agent Inbox ``HumanResponse`` a LangGraph graph resumes with."""
    refusal = c.refusal_for(action)
    if refusal is None:
        if action.edited and action.final_params is not None:
            return {"type": "edit", "args": {"action": action.action_type, "args": dict(action.final_params)}}
        return {"type": "accept", "args": None}
    if isinstance(refusal, Cancelled):
        return {"type": "ignore", "args": None}
    return {"type": "response", "args": c.llm_message(refusal)}


def resume_command(gate: Countersign, interrupted: Mapping[str, Any], *, timeout: float | None = None) -> Command:
    """``Command(resume=...)`` for every Countersign interrupt in ``graph.invoke``'s result.

    Waits (long-poll, up to ``timeout`` seconds each) for each request to be decided and answers
    each interrupt by its id with ``[human_response]`` (the Agent Inbox list form).
    """
    answers: dict[str, Any] = {}
    for pending in interrupted.get("__interrupt__", ()):
        value = pending.value[0] if isinstance(pending.value, list) else pending.value
        request_id = value["countersign"]["request_id"]
        answers[pending.id] = [human_response(gate.wait(request_id, timeout=timeout))]
    return Command(resume=answers)


class CountersignToolGate:
    """A ``ToolNode(wrap_tool_call=...)`` hook that asks Countersign before each tool runs."""

    def __init__(
        self,
        gate: Countersign,
        *,
        mode: Mode = "wait",
        action_types: Mapping[str, str] | None = None,
        summary: Callable[[str, dict[str, Any]], str] | None = None,
        wait_timeout: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.gate = gate
        self.mode = mode
        self.action_types = dict(action_types or {})
        self.summary = summary
        self.wait_timeout = wait_timeout
        self.context = context

    def __call__(self, request: Any, execute: Callable[[Any], ToolMessage | Command]) -> ToolMessage | Command:
        """The ``wrap_tool_call`` hook (sync graphs)."""
        decided = self._decide(request)
        if isinstance(decided, ToolMessage):
            return decided
        try:
            outcome = execute(self._with_final_args(request, decided))
        except Exception as exc:
            self.gate.report(decided, status="failed", result={"error": repr(exc)[:2000]})
            raise
        self.gate.report(decided, **_report_of(outcome))
        return outcome

    async def awrap(
        self, request: Any, execute: Callable[[Any], Awaitable[ToolMessage | Command]]
    ) -> ToolMessage | Command:
        """The ``awrap_tool_call`` hook (``graph.ainvoke``): the long-poll runs in a worker thread,
        so a waiting tool call never blocks the event loop."""
        # to_thread copies the context, so interrupt() inside finds the graph's config.
        decided = await asyncio.to_thread(self._decide, request)
        if isinstance(decided, ToolMessage):
            return decided
        try:
            outcome = await execute(self._with_final_args(request, decided))
        except Exception as exc:
            await asyncio.to_thread(self.gate.report, decided, status="failed", result={"error": repr(exc)[:2000]})
            raise
        await asyncio.to_thread(self.gate.report, decided, **_report_of(outcome))
        return outcome

    def _decide(self, request: Any) -> Action | ToolMessage:
        """The approved or allowed action to run, or the ToolMessage that answers the model instead."""
        call = request.tool_call
        name, args, call_id = call["name"], dict(call.get("args") or {}), call.get("id")
        try:
            action = self.gate.submit(
                self.action_types.get(name, name),
                args,
                summary=self.summary(name, args) if self.summary else None,
                context=self.context,
                tool_call_id=call_id,
            )
            if action.status == "pending":
                action = self._decision(action, name, args)
        except CountersignError as exc:
            # Fail closed: an unreachable gateway is not an approval.
            return self._refused(
                call, f"[countersign] `{name}` was NOT performed: the gateway could not be asked ({exc})."
            )
        response = human_response(action)
        if response["type"] in ("response", "ignore"):
            text = response["args"] or f"[countersign] `{name}` was skipped: the request was withdrawn."
            if isinstance(c.refusal_for(action), AlreadyExecuted):
                return ToolMessage(content=text, tool_call_id=call_id, name=name)
            return self._refused(call, text)
        try:
            # Claim the one run: another process retrying this tool call must not run it too.
            self.gate.start_execution(action)
        except AlreadyExecuted as done:
            return ToolMessage(content=c.llm_message(done), tool_call_id=call_id, name=name)
        except CountersignError as exc:
            return self._refused(
                call, f"[countersign] `{name}` was NOT performed: the gateway could not be asked ({exc})."
            )
        return action

    @staticmethod
    def _with_final_args(request: Any, action: Action) -> Any:
        final = dict(action.final_params if action.final_params is not None else action.params)
        return request.override(tool_call={**request.tool_call, "args": final})

    def _decision(self, action: Action, name: str, args: dict[str, Any]) -> Action:
        if self.mode == "wait":
            return self.gate.wait(action, timeout=self.wait_timeout)
        # The first time through, interrupt() raises and the graph checkpoints. When the graph is
        # resumed this node runs again from the top: the same tool call id finds the same request,
        # and interrupt() returns the resume value. The gateway's record, not that value, decides.
        interrupt(
            [
                {
                    "action_request": {"action": name, "args": args},
                    "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": False},
                    "description": (
                        f"Countersign request {action.id} is waiting for a reviewer "
                        f"(expires {action.expires_at}). {action.reason}"
                    ).strip(),
                    "countersign": {
                        "request_id": action.id,
                        "action_type": action.action_type,
                        "expires_at": action.expires_at,
                    },
                }
            ]
        )
        return self.gate.get(action.id)

    @staticmethod
    def _refused(call: Mapping[str, Any], text: str) -> ToolMessage:
        return ToolMessage(content=text, tool_call_id=call.get("id"), name=call["name"], status="error")


def _report_of(outcome: ToolMessage | Command) -> dict[str, Any]:
    if isinstance(outcome, ToolMessage):
        return {"status": "failed" if outcome.status == "error" else "succeeded", "result": outcome.content}
    return {"status": "succeeded", "result": {"command": True}}


__all__ = ["CountersignToolGate", "HumanResponse", "human_response", "resume_command"]
