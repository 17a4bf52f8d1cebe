"""Any MCP server will do; this one has a single tool that would email a customer."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("mail")


@server.tool()
def send_external_email(to: str, subject: str, body: str) -> str:
    """Send an email to someone outside the company."""
    return f"sent to {to} (subject {subject!r}, body {body!r})"


if __name__ == "__main__":
    server.run("stdio")
