"""One agent process retrying a tool call: run by tests/client/test_execution_claim.py, twice at once.

Usage: retrying_process.py MODE URL KEY TOOL_CALL_ID RAN_LOG
MODE is "sync", "async" (the decorator) or "guard" (the context manager). The tool appends a
line to RAN_LOG each time its body runs; the last line printed says what happened.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from countersign_client import AlreadyExecuted, AsyncCountersign, Countersign

EMAIL = {"to": "customer@example.org", "subject": "Your refund", "body": "It is on its way."}


def send(ran_log: Path) -> dict:
    with ran_log.open("a") as log:
        log.write("sent\n")
    time.sleep(2)  # still running when the other process asks to start
    return {"message_id": "m-1"}


def main(mode: str, url: str, key: str, tool_call_id: str, ran_log: Path) -> str:
    if mode == "async":

        async def run() -> dict:
            async with AsyncCountersign(url, key, backoff=0.01) as gate:

                @gate.require_approval("send_external_email")
                async def send_email(to: str, subject: str, body: str) -> dict:
                    return send(ran_log)

                print("calling", flush=True)
                return await send_email(**EMAIL, _tool_call_id=tool_call_id)

        return f"ran {asyncio.run(run())}"
    with Countersign(url, key, backoff=0.01) as gate:
        print("calling", flush=True)
        if mode == "guard":
            with gate.guard("send_external_email", EMAIL, tool_call_id=tool_call_id) as approval:
                approval.result = send(ran_log)
            return f"ran {approval.result}"

        @gate.require_approval("send_external_email")
        def send_email(to: str, subject: str, body: str) -> dict:
            return send(ran_log)

        return f"ran {send_email(**EMAIL, _tool_call_id=tool_call_id)}"


if __name__ == "__main__":
    try:
        print(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5])), flush=True)
    except AlreadyExecuted as exc:
        print(f"AlreadyExecuted {exc}", flush=True)
