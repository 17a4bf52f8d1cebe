"""The synchronous client: ``Countersign(base_url, api_key)``, a thin httpx.Client driver of ``_core``."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from . import _common as c
from . import _core as core
from ._core import Approval
from ._inflight import IN_FLIGHT
from .action import Action

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Approval", "Countersign"]


class Countersign:
    """Ask a Countersign gateway before acting.

    ``timeout`` bounds one HTTP call; ``max_retries`` and ``backoff`` govern retries,
    which happen only on connection errors and 5xx answers. A 429 (rate limited) is waited out
    as its Retry-After says, at most ``rate_limit_max_attempts`` tries and ``rate_limit_max_wait``
    seconds of waiting in all; then ``RateLimited`` is raised (at once if waiting cannot help).
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
        rate_limit_max_attempts: int = 3,
        rate_limit_max_wait: float = 30.0,
        agent_version: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Sent as context.agent_version with every submission; default: $COUNTERSIGN_AGENT_VERSION.
        self.agent_version = agent_version or os.environ.get("COUNTERSIGN_AGENT_VERSION") or None
        self.max_retries = max_retries
        self.backoff = backoff
        self.rate_limit_max_attempts = rate_limit_max_attempts
        self.rate_limit_max_wait = rate_limit_max_wait
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

    # --- the driver: everything else is in _core ------------------------------------------

    def _drive(
        self, program: core.Program[Any], value: Any = None, error: BaseException | None = None
    ) -> core.Run | core.Done:
        """Do what ``program`` asks until it finishes or asks for the tool to run."""
        while True:
            effect = core.advance(program, value, error)
            value, error = None, None
            if isinstance(effect, core.Run | core.Done):
                return effect
            try:
                if isinstance(effect, core.Sleep):
                    time.sleep(effect.seconds)
                else:
                    value = self._http.request(effect.method, effect.path, **effect.http_kwargs(self.timeout))
            except BaseException as exc:
                error = exc

    def _result(self, program: core.Program[Any]) -> Any:
        done = self._drive(program)
        assert isinstance(done, core.Done), "only a gated call runs a tool"
        return done.value

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
        return self._result(
            core.submit(
                self,
                action_type,
                params,
                summary=summary,
                evidence=evidence,
                confidence=confidence,
                context=context,
                callback_url=callback_url,
                tool_call_id=tool_call_id,
                idempotency_key=idempotency_key,
            )
        )

    def get(self, action_id: str) -> Action:
        return self._result(core.get(self, action_id))

    def wait(self, action: Action | str, *, timeout: float | None = None) -> Action:
        """Long-poll until the request is decided or ``timeout`` seconds pass (None: its own deadline)."""
        return self._result(core.wait(self, action, timeout=timeout))

    def report(self, action: Action, *, status: str = "succeeded", result: Any = None) -> Action:
        """Tell the gateway what happened when the final params ran (once)."""
        return self._result(core.report(self, action, status=status, result=result))

    def start_execution(self, action: Action) -> Action:
        """Claim the one run of an approved (or allowed) action before running it.

        Exactly one caller wins, across processes; the others get ``AlreadyExecuted``.
        """
        return self._result(core.start_execution(self, action))

    def cancel(self, action_id: str) -> Action:
        return self._result(core.cancel(self, action_id))

    # --- gating -----------------------------------------------------------------------

    def decide(
        self, action_type: str, params: dict[str, Any], *, wait_timeout: float | None = None, **submit: Any
    ) -> Action:
        """Submit and wait; return the action if it may run, raise why not otherwise."""
        return self._result(core.decide(self, action_type, params, wait_timeout=wait_timeout, **submit))

    @contextmanager
    def guard(
        self, action_type: str, params: dict[str, Any], *, wait_timeout: float | None = None, **submit: Any
    ) -> Iterator[Approval]:
        """``with gate.guard("refund", {...}) as ok: do(**ok.params)`` — reports success or failure on exit."""
        key = c.in_flight_key(self.base_url, action_type, submit.get("tool_call_id"), submit.get("idempotency_key"))
        with IN_FLIGHT.hold(key):
            program = core.gated(self, action_type, params, wait_timeout=wait_timeout, **submit)
            run = self._drive(program)
            assert isinstance(run, core.Run), "a guard raises its refusals"
            approval = Approval(action=run.action, params=run.params)
            try:
                yield approval
            except BaseException as exc:
                self._drive(program, error=exc)  # reports the failure, then raises exc again
                raise
            self._drive(program, approval.result)

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
                with IN_FLIGHT.hold(key):
                    program = core.gated(
                        self,
                        action_type,
                        params,
                        summary=summary(params) if callable(summary) else summary,
                        tool_call_id=tool_call_id,
                        on_reject=on_reject,
                        wait_timeout=wait_timeout,
                        **submit,
                    )
                    step = self._drive(program)
                    if isinstance(step, core.Run):
                        try:
                            result = fn(**c.call_kwargs(fn, step.params, tool_call_id))
                        except BaseException as exc:
                            step = self._drive(program, error=exc)
                        else:
                            step = self._drive(program, result)
                    assert isinstance(step, core.Done)
                    return step.value

            return wrapper  # type: ignore[return-value]

        return decorate
