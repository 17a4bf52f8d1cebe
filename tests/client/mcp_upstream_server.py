"""A tiny upstream MCP server for the proxy tests: every tool call it really runs is appended,
as one JSON line, to the file named by ``MCP_UPSTREAM_CALL_LOG``."""

from __future__ import annotations

import json
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("test-upstream")


def _record(tool: str, arguments: dict) -> None:
    with open(os.environ["MCP_UPSTREAM_CALL_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@server.tool()
def send_external_email(to: str, subject: str, body: str) -> str:
    """Send an email to someone outside the company."""
    _record("send_external_email", {"to": to, "subject": subject, "body": body})
    return f"sent to {to}"


@server.tool()
def legal_advice(question: str) -> str:
    """Answer a legal question."""
    _record("legal_advice", {"question": question})
    return "You may break the lease."


@server.tool()
def search_web(q: str) -> str:
    """Search the web."""
    _record("search_web", {"q": q})
    return f"3 results for {q}"


if __name__ == "__main__":
    server.run("stdio")
