"""``countersign-mcp-proxy``: a stdio MCP server in front of another one, asking Countersign before every tool call.

    countersign-mcp-proxy --url http://127.0.0.1:8000 --api-key-env COUNTERSIGN_API_KEY -- python upstream_server.py

The proxy launches the upstream server, lists its tools unchanged, and turns every ``tools/call`` into an
action request (``action_type`` = the tool name, ``params`` = the arguments). The call reaches the upstream
only when the gateway allows it or a reviewer approves it, and then with the final (possibly edited)
arguments; the outcome is reported back. A rejection, expiry or block comes back as a tool error
(``isError: true``) whose text says why, so the model can replan. Needs ``pip install "countersign-client[mcp]"``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from . import _common as c
from ._async import AsyncCountersign
from .action import Action
from .errors import ActionNotPermitted, AlreadyExecuted, CountersignError

_NOT_ACTION_CHARS = re.compile(r"[^a-z0-9_.:-]+")


@dataclass(frozen=True)
class ProxyConfig:
    url: str
    api_key: str
    upstream: list[str]
    action_prefix: str = ""
    wait_timeout: float | None = None
    upstream_env: dict[str, str] | None = None


def action_type_for(tool_name: str, prefix: str = "") -> str:
    """The gateway's action type for a tool: its name, lower-cased, other characters as ``_``."""
    name = _NOT_ACTION_CHARS.sub("_", f"{prefix}{tool_name}".lower()).strip("_.:-") or "tool"
    return name[:200]


def call_idempotency_key(session_nonce: str, tool_name: str, request_id: object, arguments: dict[str, Any]) -> str:
    """One key per MCP request: a client retrying the same request id with the same arguments
    never submits (or runs) twice. JSON-RPC ids restart at 1 in every session, so the key
    also carries this proxy run's nonce: tomorrow's request 1 is not today's."""
    args_hash = hashlib.sha256(json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    material = f"{session_nonce}\x00{tool_name}\x00{request_id}\x00{args_hash}"
    return f"mcp-{hashlib.sha256(material.encode()).hexdigest()[:40]}"


def _text_result(text: str, *, is_error: bool) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


def _outcome(result: types.CallToolResult) -> Any:
    """What the upstream answered, as the execution result reported to the gateway."""
    if result.structured_content is not None:
        return result.structured_content
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return {"text": "\n".join(texts)[:4000]}


class GatedTools:
    """The proxy's two tool handlers, bound to one upstream session and one gateway client."""

    def __init__(self, *, upstream: ClientSession, gate: AsyncCountersign, config: ProxyConfig) -> None:
        self.upstream = upstream
        self.gate = gate
        self.config = config
        self.session_nonce = uuid.uuid4().hex

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await self.upstream.list_tools(params=params)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        action_type = action_type_for(params.name, self.config.action_prefix)
        try:
            action = await self.gate.decide(
                action_type,
                arguments,
                wait_timeout=self.config.wait_timeout,
                summary=f"MCP tool call {c.default_summary(params.name, arguments)}",
                context={"source": "mcp", "mcp_tool": params.name, "mcp_request_id": str(ctx.request_id)},
                idempotency_key=call_idempotency_key(self.session_nonce, params.name, ctx.request_id, arguments),
            )
            # Claim the one run before forwarding: a second proxy retrying this call gets AlreadyExecuted.
            await self.gate.start_execution(action)
        except AlreadyExecuted as done:
            return _text_result(c.llm_message(done), is_error=False)
        except ActionNotPermitted as refusal:
            return _text_result(c.llm_message(refusal), is_error=True)
        except CountersignError as exc:
            # Fail closed: no answer from the gateway is not a yes.
            return _text_result(
                f"[countersign] The tool `{params.name}` was NOT called: the approval gateway could not be asked "
                f"({exc}). Try again later.",
                is_error=True,
            )

        final = dict(action.final_params if action.final_params is not None else action.params)
        try:
            result = await self.upstream.call_tool(params.name, final)
        except Exception as exc:
            await self._report(action, "failed", {"error": repr(exc)[:2000]})
            raise
        await self._report(action, "failed" if result.is_error else "succeeded", _outcome(result))
        return result

    async def _report(self, action: Action, status: str, result: Any) -> None:
        # The tool has already run: a lost report must not turn its result into an error the
        # model would retry. It is logged; the gateway shows the approval as never executed.
        try:
            await self.gate.report(action, status=status, result=result)
        except CountersignError as exc:
            print(f"countersign-mcp-proxy: could not report {action.id} as {status}: {exc}", file=sys.stderr)


async def serve(config: ProxyConfig) -> None:
    """Run the proxy on this process's stdin/stdout until the MCP client hangs up."""
    upstream_params = StdioServerParameters(
        command=config.upstream[0], args=list(config.upstream[1:]), env=config.upstream_env
    )
    async with (
        AsyncCountersign(config.url, config.api_key) as gate,
        stdio_client(upstream_params) as (up_read, up_write),
        ClientSession(up_read, up_write) as upstream,
    ):
        init = await upstream.initialize()
        tools = GatedTools(upstream=upstream, gate=gate, config=config)
        server: Server[Any] = Server(
            f"countersign:{init.server_info.name}",
            version=init.server_info.version,
            instructions=init.instructions,
            on_list_tools=tools.list_tools,
            on_call_tool=tools.call_tool,
        )
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="countersign-mcp-proxy",
        description="Put Countersign's human approval in front of every tool of an MCP server (stdio).",
        usage="countersign-mcp-proxy [--url URL] [--api-key-env NAME] [options] -- UPSTREAM_COMMAND [ARGS...]",
    )
    parser.add_argument("--url", default=os.environ.get("COUNTERSIGN_URL"), help="gateway URL (env COUNTERSIGN_URL)")
    parser.add_argument(
        "--api-key-env",
        default="COUNTERSIGN_API_KEY",
        help="name of the environment variable holding the agent's API key (default COUNTERSIGN_API_KEY)",
    )
    parser.add_argument("--action-prefix", default="", help='prefix for action types, e.g. "github." (default none)')
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=None,
        help="seconds to wait for a reviewer before answering with a tool error (default: the request's deadline)",
    )
    parser.add_argument("upstream", nargs=argparse.REMAINDER, help="the upstream MCP server's command, after --")
    args = parser.parse_args(argv)
    if args.upstream and args.upstream[0] == "--":
        args.upstream = args.upstream[1:]
    if not args.upstream:
        parser.error("give the upstream MCP server's command after --")
    if not args.url:
        parser.error("--url (or COUNTERSIGN_URL) is required")
    if not os.environ.get(args.api_key_env):
        parser.error(f"the environment variable {args.api_key_env} (the agent's API key) is not set")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # The upstream inherits our environment, but not the agent's key: a tool has no business with it.
    env = {k: v for k, v in os.environ.items() if k != args.api_key_env}
    config = ProxyConfig(
        url=args.url,
        api_key=os.environ[args.api_key_env],
        upstream=list(args.upstream),
        action_prefix=args.action_prefix,
        wait_timeout=args.wait_timeout,
        upstream_env=env,
    )
    try:
        anyio.run(serve, config)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
