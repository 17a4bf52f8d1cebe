"""How times and durations are written: ISO-8601 UTC for machines, two units at most for people."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def parse_utc(text: str) -> datetime:
    """An ISO-8601 timestamp with a time zone, as a UTC datetime; ValueError for anything else.

    Converted here because databases are stricter than Python: PostgreSQL refuses an offset
    beyond ±15:59 (``+18:22``), which ``parse_datetime`` accepts; a value that leaves the
    representable years when converted (``0001-01-01T00:00+01:00``) is refused too.
    """
    parsed = parse_datetime(text)  # raises ValueError for a well-formed but impossible date
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"not an ISO-8601 timestamp with a time zone: {text!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of the representable range once in UTC: {text!r}") from None


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def duration_human(seconds: float | None) -> str:
    """42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h: two units at most, enough to compare at a glance."""
    if seconds is None:
        return ""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def time_left(expires_at: datetime | None, *, now: datetime) -> str:
    """What remains before a deadline, for a message: "2 h 5 min left", "40 s left", "past its deadline"."""
    if expires_at is None:
        return "no deadline"
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "past its deadline"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min left"
    if minutes:
        return f"{minutes} min left"
    return f"{seconds} s left"
