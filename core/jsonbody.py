"""JSON request bodies for the views that are not DRF's (the queue page's fetch calls)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest


def json_object_body(request: HttpRequest) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not JSON or not an object (an empty body is ``{}``)."""
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
