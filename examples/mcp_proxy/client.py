"""An MCP client (standing in for Claude Desktop, Cursor, an agent...) talking to the upstream server
through countersign-mcp-proxy, exactly as it would be configured in a client's MCP settings:

    command: countersign-mcp-proxy
    args:    ["--url", "$COUNTERSIGN_URL", "--", "python", "examples/mcp_proxy/upstream_server.py"]
    env:     {"COUNTERSIGN_API_KEY": "cs_..."}

    pip install "./client[mcp]"
    export COUNTERSIGN_URL=http://127.0.0.1:8000 COUNTERSIGN_API_KEY=$(cat var/demo-agent.key)
    python examples/mcp_proxy/client.py
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

UPSTREAM = Path(__file__).with_name("upstream_server.py")


async def main() -> None:
    proxy = shutil.which("countersign-mcp-proxy") or str(Path(sys.executable).with_name("countersign-mcp-proxy"))
    server = StdioServerParameters(
        command=proxy,
        args=["--url", os.environ["COUNTERSIGN_URL"], "--", sys.executable, str(UPSTREAM)],
        env=dict(os.environ),
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        print(f"TOOLS: {[tool.name for tool in tools.tools]}", flush=True)
        print("Asking a reviewer; approve it at /queue/ ...", flush=True)
        result = await session.call_tool(
            "send_external_email",
            {"to": "jane@customer.example", "subject": "Your refund", "body": "It is on its way."},
        )
        status = "ERROR" if result.is_error else "RESULT"
        print(f"{status}: {result.content[0].text}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
