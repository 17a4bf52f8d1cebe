"""Errors raised by services. Each carries a stable machine code, an HTTP status, and a
message that tells the caller what to do about it; the API turns them into the JSON error shape."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "error"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        # HTTP headers the error response carries (e.g. Retry-After on a 429).
        self.headers = headers or {}
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    code = "validation_error"
    status = 422


class IdempotencyConflict(ServiceError):
    code = "idempotency_conflict"
    status = 409


class TransitionRefused(ServiceError):
    """The request is no longer in a state that allows this; ``code`` says which state."""

    code = "not_pending"
    status = 409


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class NotAuthenticated(ServiceError):
    """The credentials were good when the request began and are not any more (e.g. a key revoked meanwhile)."""

    code = "not_authenticated"
    status = 401


class PermissionRefused(ServiceError):
    """The caller is who it says, but lacks the proof this action needs (e.g. the approval token)."""

    code = "permission_denied"
    status = 403


class TooManyRequests(ServiceError):
    """Refused for now: too many submissions in the window (``rate_limited``) or waiting (``too_many_pending``)."""

    code = "rate_limited"
    status = 429
