"""One error shape for every JSON door: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ServiceError


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code, headers=headers)


def _validation_details(detail: Any) -> dict[str, Any]:
    """Flatten DRF's nested error detail into {"field.path": [{"code", "message"}]}."""
    flat: dict[str, list[dict[str, str]]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, int):
                    walk(value, f"{path}[{key}]")
                elif key == "non_field_errors" and path:
                    walk(value, path)
                else:
                    walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            if all(isinstance(item, exceptions.ErrorDetail) for item in node):
                for item in node:
                    flat.setdefault(path or "non_field_errors", []).append({"code": item.code, "message": str(item)})
            else:
                for index, item in enumerate(node):
                    if item:
                        walk(item, f"{path}[{index}]")
        elif isinstance(node, exceptions.ErrorDetail):
            flat.setdefault(path or "non_field_errors", []).append({"code": node.code, "message": str(node)})

    walk(detail, "")
    return {"fields": flat}


def _code_of(exc: exceptions.APIException, default: str) -> str:
    """The code an authentication or permission check raised with (``code="token_expired"``), else ``default``."""
    code = getattr(exc.detail, "code", None)
    return code if isinstance(code, str) and code != exc.default_code else default


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status, headers=exc.headers or None)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, exceptions.ValidationError):
        details = _validation_details(exc.detail)
        codes = {e["code"] for errors in details["fields"].values() for e in errors}
        code = "unknown_field" if codes == {"unknown_field"} else "validation_error"
        fields = ", ".join(sorted(details["fields"]))
        return Response(
            error_body(code, f"The request body is not valid; fix these fields: {fields}.", details),
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(
            error_body("malformed_json", f"The body is not valid JSON: {exc.detail}"),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(
            error_body("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'."),
            status=415,
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        message = str(exc.detail)
        if isinstance(exc, exceptions.NotAuthenticated) and exc.detail == exceptions.NotAuthenticated.default_detail:
            message = "Authentication required: send 'Authorization: Bearer <agent API key>'."
        response = Response(error_body(_code_of(exc, "not_authenticated"), message), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="countersign"'
        return response
    if isinstance(exc, exceptions.PermissionDenied):
        return Response(error_body(_code_of(exc, "permission_denied"), str(exc.detail)), status=403)
    if isinstance(exc, exceptions.NotFound):
        return Response(error_body("not_found", str(exc.detail)), status=404)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Response(error_body("method_not_allowed", str(exc.detail)), status=405)
    if isinstance(exc, exceptions.Throttled):
        return Response(error_body("rate_limited", str(exc.detail)), status=429)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(getattr(exc, "default_code", "error"), str(getattr(exc, "detail", exc)))
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    if _is_api(request):
        return error_response(404, "not_found", f"No API endpoint at {request.path}. See /api/docs/.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return error_response(500, "server_error", "Something went wrong on our side; the request can be retried.")
    from django.views.defaults import server_error

    return server_error(request)


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
}
_KEPT_HEADERS = (
    "Allow",
    "WWW-Authenticate",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)


def _is_json(response) -> bool:
    content_type = (response.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _json_error_for(request, status_code: int) -> JsonResponse:
    if status_code == 404:
        return error_response(404, "not_found", f"No API endpoint at {request.path}. See /api/docs/.")
    if status_code == 500:
        return error_response(500, "server_error", "Something went wrong on our side; the request can be retried.")
    if status_code == 405:
        message = f"{request.method} is not allowed at {request.path}."
    else:
        from http import HTTPStatus

        try:
            message = f"{HTTPStatus(status_code).phrase}."
        except ValueError:
            message = f"HTTP {status_code}."
    return error_response(status_code, _STATUS_CODES.get(status_code, f"http_{status_code}"), message)


class ApiJsonErrorsMiddleware:
    """Every error under /api/ is the JSON error shape, with DEBUG on or off.

    Django ignores handler404/handler500 when DEBUG is on (it renders its HTML debug pages), and
    a few responses never pass through DRF (an unknown path, a malformed id in a path, a method
    Django refuses); this turns any non-JSON error response under /api/ into the shape.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return api_error_as_json(request, self.get_response(request))


def api_error_as_json(request, response):
    """``response``, unless it is a non-JSON error under /api/: then the JSON error shape for its status."""
    if not _is_api(request) or response.status_code < 400 or _is_json(response):
        return response
    replacement = _json_error_for(request, response.status_code)
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement
