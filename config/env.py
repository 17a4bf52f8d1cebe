"""Reading the environment: each COUNTERSIGN_ knob parsed once, with a clear error for a bad value.

Used by config.settings only: nothing else in the code base reads ``os.environ``.
"""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choices(name: str, default: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A comma-separated list of ``slug=Label`` pairs, e.g. ``wrong_data=Wrong data,unsafe=Unsafe``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",")):
        slug, sep, label = item.partition("=")
        slug, label = slug.strip(), label.strip()
        # The slug pattern of the decision record schema (evaluation/schemas/decision-record.v1.json).
        if not item or not sep or not label or not re.fullmatch(r"[a-z][a-z0-9_-]{1,39}", slug.lower()):
            raise ImproperlyConfigured(f"{name} must be comma-separated slug=Label pairs, got {item!r}")
        pairs.append((slug.lower(), label))
    if len({slug for slug, _ in pairs}) != len(pairs):
        raise ImproperlyConfigured(f"{name} names a slug twice")
    return pairs
