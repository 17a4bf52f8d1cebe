"""The synchronous client: ``Countersign(base_url, api_key)``."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from . import _common as c
from .action import Action
from .errors import ActionNotPermitted, APIError

F = TypeVar("F", bound=Callable[..., Any])
_IN_FLIGHT = c.InFlight()  # shared by every client in this process


@dataclass
class Approval:
    """What ``guard`` yields: run ``params`` (the final, maybe edited ones); set ``result`` to report it."""

    action: Action
    params: dict[str, Any]
    result: Any = None


class Countersign:
    """Ask a Countersign gateway before acting.

    ``timeout`` bounds one HTTP call; ``max_retries`` and ``backoff`` govern retries,
    which happen only on connection errors and 5xx answers.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "countersign-client/0.1"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Countersign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP -------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> tuple[dict[str, Any], int]:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
                c.raise_for_error(response)
                return response.json(), attempt
            except (httpx.TransportError, APIError) as exc:
                if not c.retryable(exc) or attempt >= self.max_retries:
                    raise
                time.sleep(c.backoff_seconds(attempt, self.backoff))
                attempt += 1

    # --- the API ----------------------------------------------------------------------

    def submit(
        self,
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
    ) -> Action:
        """Propose an action. The same ``tool_call_id`` (or key) always returns the same request."""
        key = idempotency_key or (
            c.idempotency_key_for(action_type, tool_call_id) if tool_call_id else f"rnd-{uuid.uuid4()}"
        )
        body = c.submission_body(
            action_type=action_type,
            params=params,
            summary=summary,
            evidence=evidence,
            confidence=confidence,
            context=context,
            callback_url=callback_url,
        )
        data, _ = self._request("POST", "/api/v1/actions/", json=body, headers={"Idempotency-Key": key})
        return Action.from_json(data)

    def get(self, action_id: str) -> Action:
        data, _ = self._request("GET", f"/api/v1/actions/{action_id}/")
        return Action.from_json(data)

    def wait(self, action: Action | str, *, timeout: float | None = None) -> Action:
        """Long-poll until the request is decided or ``timeout`` seconds pass (None: its own deadline)."""
        action_id = action.id if isinstance(action, Action) else action
        current = action if isinstance(action, Action) else self.get(action_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while current.status == "pending":
            poll = c.MAX_SERVER_WAIT_SECONDS
            if deadline is not None:
                poll = min(poll, deadline - time.monotonic())
                if poll <= 0:
                    break
            data, _ = self._request(
                "GET",
                f"/api/v1/actions/{action_id}/wait",
                params={"timeout": f"{poll:.2f}"},
                timeout=httpx.Timeout(self.timeout, read=poll + self.timeout),
            )
            current = Action.from_json(data)
        return current

    def report(self, action: Action, *, status: str = "succeeded", result: Any = None) -> Action:
        """Tell the gateway what happened when the final params ran (once)."""
        body = {
            "status": status,
            "result": c.jsonable(result),
            "approval_token": action.approval_token,
            "params_hash": action.final_params_hash,
        }
        try:
            data, _ = self._request("POST", f"/api/v1/actions/{action.id}/execution", json=body)
        except APIError as exc:
            # A retried report whose first try landed: the gateway already has it.
            current = self.get(action.id) if exc.code == "already_reported" else None
            if current is not None and current.execution and current.execution.get("status") == status:
                return current
            raise
        return Action.from_json(data)

    def start_execution(self, action: Action) -> Action:
        """Claim the one run of an approved (or allowed) action before running it.

        Exactly one caller wins, across processes; the others get ``AlreadyExecuted``.
        """
        try:
            data, _ = self._request("POST", f"/api/v1/actions/{action.id}/execution/start", json=c.start_body(action))
        except APIError as exc:
            if exc.code in c.ALREADY_RUNNING_CODES:
                raise c.already_executed(self.get(action.id), exc) from None
            raise
        return Action.from_json(data)

    def cancel(self, action_id: str) -> Action:
        data, _ = self._request("POST", f"/api/v1/actions/{action_id}/cancel/")
        return Action.from_json(data)

    # --- gating -----------------------------------------------------------------------

    def decide(
        self, action_type: str, params: dict[str, Any], *, wait_timeout: float | None = None, **submit: Any
    ) -> Action:
        """Submit and wait; return the action if it may run, raise why not otherwise."""
        action = self.submit(action_type, params, **submit)
        action = self.wait(action, timeout=wait_timeout)
        refusal = c.refusal_for(action)
        if refusal is not None:
            raise refusal
        return action

    @contextmanager
    def guard(
        self, action_type: str, params: dict[str, Any], *, wait_timeout: float | None = None, **submit: Any
    ) -> Iterator[Approval]:
        """``with gate.guard("refund", {...}) as ok: do(**ok.params)`` — reports success or failure on exit."""
        key = c.in_flight_key(self.base_url, action_type, submit.get("tool_call_id"), submit.get("idempotency_key"))
        with _IN_FLIGHT.hold(key):
            action = self.decide(action_type, params, wait_timeout=wait_timeout, **submit)
            self.start_execution(action)
            approval = Approval(action=action, params=dict(action.final_params or action.params))
            try:
                yield approval
            except BaseException as exc:
                self.report(action, status="failed", result={"error": repr(exc)[:2000]})
                raise
            self.report(action, status="succeeded", result=approval.result)

    def require_approval(
        self,
        action_type: str,
        *,
        summary: str | Callable[[dict[str, Any]], str] | None = None,
        on_reject: c.OnReject = "raise",
        wait_timeout: float | None = None,
        **submit: Any,
    ) -> Callable[[F], F]:
        """Decorate a tool: its call is submitted, waited on, run with the final params, and reported.

        Pass ``_tool_call_id=...`` (or declare a ``tool_call_id`` parameter) so an agent retry of
        the same tool call never submits or runs twice.
        """

        def decorate(fn: F) -> F:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                params, tool_call_id = c.bind_params(fn, args, kwargs)
                key = c.in_flight_key(self.base_url, action_type, tool_call_id, submit.get("idempotency_key"))
                with _IN_FLIGHT.hold(key):
                    text = summary(params) if callable(summary) else summary
                    try:
                        action = self.decide(
                            action_type,
                            params,
                            summary=text,
                            tool_call_id=tool_call_id,
                            wait_timeout=wait_timeout,
                            **submit,
                        )
                        self.start_execution(action)
                    except ActionNotPermitted as refusal:
                        if on_reject == "return":
                            return c.llm_message(refusal)
                        raise
                    final = dict(action.final_params or action.params)
                    try:
                        result = fn(**c.call_kwargs(fn, final, tool_call_id))
                    except BaseException as exc:
                        self.report(action, status="failed", result={"error": repr(exc)[:2000]})
                        raise
                    self.report(action, status="succeeded", result=result)
                    return result

            return wrapper  # type: ignore[return-value]

        return decorate
