"""A stand-in for Slack's Web API and Slack's side of interactivity, for tests.

Slack is a third party we cannot run, so this is a real HTTP server on loopback that speaks the
documented Web API shape (``POST /api/<method>`` with a bearer token, JSON or form bodies, an
``{"ok": ...}`` answer) for the methods Countersign calls, and records every call. Interaction
payloads are signed exactly as Slack documents (v0, HMAC-SHA256 of ``v0:<timestamp>:<body>``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.local_http import http_server

BOT_TOKEN = "xoxb-test-bot-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM_ID = "T0001"
CHANNEL_ID = "C0REVIEW"


@dataclass
class Call:
    method: str
    token: str
    args: dict[str, Any]


@dataclass
class SlackStandIn:
    api_url: str = ""
    calls: list[Call] = field(default_factory=list)
    # users.info answers: Slack user id -> profile email.
    emails: dict[str, str] = field(default_factory=dict)
    # Methods to answer with {"ok": false, "error": ...} once each, in order.
    failures: list[tuple[str, str]] = field(default_factory=list)

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]


_ts = itertools.count(1)


@contextmanager
def slack_standin() -> Iterator[SlackStandIn]:
    standin = SlackStandIn()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, args: dict[str, Any]) -> None:
            method = urlsplit(self.path).path.removeprefix("/api/")
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with lock:
                standin.calls.append(Call(method, token, args))
                failing = next((f for f in standin.failures if f[0] == method), None)
                if failing:
                    standin.failures.remove(failing)
            if token != BOT_TOKEN:
                body = {"ok": False, "error": "invalid_auth"}
            elif failing:
                body = {"ok": False, "error": failing[1]}
            elif method == "chat.postMessage":
                body = {"ok": True, "channel": args["channel"], "ts": f"1700000000.{next(_ts):06d}"}
            elif method in ("chat.update", "chat.postEphemeral", "views.open"):
                body = {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
            elif method == "users.info":
                email = standin.emails.get(args.get("user", ""))
                body = {"ok": True, "user": {"id": args.get("user"), "profile": {"email": email} if email else {}}}
            else:
                body = {"ok": False, "error": "unknown_method"}
            encoded = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                args = json.loads(raw or "{}")
            else:
                args = dict(parse_qsl(raw))
            args |= dict(parse_qsl(urlsplit(self.path).query))
            self._answer(args)

        def do_GET(self) -> None:
            self._answer(dict(parse_qsl(urlsplit(self.path).query)))

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base_url:
        standin.api_url = f"{base_url}/api/"
        yield standin


def signed_interaction(
    payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Slack sends for an interaction: a form field ``payload``, signed with v0."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(timestamp),
        "HTTP_X_SLACK_SIGNATURE": f"v0={digest}",
    }


def button_click(message_args: dict[str, Any], action_id: str, *, user_id: str) -> dict[str, Any]:
    """The block_actions payload of a click on a button of a message the stand-in received."""
    blocks = message_args["blocks"]
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    button = next(
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    )
    return {
        "type": "block_actions",
        "user": {"id": user_id, "team_id": TEAM_ID, "username": user_id.lower()},
        "team": {"id": TEAM_ID},
        "channel": {"id": message_args["channel"]},
        "message": {"ts": "1700000000.000001"},
        "trigger_id": "trigger-1",
        "response_url": "https://hooks.slack.invalid/actions/1",
        "actions": [{"action_id": action_id, "block_id": "decide", "value": button["value"], "type": "button"}],
    }


def reject_submission(view: dict[str, Any], *, user_id: str, category: str, reason: str) -> dict[str, Any]:
    """The view_submission payload of the reject modal the stand-in was asked to open, filled in."""
    if isinstance(view, str):
        view = json.loads(view)
    return {
        "type": "view_submission",
        "user": {"id": user_id, "team_id": TEAM_ID},
        "team": {"id": TEAM_ID},
        "view": {
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {
                    "reason_category": {
                        "reason_category_input": {"type": "static_select", "selected_option": {"value": category}}
                    },
                    "reason": {"reason_input": {"type": "plain_text_input", "value": reason}},
                }
            },
        },
    }
