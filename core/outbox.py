"""The outbox: claim a due row, send it, record the attempt, then schedule the next try or give up.

Every outbox table (agents' webhooks, reviewer-group notifications, alert notifications)
is an ``OutboxMessage`` subclass with an ``OutboxAttempt`` log under
``related_name="attempt_log"``. What is sent, and how, is the caller's ``send``; the
bookkeeping, the backoff and the re-send are here, once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .crypto import DecryptionError
from .errors import InvalidInput
from .models import OutboxAttempt, OutboxMessage

__all__ = [
    "OutboxAttempt",
    "OutboxMessage",
    "Undeliverable",
    "next_attempt_delay",
    "outbox_attempt",
    "outbox_due",
    "outbox_resend",
]

BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600


class Undeliverable(Exception):
    """Raised by a ``send`` when the receiver says the address is gone for good: the row gives up at once."""


def next_attempt_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter (between half and all of the doubled delay), capped at an hour."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def outbox_attempt[Row: OutboxMessage](
    model: type[Row],
    *,
    pk: Any,
    send: Callable[[Row, datetime], int | None],
    retry_on: tuple[type[Exception], ...] = (httpx.HTTPError,),
    select_related: tuple[str, ...] = (),
) -> Row | None:
    """Try one row once: claim it, ``send`` it, record the attempt, then schedule the next or give up.

    ``send(row, now)`` returns the HTTP status (or None when there is none, e.g. email) and
    may raise ``InvalidInput``, ``DecryptionError`` (a secret no configured key opens) or one of ``retry_on``; both are recorded as the attempt's error
    and retried. A non-2xx status is an error too. The row gives up (failed) once the next
    try would fall past COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS after it was created, or at once
    when ``send`` raises ``Undeliverable`` (the receiver said the address is gone).

    Invariant: the row is claimed (its next attempt pushed past the send's timeout) before
    anything is sent, so two workers never send the same attempt at once. Returns None
    when another worker holds the claim or the row is not due.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS * 3)
    claimed = model.objects.filter(pk=pk, state=OutboxMessage.State.PENDING, next_attempt_at__lte=now).update(
        next_attempt_at=lease, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    rows = model.objects.select_related(*select_related) if select_related else model.objects
    row = rows.get(pk=pk)
    status_code: int | None = None
    error = ""
    started = time.monotonic()
    give_up = False
    try:
        status_code = send(row, now)
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except Undeliverable as exc:
        error, give_up = str(exc)[:1000], True
    except InvalidInput as exc:
        error = exc.message
    except DecryptionError as exc:
        # A key missing from COUNTERSIGN_ENCRYPTION_KEYS: on the row, where an admin sees it, and retried.
        error = str(exc)[:1000]
    except retry_on as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:1000]
    latency_ms = int((time.monotonic() - started) * 1000)

    with transaction.atomic():
        row.attempt_log.create(attempted_at=now, status_code=status_code, latency_ms=latency_ms, error=error)
        row.last_status_code = status_code
        row.last_error = error
        if not error:
            row.state = OutboxMessage.State.DELIVERED
            row.delivered_at = timezone.now()
        else:
            retry_at = timezone.now() + next_attempt_delay(row.attempts)
            if give_up or retry_at - row.created_at > timedelta(seconds=settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS):
                row.state = OutboxMessage.State.FAILED
            else:
                row.next_attempt_at = retry_at
        row.save(update_fields=["last_status_code", "last_error", "state", "delivered_at", "next_attempt_at"])
    return row


def outbox_due(model: type[OutboxMessage], *, limit: int = 100) -> list[Any]:
    """Ids of the pending rows whose next attempt is due, oldest first (served by the partial index)."""
    return list(
        model.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_resend(model: type[OutboxMessage], *, pks: Any) -> int:
    """Put rows back in the outbox, due now, whatever their state (delivered, given up, skipped).

    Admins' re-send: the beat sweep sends them. Their attempt count and log stay, and so does
    the age limit: a row older than COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS gets one try per re-send.
    """
    return model.objects.filter(pk__in=list(pks)).update(
        state=OutboxMessage.State.PENDING, next_attempt_at=timezone.now()
    )
