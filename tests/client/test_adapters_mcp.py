"""countersign-mcp-proxy, end to end: a real MCP client (the `mcp` package's stdio client) talks to the
proxy process, which launches a real upstream MCP server process and asks the live gateway before
forwarding each tools/call. The test plays the reviewer through the service layer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from approvals.models import ActionRequest
from approvals.services import action_request_decide
from tests.client.conftest import pending_request

UPSTREAM = Path(__file__).with_name("mcp_upstream_server.py")
PROXY = Path(sys.executable).with_name("countersign-mcp-proxy")
EMAIL = {"to": "jane@customer.example", "subject": "Your refund", "body": "It is on its way."}


@pytest.fixture
def call_log(tmp_path) -> Path:
    return tmp_path / "upstream-calls.jsonl"


def upstream_calls(call_log: Path) -> list[dict]:
    if not call_log.exists():
        return []
    return [json.loads(line) for line in call_log.read_text().splitlines()]


@pytest.fixture
def call_through_proxy(live_agent, live_url, call_log):
    """Open an MCP session with the proxy, list the tools, call one; returns (tool names, result)."""
    env = {
        **os.environ,
        "COUNTERSIGN_AGENT_KEY": live_agent[1],
        "MCP_UPSTREAM_CALL_LOG": str(call_log),
    }
    proxy = StdioServerParameters(
        command=str(PROXY),
        args=["--url", live_url, "--api-key-env", "COUNTERSIGN_AGENT_KEY", "--", sys.executable, str(UPSTREAM)],
        env=env,
    )

    async def session(tool: str, arguments: dict[str, Any]):
        async with stdio_client(proxy) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            listed = await client.list_tools()
            result = await client.call_tool(tool, arguments)
            return listed, result

    return lambda tool, arguments: anyio.run(session, tool, arguments)


def test_proxy_lists_the_upstream_tools_unchanged(call_through_proxy, call_log):
    listed, _ = call_through_proxy("search_web", {"q": "refund policy"})

    async def list_upstream_directly():
        server = StdioServerParameters(
            command=sys.executable, args=[str(UPSTREAM)], env={**os.environ, "MCP_UPSTREAM_CALL_LOG": str(call_log)}
        )
        async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            return await client.list_tools()

    direct = anyio.run(list_upstream_directly)
    assert [tool.model_dump() for tool in listed.tools] == [tool.model_dump() for tool in direct.tools]
    assert {tool.name for tool in listed.tools} == {"send_external_email", "legal_advice", "search_web"}


def test_call_is_forwarded_only_after_approval_with_the_edited_arguments(
    call_through_proxy, call_log, alice, in_background
):
    future = in_background(call_through_proxy, "send_external_email", EMAIL)
    request = pending_request(action_type="send_external_email", timeout=30)
    assert request.params == EMAIL
    assert request.context["source"] == "mcp"
    assert upstream_calls(call_log) == []  # pending: the upstream has not been called

    edited = {**EMAIL, "body": "Your refund of 40 EUR was sent today."}
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)

    _, result = future.result(timeout=60)
    assert result.is_error is False
    assert result.content[0].text == "sent to jane@customer.example"
    assert upstream_calls(call_log) == [{"tool": "send_external_email", "arguments": edited}]
    request.refresh_from_db()
    assert request.status == "executed"  # the outcome was reported, bound to the edited params
    assert request.execution_status == "succeeded"


def test_rejection_comes_back_as_a_tool_error_and_upstream_is_never_called(
    call_through_proxy, call_log, alice, in_background
):
    future = in_background(call_through_proxy, "send_external_email", EMAIL)
    request = pending_request(action_type="send_external_email", timeout=30)
    action_request_decide(
        request_id=request.pk,
        reviewer=alice,
        approve=False,
        reason="wrong_recipient: Jane asked to be called, not emailed",
    )

    _, result = future.result(timeout=60)
    assert result.is_error is True
    text = result.content[0].text
    assert "NOT performed" in text
    assert "wrong_recipient" in text
    assert "Jane asked to be called, not emailed" in text
    assert upstream_calls(call_log) == []
    request.refresh_from_db()
    assert request.status == "rejected"


def test_blocked_tool_is_a_tool_error_and_upstream_is_never_called(call_through_proxy, call_log):
    _, result = call_through_proxy("legal_advice", {"question": "Can I break my lease?"})

    assert result.is_error is True
    assert "policy forbids it" in result.content[0].text
    assert upstream_calls(call_log) == []
    assert ActionRequest.objects.get(action_type="legal_advice").status == "blocked"


def test_allowed_tool_runs_at_once_and_is_reported(call_through_proxy, call_log):
    _, result = call_through_proxy("search_web", {"q": "refund policy"})

    assert result.is_error is False
    assert upstream_calls(call_log) == [{"tool": "search_web", "arguments": {"q": "refund policy"}}]
    assert ActionRequest.objects.get(action_type="search_web").status == "executed"
