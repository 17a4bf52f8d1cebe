"""Pure helpers of the client: request bodies, outcomes as exceptions, messages, retry rules.

The programs that use them (what to send next, how to read the answer) are in _core.py.
"""

from __future__ import annotations

import email.utils
import hashlib
import inspect
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from .action import Action
from .errors import (
    ActionNotPermitted,
    AlreadyExecuted,
    APIError,
    Blocked,
    Cancelled,
    Expired,
    RateLimited,
    Rejected,
)

OnReject = Literal["raise", "return"]
MAX_SERVER_WAIT_SECONDS = 50.0  # below the gateway's 55 s cap on one long-poll
TOOL_CALL_ID_ARG = "tool_call_id"


def idempotency_key_for(action_type: str, tool_call_id: str) -> str:
    """The same tool call always maps to the same key, so a retry never submits twice."""
    digest = hashlib.sha256(f"{action_type}\x00{tool_call_id}".encode()).hexdigest()[:32]
    return f"tc-{digest}"


def trace_headers() -> dict[str, str]:
    """The W3C ``traceparent`` (and ``tracestate``) of the agent's current span, when OpenTelemetry is active.

    Countersign then writes its spans (verdict, time pending, decision, execution) into the agent's
    trace. Without the OpenTelemetry API installed, or outside a recording span, nothing is sent.
    """
    try:
        from opentelemetry import propagate
    except ImportError:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {name: value for name, value in carrier.items() if name in ("traceparent", "tracestate")}


def in_flight_key(
    base_url: str, action_type: str, tool_call_id: str | None, idempotency_key: str | None = None
) -> str | None:
    """What identifies one tool call to the in-flight guard (None: the call has no identity to guard)."""
    key = idempotency_key or (idempotency_key_for(action_type, tool_call_id) if tool_call_id else None)
    return f"{base_url}|{key}" if key else None


def submission_body(
    *,
    action_type: str,
    params: dict[str, Any],
    summary: str | None,
    evidence: list[dict[str, Any]] | None,
    confidence: float | None,
    context: dict[str, Any] | None,
    callback_url: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action_type": action_type,
        "params": params,
        "summary": (summary or default_summary(action_type, params))[:500],
        "evidence": evidence or [],
    }
    if confidence is not None:
        body["confidence"] = confidence
    if context:
        body["context"] = context
    if callback_url:
        body["callback_url"] = callback_url
    return body


def context_with_version(context: dict[str, Any] | None, agent_version: str | None) -> dict[str, Any] | None:
    """The context with ``agent_version`` filled in (the release gate compares versions), unless it has one."""
    if not agent_version or (context and "agent_version" in context):
        return context
    return {**(context or {}), "agent_version": agent_version}


def default_summary(action_type: str, params: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={json.dumps(v, default=str)[:60]}" for k, v in params.items())
    return f"{action_type}({shown})"


def raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "http_error", response.text[:500], None
    if response.status_code == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise RateLimited(429, code, message, details, retry_after=retry_after)
    raise APIError(response.status_code, code, message, details)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def rate_limit_wait(
    error: RateLimited, *, attempts: int, waited: float, max_attempts: int, max_wait: float
) -> float | None:
    """How long to wait before trying again after ``error``, or None to give up and raise it.

    Waits only when the gateway said how long (Retry-After), this call has tries left
    (``attempts`` made so far, of ``max_attempts``), and the wait still fits in ``max_wait``
    seconds in total: a bounded wait, never a loop hammering the gateway.
    """
    if error.retry_after is None or attempts >= max_attempts:
        return None
    wait = max(error.retry_after, 0.1)
    if waited + wait > max_wait:
        return None
    return wait


def retryable(exc: BaseException) -> bool:
    """Only connection trouble and 5xx are retried; a 4xx is an answer, not an accident."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, APIError) and exc.status_code >= 500


def backoff_seconds(attempt: int, base: float, cap: float = 10.0) -> float:
    return random.uniform(0, min(cap, base * (2**attempt)))


def refusal_for(action: Action) -> ActionNotPermitted | None:
    """The exception that says why this action must not run, or None if it may."""
    status = action.status
    if status in {"allowed", "approved"}:
        return None
    if status == "rejected":
        category, reason = action.rejection()
        return Rejected(
            f"A reviewer rejected {action.action_type} ({category}): {reason}",
            action,
            category=category,
            reason=reason,
        )
    if status == "blocked":
        return Blocked(f"Policy blocks {action.action_type}: {action.reason}", action)
    if status == "expired":
        return Expired(f"No reviewer decided on {action.action_type} before {action.expires_at}.", action)
    if status == "lapsed":
        return Expired(f"The approval of {action.action_type} lapsed at {action.approval_expires_at}.", action)
    if status == "pending":
        return Expired(f"Still waiting for a reviewer on {action.action_type}; gave up waiting.", action)
    if status == "cancelled":
        return Cancelled(f"The request for {action.action_type} was cancelled.", action)
    if status == "executed":
        return AlreadyExecuted(f"{action.action_type} already ran for this tool call; not running it again.", action)
    return ActionNotPermitted(f"{action.action_type} is {status}; not running it.", action)


# A start refused with one of these means another process (or an earlier try) has the run.
ALREADY_RUNNING_CODES = frozenset({"execution_already_started", "already_reported"})


def start_body(action: Action) -> dict[str, Any]:
    # A fresh run id per claim: the HTTP retry of this very body (a lost answer) is told "yours",
    # while any other process claiming the same action is refused.
    return {
        "approval_token": action.approval_token,
        "params_hash": action.final_params_hash,
        "run_id": uuid.uuid4().hex,
    }


def already_executed(action: Action, error: APIError) -> AlreadyExecuted:
    return AlreadyExecuted(
        f"{action.action_type} already started or ran for this tool call (elsewhere): not running it again. "
        f"{error.message}",
        action,
    )


def llm_message(refusal: ActionNotPermitted) -> str:
    """A message a model can read and replan from, for on_reject="return"."""
    action = refusal.action
    name = action.action_type
    if isinstance(refusal, Rejected):
        return (
            f"[countersign] The action `{name}` was NOT performed: a human reviewer rejected it "
            f"(category: {refusal.category}). Reviewer's reason: {refusal.reason or '(none given)'}. "
            "Do not retry the same call; change the plan to address the reason, or ask the user."
        )
    if isinstance(refusal, Blocked):
        return (
            f"[countersign] The action `{name}` was NOT performed: policy forbids it ({action.reason}). "
            "Do not retry; choose another way or tell the user you cannot do this."
        )
    if isinstance(refusal, Expired):
        return (
            f"[countersign] The action `{name}` was NOT performed: no human approved it in time. "
            "You may tell the user it is awaiting approval, or submit it again later."
        )
    if isinstance(refusal, AlreadyExecuted):
        result = (action.execution or {}).get("result")
        return f"[countersign] The action `{name}` already ran for this tool call; its result was: {result!r}."
    return f"[countersign] The action `{name}` was NOT performed: {refusal}."


def bind_params(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict, str | None]:
    """The call's arguments as JSON params, and the tool-call id if the call carries one."""
    tool_call_id = kwargs.pop("_tool_call_id", None)
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    if TOOL_CALL_ID_ARG in params:
        tool_call_id = tool_call_id or params.pop(TOOL_CALL_ID_ARG)
    return params, (str(tool_call_id) if tool_call_id is not None else None)


def call_kwargs(fn: Callable[..., Any], final_params: dict[str, Any], tool_call_id: str | None) -> dict[str, Any]:
    kwargs = dict(final_params)
    if TOOL_CALL_ID_ARG in inspect.signature(fn).parameters:
        kwargs[TOOL_CALL_ID_ARG] = tool_call_id
    return kwargs


def jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)[:2000]
