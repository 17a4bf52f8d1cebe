"""Keyset-page cursors: an opaque, URL-safe token for the sort key of the last row a page showed.

Each list (queue, history, export) decides what the values are and checks their shape on the
way back; this module only packs and unpacks them, and says "not a cursor" one way for all.
"""

from __future__ import annotations

import binascii
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any


class MalformedCursor(ValueError):
    """The token was not made by ``cursor_encode`` (or was cut, or edited)."""


def cursor_encode(values: list[Any]) -> str:
    return urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> list[Any]:
    try:
        values = json.loads(urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise MalformedCursor(str(exc)) from None
    if not isinstance(values, list):
        raise MalformedCursor("a cursor holds a list")
    return values
