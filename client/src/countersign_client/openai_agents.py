"""Route OpenAI Agents SDK tool approvals to Countersign (``pip install "countersign-client[openai-agents]"``).

    approvals = CountersignApprovals(AsyncCountersign(url, api_key))
    agent = Agent(name="support", tools=[approvals.gate(send_email)])

``gate(tool)`` returns the same ``FunctionTool`` with Countersign in front of its invocation: the call
is submitted (``action_type`` = the tool name; the idempotency key is derived from the tool call id),
waited on, run with the final (possibly edited) arguments and reported. A refusal never runs the tool:
the model gets a tool output that says why (reason category and reason) and can replan.

With ``gate(tool, pause=True)`` the tool's ``needs_approval`` is Countersign too: a call that needs a
human makes ``Runner.run`` stop with ``result.interruptions`` (the SDK's human-in-the-loop flow), so a
long review does not hold the run open. ``state = await approvals.resolve(result)`` waits for the
reviewers' decisions and approves or rejects each interruption (a rejection carries the reason as the
``rejection_message``); then ``Runner.run(agent, state)`` continues. An approved call still goes through
the gated invocation, which runs the reviewer's final arguments, so edits are honoured.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agents import FunctionTool, RunContextWrapper
from agents.tool_context import ToolContext

from . import _common as c
from ._async import AsyncCountersign
from .action import Action
from .errors import AlreadyExecuted, CountersignError


def _call_of(item: Any) -> tuple[str, str, dict[str, Any]]:
    """(tool name, call id, arguments) of a ``ToolApprovalItem``."""
    raw = item.raw_item
    get = raw.get if isinstance(raw, dict) else lambda key: getattr(raw, key, None)
    arguments = get("arguments") or "{}"
    return item.tool_name or get("name"), get("call_id"), json.loads(arguments) if isinstance(arguments, str) else {}


class CountersignApprovals:
    """Countersign as the approver of an Agents SDK agent's function tools."""

    def __init__(
        self,
        gate: AsyncCountersign,
        *,
        action_types: Mapping[str, str] | None = None,
        wait_timeout: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.countersign = gate
        self.action_types = dict(action_types or {})
        self.wait_timeout = wait_timeout
        self.context = context

    def action_type(self, tool_name: str) -> str:
        return self.action_types.get(tool_name, tool_name)

    async def _submit(self, tool_name: str, arguments: dict[str, Any], call_id: str | None) -> Action:
        return await self.countersign.submit(
            self.action_type(tool_name), arguments, context=self.context, tool_call_id=call_id
        )

    # --- the gated invocation ---------------------------------------------------------

    def gate(self, tool: FunctionTool, *, pause: bool = False) -> FunctionTool:
        """``tool`` with Countersign in front of it; ``pause=True`` also makes it its ``needs_approval``."""
        invoke = tool.on_invoke_tool

        async def gated(ctx: ToolContext[Any], arguments_json: str) -> Any:
            arguments = json.loads(arguments_json or "{}")
            try:
                action = await self._submit(tool.name, arguments, ctx.tool_call_id)
                action = await self.countersign.wait(action, timeout=self.wait_timeout)
            except CountersignError as exc:
                # Fail closed: an unreachable gateway is not an approval.
                return f"[countersign] `{tool.name}` was NOT performed: the gateway could not be asked ({exc})."
            refusal = c.refusal_for(action)
            if refusal is not None:
                return c.llm_message(refusal)
            try:
                # Claim the one run: another process retrying this tool call must not run it too.
                await self.countersign.start_execution(action)
            except AlreadyExecuted as done:
                return c.llm_message(done)
            except CountersignError as exc:
                return f"[countersign] `{tool.name}` was NOT performed: the gateway could not be asked ({exc})."
            final = dict(action.final_params if action.final_params is not None else action.params)
            try:
                result = await invoke(ctx, json.dumps(final))
            except BaseException as exc:
                await self.countersign.report(action, status="failed", result={"error": repr(exc)[:2000]})
                raise
            await self.countersign.report(action, status="succeeded", result=c.jsonable(result))
            return result

        return dataclasses.replace(
            tool, on_invoke_tool=gated, needs_approval=self.needs_approval_for(tool.name) if pause else False
        )

    # --- the SDK's human-in-the-loop flow ---------------------------------------------

    def needs_approval_for(
        self, tool_name: str
    ) -> Callable[[RunContextWrapper[Any], dict[str, Any], str], Awaitable[bool]]:
        """A ``needs_approval`` callable: submit now; pause the run only while a human has yet to decide."""

        async def needs_approval(ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
            try:
                action = await self._submit(tool_name, params, call_id)
            except CountersignError:
                return True  # cannot ask now: pause rather than run
            return action.status == "pending"

        return needs_approval

    async def resolve(self, result: Any, *, timeout: float | None = None) -> Any:
        """Wait for Countersign's decision on each interruption and record it in the run's state.

        Returns the ``RunState`` to pass back to ``Runner.run(agent, state)``. A request still
        undecided after ``timeout`` seconds is left pending in the state (run ``resolve`` again later).
        """
        state = result.to_state()
        for item in result.interruptions:
            tool_name, call_id, arguments = _call_of(item)
            action = await self._submit(tool_name, arguments, call_id)
            action = await self.countersign.wait(action, timeout=timeout)
            if action.status == "pending":
                continue
            refusal = c.refusal_for(action)
            if refusal is None or isinstance(refusal, AlreadyExecuted):
                state.approve(item)
            else:
                state.reject(item, rejection_message=c.llm_message(refusal))
        return state


__all__ = ["CountersignApprovals"]
