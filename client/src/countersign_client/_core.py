"""The one implementation of the client's gating logic, sans I/O.

Every operation is a generator ("program") that yields what it needs done and is sent back the
answer: ``Send`` (one HTTP request; answered with the ``httpx.Response``, or the transport's
exception thrown in), ``Sleep`` (a backoff pause; answered with None) and, for a gated call only,
``Run`` (run the tool now with these params; answered with its result, or its exception thrown in).
A program's return value is the operation's result; what it raises is the operation's error.

``Countersign`` (httpx.Client) and ``AsyncCountersign`` (httpx.AsyncClient) each drive these
programs with one short loop, so submitting, the long-poll loop and its deadline, retries with
backoff, outcomes as exceptions, the execution claim and the report cannot drift apart between
them. Nothing here touches the network, sleeps or holds a lock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from . import _common as c
from .action import Action
from .errors import ActionNotPermitted, APIError, RateLimited

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send one request to the gateway and hand back its response."""

    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    # A long-poll: the gateway holds the answer up to this many seconds, so reading may take that long.
    server_wait: float | None = None

    def http_kwargs(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.request``/``AsyncClient.request`` besides method and path."""
        kwargs: dict[str, Any] = {"json": self.json, "params": self.params, "headers": self.headers}
        if self.server_wait is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, read=self.server_wait + timeout)
        return kwargs


@dataclass(frozen=True)
class Sleep:
    """Pause before the next try."""

    seconds: float


@dataclass(frozen=True)
class Run:
    """The run is claimed: run the tool with ``params`` (the final, maybe edited ones) and hand back its result."""

    action: Action
    params: dict[str, Any]


@dataclass(frozen=True)
class Done:
    """What a driver gets when a program has finished: its return value."""

    value: Any


Effect = Send | Sleep | Run
Program = Generator[Effect, Any, T]


@dataclass
class Approval:
    """What ``guard`` yields: run ``params`` (the final, maybe edited ones); set ``result`` to report it."""

    action: Action
    params: dict[str, Any]
    result: Any = None


class Settings(Protocol):
    """What a program reads from the client driving it (read at each call, so changes take effect)."""

    max_retries: int
    backoff: float
    # A 429 with Retry-After is waited out at most this many tries in all, and this many seconds in total.
    rate_limit_max_attempts: int
    rate_limit_max_wait: float
    # Sent as context.agent_version with every submission (the release gate compares versions).
    agent_version: str | None


def advance(program: Program[Any], value: Any = None, error: BaseException | None = None) -> Send | Sleep | Run | Done:
    """Resume ``program`` with an answer (or throw ``error`` in) and return its next effect, or ``Done``."""
    try:
        return program.throw(error) if error is not None else program.send(value)
    except StopIteration as stop:
        return Done(stop.value)


# --- HTTP with retries --------------------------------------------------------------------


def call(settings: Settings, send: Send) -> Program[dict[str, Any]]:
    """One request, retried with jittered exponential backoff on connection errors and 5xx only.

    A 429 is waited out as its Retry-After says, within the bounds ``rate_limit_max_attempts`` and
    ``rate_limit_max_wait``; then (or when no wait is given) ``RateLimited`` is raised.
    """
    attempt = 0
    limited = 1  # tries made within the rate limit's bounds
    waited = 0.0
    while True:
        try:
            response = yield send
            c.raise_for_error(response)
            return response.json()
        except RateLimited as exc:
            wait = c.rate_limit_wait(
                exc,
                attempts=limited,
                waited=waited,
                max_attempts=getattr(settings, "rate_limit_max_attempts", 3),
                max_wait=getattr(settings, "rate_limit_max_wait", 30.0),
            )
            if wait is None:
                raise
            yield Sleep(wait)
            limited += 1
            waited += wait
            continue
        except (httpx.TransportError, APIError) as exc:
            if not c.retryable(exc) or attempt >= settings.max_retries:
                raise
        yield Sleep(c.backoff_seconds(attempt, settings.backoff))
        attempt += 1


# --- the API ------------------------------------------------------------------------------


def submit(
    settings: Settings,
    action_type: str,
    params: dict[str, Any],
    *,
    summary: str | None = None,
    evidence: list[dict[str, Any]] | None = None,
    confidence: float | None = None,
    context: dict[str, Any] | None = None,
    callback_url: str | None = None,
    tool_call_id: str | None = None,
    idempotency_key: str | None = None,
) -> Program[Action]:
    key = idempotency_key or (
        c.idempotency_key_for(action_type, tool_call_id) if tool_call_id else f"rnd-{uuid.uuid4()}"
    )
    body = c.submission_body(
        action_type=action_type,
        params=params,
        summary=summary,
        evidence=evidence,
        confidence=confidence,
        context=c.context_with_version(context, getattr(settings, "agent_version", None)),
        callback_url=callback_url,
    )
    data = yield from call(
        settings, Send("POST", "/api/v1/actions/", json=body, headers={"Idempotency-Key": key, **c.trace_headers()})
    )
    return Action.from_json(data)


def get(settings: Settings, action_id: str) -> Program[Action]:
    data = yield from call(settings, Send("GET", f"/api/v1/actions/{action_id}/"))
    return Action.from_json(data)


def wait(
    settings: Settings,
    action: Action | str,
    *,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Program[Action]:
    """Long-poll while the request is pending, at most ``timeout`` seconds (None: until its own deadline)."""
    action_id = action.id if isinstance(action, Action) else action
    current = action if isinstance(action, Action) else (yield from get(settings, action_id))
    deadline = None if timeout is None else clock() + timeout
    while current.status == "pending":
        poll = c.MAX_SERVER_WAIT_SECONDS
        if deadline is not None:
            poll = min(poll, deadline - clock())
            if poll <= 0:
                break
        data = yield from call(
            settings,
            Send("GET", f"/api/v1/actions/{action_id}/wait", params={"timeout": f"{poll:.2f}"}, server_wait=poll),
        )
        current = Action.from_json(data)
    return current


def report(settings: Settings, action: Action, *, status: str = "succeeded", result: Any = None) -> Program[Action]:
    body = {
        "status": status,
        "result": c.jsonable(result),
        "approval_token": action.approval_token,
        "params_hash": action.final_params_hash,
    }
    try:
        data = yield from call(settings, Send("POST", f"/api/v1/actions/{action.id}/execution", json=body))
    except APIError as exc:
        # A retried report whose first try landed: the gateway already has it.
        current = (yield from get(settings, action.id)) if exc.code == "already_reported" else None
        if current is not None and current.execution and current.execution.get("status") == status:
            return current
        raise
    return Action.from_json(data)


def start_execution(settings: Settings, action: Action) -> Program[Action]:
    try:
        data = yield from call(
            settings, Send("POST", f"/api/v1/actions/{action.id}/execution/start", json=c.start_body(action))
        )
    except APIError as exc:
        if exc.code in c.ALREADY_RUNNING_CODES:
            current = yield from get(settings, action.id)
            raise c.already_executed(current, exc) from None
        raise
    return Action.from_json(data)


def cancel(settings: Settings, action_id: str) -> Program[Action]:
    data = yield from call(settings, Send("POST", f"/api/v1/actions/{action_id}/cancel/"))
    return Action.from_json(data)


# --- gating -------------------------------------------------------------------------------


def decide(
    settings: Settings, action_type: str, params: dict[str, Any], *, wait_timeout: float | None = None, **options: Any
) -> Program[Action]:
    """Submit and wait; return the action if it may run, raise why not otherwise."""
    action = yield from submit(settings, action_type, params, **options)
    action = yield from wait(settings, action, timeout=wait_timeout)
    refusal = c.refusal_for(action)
    if refusal is not None:
        raise refusal
    return action


def gated(
    settings: Settings,
    action_type: str,
    params: dict[str, Any],
    *,
    on_reject: c.OnReject = "raise",
    wait_timeout: float | None = None,
    **options: Any,
) -> Program[Any]:
    """A whole gated call: decide, claim the one run, ``Run`` the tool, report what happened.

    The tool is run only after the gateway has granted this caller the claim, and whatever it
    raises is reported as a failure and raised again. Hold ``in_flight_key(...)`` around the
    whole program (see ``_inflight``) so a concurrent retry of the same call waits for this one.
    """
    try:
        action = yield from decide(settings, action_type, params, wait_timeout=wait_timeout, **options)
        yield from start_execution(settings, action)
    except ActionNotPermitted as refusal:
        if on_reject == "return":
            return c.llm_message(refusal)
        raise
    try:
        result = yield Run(action, dict(action.final_params or action.params))
    except BaseException as exc:
        yield from report(settings, action, status="failed", result={"error": repr(exc)[:2000]})
        raise
    yield from report(settings, action, status="succeeded", result=result)
    return result
