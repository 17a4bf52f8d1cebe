"""Requests served by config.asgi's handler are freed as soon as they are answered.

Django's own handler left each request in reference cycles (its TaskGroup's exception group, the
lazy user, DRF's view and request, each serializer's fields), so that a request's objects lived on until a full garbage
collection, which paused every request in flight (bench/README.md, session 22). With the
automatic collector off, nothing of a finished request may remain.
"""

from __future__ import annotations

import gc
import json
import logging
import uuid

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from approvals.services import agent_create
from config.asgi import application
from tests.factories import PendingRequestFactory
from tests.helpers import objects_alive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

SUBMISSION = {
    "action_type": "search_web",
    "params": {"query": "refund policy"},
    "evidence": [{"title": "Ticket 42", "url": "https://tickets.example/42", "excerpt": "Where is my refund?"}],
    "summary": "Look up the refund policy",
    "confidence": 0.9,
}


def _agent_with_request() -> tuple[str, str]:
    try:
        agent, key = agent_create(name=f"freed-{uuid.uuid4().hex[:8]}")
        return key, str(PendingRequestFactory(agent=agent).pk)
    finally:
        connection.close()


async def _serve(method: str, path: str, *, key: str | None = None, body: bytes = b"") -> int:
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    communicator = ApplicationCommunicator(
        application,
        {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        },
    )
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(timeout=10)
    content = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)  # the handler has returned: the request is over
    return start["status"], content["body"]


@pytest.mark.parametrize(
    ("method", "path", "with_key", "status"),
    [
        ("GET", "/api/v1/actions/{request_id}/", True, 200),  # an agent's read, through DRF
        ("POST", "/api/v1/actions/", True, 201),  # a submission: its input serializer too
        ("GET", "/api/v1/actions/{request_id}/", False, 401),  # a refusal
        ("GET", "/queue/", False, 302),  # a page: the session's lazy user, the messages storage
    ],
)
async def test_a_request_is_freed_as_soon_as_it_is_answered(method, path, with_key, status, monkeypatch):
    # Django logs each 4xx with the request attached; pytest keeps those records (a log handler in
    # production formats and drops them), which would keep the request alive here.
    monkeypatch.setattr(logging.getLogger("django.request"), "disabled", True)
    key, request_id = await sync_to_async(_agent_with_request, thread_sensitive=False)()

    def body() -> bytes:  # each submission a task of its own (identical pending ones collapse into one)
        return (
            json.dumps({**SUBMISSION, "context": {"task_id": uuid.uuid4().hex}}).encode() if method == "POST" else b""
        )

    await _serve(method, path.format(request_id=request_id), key=key if with_key else None, body=body())  # warm
    gc.collect()
    before = {id(obj) for obj in objects_alive(ASGIRequest, Request, APIView, BaseSerializer)}  # the declared ones

    gc.disable()
    try:
        answered = await _serve(method, path.format(request_id=request_id), key=key if with_key else None, body=body())
        left = [obj for obj in objects_alive(ASGIRequest, Request, APIView, BaseSerializer) if id(obj) not in before]
    finally:
        gc.enable()

    assert answered[0] == status, answered[1]
    assert not left, f"still referenced after the response: {[type(obj).__name__ for obj in left]}"
