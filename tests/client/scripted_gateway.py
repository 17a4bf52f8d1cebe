"""A scripted stand-in for the gateway, for checking both clients offline against the same answers.

It answers each request with the next scripted ``Answer``, fails the test if the request is not the
one the script expects, and records what it was sent. Both ``Countersign`` and ``AsyncCountersign``
talk to it through ``httpx.MockTransport``, the same object for either.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from countersign_client import ActionNotPermitted, APIError, AsyncCountersign, Countersign, RateLimited, Rejected

BASE_URL = "http://gateway.test"
ACTION_ID = "a-1"
PARAMS = {"to": "customer@example.org"}
EDITED = {"to": "billing@example.org"}
RESULT = {"message_id": "m-1"}

SUBMIT = ("POST", "/api/v1/actions/")
GET = ("GET", f"/api/v1/actions/{ACTION_ID}/")
WAIT = ("GET", f"/api/v1/actions/{ACTION_ID}/wait")
START = ("POST", f"/api/v1/actions/{ACTION_ID}/execution/start")
REPORT = ("POST", f"/api/v1/actions/{ACTION_ID}/execution")


def action(status: str, **fields: Any) -> dict[str, Any]:
    """An action request as the gateway shows it to the agent."""
    may_run = status in {"allowed", "approved", "executed"}
    body = {
        "id": ACTION_ID,
        "action_type": "send_email",
        "status": status,
        "params": PARAMS,
        "final_params": PARAMS if may_run else None,
        "final_params_hash": "sha256:final" if may_run else None,
        "approval_token": "tok" if may_run else None,
        "reason": "policy says no" if status == "blocked" else "",
        "decision": None,
        "expires_at": "2030-01-01T00:00:00Z",
        "execution": None,
    }
    return {**body, **fields}


def error(code: str, message: str = "scripted") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}


@dataclass(frozen=True)
class Answer:
    """What the gateway answers to ``request`` (method, path); ``expect`` is a subset the JSON body must hold."""

    request: tuple[str, str]
    body: dict[str, Any] | None = None
    status: int = 200
    lost: bool = False  # the connection drops instead of answering
    expect: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedGateway:
    def __init__(self, answers: list[Answer]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            sent = (request.method, request.url.path)
            self.seen.append(sent)
            assert self.answers, f"the client sent {sent} after the script ended"
            answer = self.answers.pop(0)
        assert sent == answer.request, f"the client sent {sent}, the script expected {answer.request}"
        if answer.expect:
            sent_json = json.loads(request.content)
            assert {k: sent_json.get(k) for k in answer.expect} == answer.expect
        if answer.lost:
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(answer.status, json=answer.body, headers=answer.headers, request=request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def described(exc: BaseException) -> tuple[Any, ...]:
    """An exception as a comparable row: its type and what a caller would read off it."""
    if isinstance(exc, Rejected):
        return ("Rejected", exc.category, exc.reason)
    if isinstance(exc, ActionNotPermitted):
        return (type(exc).__name__, exc.action.status)
    if isinstance(exc, RateLimited):
        return ("RateLimited", exc.code, exc.retry_after)
    if isinstance(exc, APIError):
        return ("APIError", exc.status_code, exc.code)
    return (type(exc).__name__, str(exc))


# --- one gated call, four ways: the decorator and the guard, sync and async ---------------

Way = Callable[..., tuple[Any, ...]]


def sync_decorator(gateway: ScriptedGateway, ran: list[dict], *, fails: bool = False, **options: Any) -> Any:
    with Countersign(BASE_URL, "cs_test", backoff=0, transport=gateway.transport()) as gate:

        @gate.require_approval("send_email", **options)
        def send_email(to: str) -> dict:
            ran.append({"to": to})
            if fails:
                raise RuntimeError("SMTP 550")
            return RESULT

        return send_email(**PARAMS, _tool_call_id="call-1")


def async_decorator(gateway: ScriptedGateway, ran: list[dict], *, fails: bool = False, **options: Any) -> Any:
    async def scenario() -> Any:
        async with AsyncCountersign(BASE_URL, "cs_test", backoff=0, transport=gateway.transport()) as gate:

            @gate.require_approval("send_email", **options)
            async def send_email(to: str) -> dict:
                ran.append({"to": to})
                if fails:
                    raise RuntimeError("SMTP 550")
                return RESULT

            return await send_email(**PARAMS, _tool_call_id="call-1")

    return asyncio.run(scenario())


def sync_guard(gateway: ScriptedGateway, ran: list[dict], *, fails: bool = False, **options: Any) -> Any:
    with (
        Countersign(BASE_URL, "cs_test", backoff=0, transport=gateway.transport()) as gate,
        gate.guard("send_email", PARAMS, tool_call_id="call-1", **options) as approval,
    ):
        ran.append(approval.params)
        if fails:
            raise RuntimeError("SMTP 550")
        approval.result = RESULT
    return approval.result


def async_guard(gateway: ScriptedGateway, ran: list[dict], *, fails: bool = False, **options: Any) -> Any:
    async def scenario() -> Any:
        async with (
            AsyncCountersign(BASE_URL, "cs_test", backoff=0, transport=gateway.transport()) as gate,
            gate.guard("send_email", PARAMS, tool_call_id="call-1", **options) as approval,
        ):
            ran.append(approval.params)
            if fails:
                raise RuntimeError("SMTP 550")
            approval.result = RESULT
        return approval.result

    return asyncio.run(scenario())


WAYS: dict[str, Callable[..., Any]] = {
    "sync decorator": sync_decorator,
    "async decorator": async_decorator,
    "sync guard": sync_guard,
    "async guard": async_guard,
}


def outcome_of(way: Callable[..., Any], answers: list[Answer], **options: Any) -> tuple[tuple[Any, ...], list[dict]]:
    """(what the caller got, the params the tool ran with), after the whole script was used up."""
    gateway = ScriptedGateway(answers)
    ran: list[dict] = []
    try:
        got: tuple[Any, ...] = ("returned", way(gateway, ran, **options))
    except Exception as exc:
        got = described(exc)
    assert not gateway.answers, f"the client stopped before {gateway.answers[0].request}"
    return got, ran
