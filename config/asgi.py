"""ASGI entry point: HTTP through Django, websockets through Channels."""

from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from core.asgi import CyclelessASGIHandler  # noqa: E402

django_asgi_app = CyclelessASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from approvals.api.long_poll_asgi import LongPollRouter  # noqa: E402
from reviewers.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Agents' long polls skip the middleware stack (approvals/api/long_poll_asgi.py); the rest is Django's.
        "http": LongPollRouter(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far lives as long as the process: keep it out of the cyclic garbage collector's
# full collections, which otherwise walk every module, model and URL pattern again and again and pause
# every request in flight while they do.
gc.freeze()
# And run full collections ten times more rarely. A request leaves no cyclic garbage (core.asgi), so
# they would mostly walk live objects (a thousand waiting agents' coroutines) to free none: 100 to
# 145 ms pauses with 1,000 waiters, none over 10 ms with this (bench/README.md, session 22).
gc.set_threshold(700, 10, 100)
