"""Execution binding: an approval is permission to run one set of final params, once.

The approval token is derived (HMAC with the server's secret key) from the request
id, the moment of approval and the hash of the final params, so nothing secret is
stored, it can be shown to the owning agent on every read, and it stops matching
if any of the three changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils.crypto import constant_time_compare, salted_hmac

from core.canonical import canonical_hash as params_hash

from .models import ActionRequest, Status

TOKEN_PREFIX = "cat_"  # noqa: S105 (a prefix, not a secret)
_SALT = "countersign.approvals.approval_token"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def final_params_hash(request: ActionRequest) -> str | None:
    """SHA-256 of the canonical JSON of the params the agent may run (None until known)."""
    if request.status == Status.ALLOWED:
        return params_hash(request.params)
    if request.status in {Status.APPROVED, Status.EXECUTED, Status.LAPSED} and request.final_params is not None:
        return params_hash(request.final_params)
    return None


def approval_token(request: ActionRequest) -> str | None:
    """The token that proves an execution report comes from whoever read this approval."""
    if request.decided_at is None or request.final_params is None:
        return None
    # Whole microseconds since the epoch: the same on SQLite and PostgreSQL, whatever the tzinfo object.
    decided_us = (request.decided_at - _EPOCH) // timedelta(microseconds=1)
    value = f"{request.pk}|{decided_us}|{params_hash(request.final_params)}"
    return TOKEN_PREFIX + salted_hmac(_SALT, value, algorithm="sha256").hexdigest()


def approval_token_matches(request: ActionRequest, candidate: str | None) -> bool:
    expected = approval_token(request)
    return bool(expected and candidate and constant_time_compare(expected, candidate))
