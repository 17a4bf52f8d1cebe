"""The three-line decorator: a tool that asks a human before it runs.

    export COUNTERSIGN_URL=http://127.0.0.1:8000 COUNTERSIGN_API_KEY=$(cat var/demo-agent.key)
    python examples/decorator_quickstart.py

It submits `send_external_email` (the default policy table sends it to a human), waits while you
approve, edit or reject it in the queue at /queue/, then runs with the final parameters.
"""

from __future__ import annotations

import os
import uuid

from countersign_client import Countersign

gate = Countersign(os.environ["COUNTERSIGN_URL"], api_key=os.environ["COUNTERSIGN_API_KEY"])


@gate.require_approval("send_external_email", on_reject="return")
def send_email(to: str, subject: str, body: str) -> str:
    print(f"SENDING to={to} subject={subject!r} body={body!r}", flush=True)  # your SMTP call goes here
    return f"sent to {to}"


if __name__ == "__main__":
    print("Asking a reviewer; approve it at /queue/ ...", flush=True)
    outcome = send_email(
        to="jane@customer.example",
        subject="Your refund",
        body="It is on its way.",
        _tool_call_id=f"quickstart-{uuid.uuid4()}",  # an agent retry of this call never runs twice
    )
    print(f"OUTCOME: {outcome}", flush=True)
