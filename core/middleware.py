from __future__ import annotations

from django.conf import settings

from .responses import error_response


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies up front with a JSON 413, before anything parses them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
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
