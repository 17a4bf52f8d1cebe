from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .responses import error_response


def query_nul_refusal(request: HttpRequest) -> HttpResponse | None:
    """A JSON 400 when a query parameter holds U+0000 (PostgreSQL text cannot), else None."""
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return error_response(
                400,
                "invalid_characters",
                "A query parameter contains a NUL character (U+0000); remove it.",
                {"parameter": name.replace("\x00", "")},
            )
    return None


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies (JSON 413) and NUL characters in query parameters (JSON 400) up front."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # PostgreSQL text cannot hold U+0000, so a NUL in a query parameter (a filter, a search)
        # would reach the database as an error: refuse it here, for every path, as bodies are.
        refusal = query_nul_refusal(request)
        if refusal is not None:
            return refusal
        if request.path.startswith("/api/") and request.method in {"POST", "PUT", "PATCH"}:
            limit = settings.COUNTERSIGN_MAX_BODY_BYTES
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit or (declared == 0 and len(request.body) > limit):
                return error_response(
                    413,
                    "payload_too_large",
                    f"The request body is larger than {limit} bytes; send less evidence or shorter excerpts.",
                    {"limit_bytes": limit},
                )
        return self.get_response(request)
