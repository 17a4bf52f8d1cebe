"""What can go wrong when an agent asks before it acts."""

from __future__ import annotations

from typing import Any

from .action import Action


class CountersignError(Exception):
    """Base class of every error this client raises."""


class APIError(CountersignError):
    """The gateway answered with an error (the JSON error shape: code, message, details)."""

    def __init__(self, status_code: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}


class RateLimited(APIError):
    """The gateway refused for now (429): too many submissions a minute (``rate_limited``), or too many of this
    agent's requests already waiting for a reviewer (``too_many_pending``). Raised once the client's bounded
    wait (``rate_limit_max_attempts``, ``rate_limit_max_wait``) is used up, or at once when waiting cannot help.
    ``retry_after`` is the gateway's Retry-After in seconds (None when it sent none)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, code, message, details)
        self.retry_after = retry_after


class ActionNotPermitted(CountersignError):
    """The action must not run. ``action`` is the request as the gateway last reported it."""

    def __init__(self, message: str, action: Action) -> None:
        super().__init__(message)
        self.action = action


class Rejected(ActionNotPermitted):
    """A reviewer rejected the action. ``category`` is the reviewer's reason category (e.g. "wrong_recipient";
    from an older server, the reason's "slug:" prefix), ``reason`` the reviewer's text."""

    def __init__(self, message: str, action: Action, *, category: str, reason: str) -> None:
        super().__init__(message, action)
        self.category = category
        self.reason = reason


class Expired(ActionNotPermitted):
    """Nobody decided before the deadline, the wait ran out, or an approval lapsed unused."""


class Blocked(ActionNotPermitted):
    """The policy table forbids this action outright."""


class Cancelled(ActionNotPermitted):
    """The request was withdrawn."""


class AlreadyExecuted(ActionNotPermitted):
    """This tool call already ran once (an agent retry): it is not run again. ``action.execution`` has the result."""
