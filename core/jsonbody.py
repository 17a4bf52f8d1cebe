"""JSON request bodies for the views that are not DRF's (the queue page's fetch calls)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from core.errors import ServiceError
from core.jsonlimits import loads_limited


class BodyRefused(ServiceError):
    code = "malformed_json"
    status = 400


class BodyTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


def json_object_body_checked(request: HttpRequest, *, what: str = "The body") -> dict[str, Any]:
    """The body as a JSON object, parsed within ``core.jsonlimits`` (an empty body is ``{}``).

    Raises a ServiceError: ``malformed_json`` (400) when it is not JSON or not an object,
    ``payload_too_large`` (413), or the limits' own codes (422, with ``details.path``).
    """
    limit = settings.COUNTERSIGN_MAX_BODY_BYTES
    try:
        raw = request.body
    except RequestDataTooBig:
        raw = None
    if raw is None or len(raw) > limit:
        raise BodyTooLarge(f"The request body is larger than {limit} bytes.", details={"limit_bytes": limit})
    try:
        body = loads_limited(raw or b"{}")
    except ValueError:
        raise BodyRefused(f"{what} must be a JSON object.") from None
    if not isinstance(body, dict):
        raise BodyRefused(f"{what} must be a JSON object.")
    return body


def json_object_body(request: HttpRequest) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not JSON, not an object, or over the limits."""
    try:
        return json_object_body_checked(request)
    except ServiceError:
        return None
