"""The long-poll served beside Django's middleware stack, so that a waiting agent costs little.

Through the full stack each waiter held a thread (the stack's outer, sync-only half runs in one and
calls the view through ``async_to_sync``) and about 450 objects that the garbage collector walks at
every full collection: with 500 waiters in a worker, a full collection paused every request of
that worker for 100 to 170 ms (bench/README.md, session 21). Served here, a waiter is a coroutine
of about 110 objects and no thread.

The same view answers (``wait.action_wait_view``, found through the URLconf); what the stack would
have done for it is done here: the host check, the NUL-in-query refusal, the security headers
(``SecurityMiddleware``, ``XFrameOptionsMiddleware``, CSP) and the JSON error shape. Django's
handler still reads the request, sends request_started/finished, watches for the agent hanging up
(the wait is cancelled) and logs error responses.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve

from core.asgi import CyclelessASGIHandler
from core.middleware import query_nul_refusal
from core.responses import api_error_as_json

from .wait import action_wait_view

# The middleware whose headers every response carries, outermost first (as in settings.MIDDLEWARE).
HEADER_MIDDLEWARE = (SecurityMiddleware, XFrameOptionsMiddleware, ContentSecurityPolicyMiddleware)


def _unreachable(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the header middleware's get_response is never called here")


def is_long_poll(path: str) -> bool:
    """Whether the URLconf sends ``path`` to the long-poll view (the URLconf stays the one place for it)."""
    if not (path.startswith("/api/v1/actions/") and path.rstrip("/").endswith("/wait")):
        return False
    try:
        return resolve(path).func is action_wait_view
    except Resolver404:
        return False


class LongPollHandler(CyclelessASGIHandler):
    """Django's ASGI handler with, in place of the middleware stack, only what the long-poll needs."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self._headers = [middleware(_unreachable) for middleware in HEADER_MIDDLEWARE]
        self._respond = convert_exception_to_response(self._view)
        self._middleware_chain = self._stack

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # No ThreadSensitiveContext: it would give each waiter a thread of its own, which is the cost
        # this handler exists to avoid. Nothing on this path runs thread-sensitive code.
        await self.handle(scope, receive, send)

    async def _stack(self, request: HttpRequest) -> HttpResponse:
        response = None
        for middleware in self._headers:
            if response is None and hasattr(middleware, "process_request"):
                response = middleware.process_request(request)  # the HTTPS redirect, the CSP nonce
        if response is None:
            response = await self._respond(request)
        response = api_error_as_json(request, response)
        for middleware in reversed(self._headers):
            response = middleware.process_response(request, response)
        return response

    async def _view(self, request: HttpRequest) -> HttpResponse:
        request.get_host()  # an unknown Host raises DisallowedHost: a 400, as through the stack
        refusal = query_nul_refusal(request)
        if refusal is not None:
            return refusal
        match = resolve(request.path_info)
        return await match.func(request, *match.args, **match.kwargs)


class LongPollRouter:
    """ASGI: the long-poll to ``LongPollHandler``, every other HTTP request to Django's own handler."""

    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app
        self.long_poll = LongPollHandler()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_long_poll(scope["path"]):
            await self.long_poll(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)
