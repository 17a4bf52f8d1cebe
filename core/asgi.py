"""Django's ASGI handler, serving each request without leaving it in a reference cycle.

Django's ``ASGIHandler.handle`` defines an exception class per request and ends every request by
raising it through an ``asyncio.TaskGroup``: the exception group's traceback holds the frames
that hold the request, and the class, the group and the frames refer to one another (Django
ticket #36700). Each request's objects then outlive it until a full garbage collection finds
them, and every request in flight waits while it does (bench/README.md, session 22).

Here the same steps run without the cycle: the view's response and a watch for the client
hanging up race each other, and whichever finishes first cancels the other. What Django's
handler does otherwise (reading the body, the signals, the response, closing) is its own code.
"""

from __future__ import annotations

import asyncio
from contextlib import closing
from typing import Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpRequest, HttpResponse
from django.urls import set_script_prefix
from django.utils.functional import SimpleLazyObject


def request_cycles_drop(request: HttpRequest, response: HttpResponse | None) -> None:
    """Once a request is over, drop what its objects hold, so that they are freed now.

    A request's objects point back at one another: the session's user (lazy, over the request; and
    django-otp's ``is_verified``, over that lazy user), the messages storage (which keeps the
    request), DRF's view and request (each keeps the other, and the response keeps both). Left as
    they are, they wait for a full garbage collection.
    """
    context = getattr(response, "renderer_context", None) or {}
    user = vars(request).get("user")
    users = (user._wrapped, user) if isinstance(user, SimpleLazyObject) else ()
    for obj in (context.get("view"), context.get("request"), response, *users, request):
        attributes = getattr(obj, "__dict__", None)
        if attributes is not None:
            attributes.clear()


class CyclelessASGIHandler(ASGIHandler):
    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                body_file.close()
                await self.send_response(error_response, send)
                await sync_to_async(error_response.close)()
                return
            response = await self._respond_unless_aborted(request, receive, send)
            if response is None:
                await signals.request_finished.asend(sender=self.__class__)
            else:
                await sync_to_async(response.close)()
            request_cycles_drop(request, response)

    async def _respond_unless_aborted(self, request: HttpRequest, receive: Any, send: Any) -> HttpResponse | None:
        """The response, once sent; None if the client hung up first (the view is then cancelled)."""
        serving = asyncio.ensure_future(self._serve(request, send))
        hang_up = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((serving, hang_up), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (serving, hang_up):
                task.cancel()
            # Let both settle (a cancelled view unwinds here), as the TaskGroup did.
            await asyncio.gather(serving, hang_up, return_exceptions=True)
        if not serving.cancelled() and serving.exception() is None:
            return serving.result()
        if not hang_up.cancelled() and isinstance(hang_up.exception(), RequestAborted):
            return None
        for task in (serving, hang_up):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
        return None

    async def _serve(self, request: HttpRequest, send: Any) -> HttpResponse:
        response = await self.run_get_response(request)
        await self.send_response(response, send)
        return response
