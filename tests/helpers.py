"""Plain helpers the test modules share: a submission body, submitting it, deciding it, running threads at once.

Fixtures live in the conftest.py files; these are functions a test calls.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from approvals.audit_chain import audit_event_hash
from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest, Agent, AuditEvent, Decision, Pause
from approvals.services import (
    Submission,
    action_request_cancel,
    action_request_decide,
    action_request_report_execution,
    action_request_submit,
    action_requests_expire_due,
)
from approvals.services.pauses import _agent_gate
from core.errors import TransitionRefused
from core.locks import transaction_lock
from tests.factories import PendingRequestFactory

PASSWORD = "correct horse battery staple"


def submission_body(**overrides):
    body = {
        "action_type": "send_external_email",
        "params": {"to": "customer@example.org", "subject": "Your refund", "body": "It is on its way."},
        "evidence": [{"title": "Ticket 42", "url": "https://tickets.example/42", "excerpt": "Where is my refund?"}],
        "summary": "Tell the customer their refund is on its way",
        "confidence": 0.82,
        "context": {"trace_id": "trace-abc", "session_id": "s-1"},
    }
    body.update(overrides)
    return body


def submit(client, *, on_commit=None, **overrides) -> dict[str, Any]:
    """POST ``submission_body(**overrides)`` as the agent behind ``client``; the test fails unless it is a 201.

    ``on_commit``: pytest-django's ``django_capture_on_commit_callbacks``, to run the work queued after commit
    (notifications) before this returns.
    """

    def post():
        return client.post(
            "/api/v1/actions/", data=json.dumps(submission_body(**overrides)), content_type="application/json"
        )

    if on_commit is None:
        response = post()
    else:
        with on_commit(execute=True):
            response = post()
    assert response.status_code == 201, response.content
    return response.json()


def approved(client, reviewer, *, final_params=None, **overrides) -> dict[str, Any]:
    """Submit, have ``reviewer`` approve (optionally with edited params), and return the request as the agent reads it."""
    created = submit(client, **overrides)
    action_request_decide(request_id=created["id"], reviewer=reviewer, approve=True, final_params=final_params)
    return client.get(f"/api/v1/actions/{created['id']}/").json()


def reject(request_id, reviewer, *, reason: str = "Wrong customer", category: str = "wrong_recipient") -> Decision:
    """A reviewer rejects a pending request (the service wants a reason and its category)."""
    return action_request_decide(
        request_id=request_id, reviewer=reviewer, approve=False, reason=reason, reason_category=category
    )


def decide_view(client, request, **body):
    """POST a decision to the reviewer's HTML decide view (as the queue page's script does)."""
    return client.post(f"/queue/requests/{request.id}/decide", data=json.dumps(body), content_type="application/json")


# --- through the services, as the agent and the reviewer ------------------------------------------------------

EMAIL = {"to": "customer@example.org", "subject": "Your refund"}


def submit_as(
    agent: Agent, *, callback_url: str = "", action_type: str = "send_external_email", params: dict | None = None
) -> ActionRequest:
    """Submit through the service as ``agent`` (the default policies hold ``send_external_email`` for review).

    The same params twice make one card (a pending duplicate collapses): pass other ``params`` for a second.
    """
    return action_request_submit(
        agent=agent,
        submission=Submission(
            action_type=action_type,
            params=EMAIL if params is None else params,
            summary="Email the customer",
            evidence=[],
            callback_url=callback_url,
        ),
    ).request


def report_execution(agent: Agent, request: ActionRequest, **overrides: Any) -> ActionRequest:
    """Report ``request`` succeeded with its own token and params hash, unless ``overrides`` say otherwise."""
    request.refresh_from_db()
    report = {
        "outcome": "succeeded",
        "approval_token": approval_token(request),
        "reported_params_hash": final_params_hash(request),
    }
    report.update(overrides)
    return action_request_report_execution(agent=agent, request_id=request.pk, **report)


# Each takes a pending request to one final state; one signature, so a test can be parametrized over them.


def to_approved(agent, request, reviewer):
    action_request_decide(request_id=request.pk, reviewer=reviewer, approve=True)


def to_rejected(agent, request, reviewer):
    reject(request.pk, reviewer)


def to_expired(agent, request, reviewer):
    ActionRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert action_requests_expire_due() == 1


def to_cancelled(agent, request, reviewer):
    action_request_cancel(agent=agent, request_id=request.pk)


def to_executed(agent, request, reviewer):
    to_approved(agent, request, reviewer)
    report_execution(agent, request)


def run_at_once(target: Callable[[int], Any], count: int = 8) -> list[Any]:
    """Call ``target(i)`` in ``count`` threads released together; ("ok", result) or ("error", exc) per thread.

    Each thread closes its own database connection, so the test database can be dropped.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = ("ok", target(index))
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# --- the decided history and one request's page -------------------------------------------------------------


def report(api, request_id: str, outcome: str = "succeeded"):
    """Report over the API, by id, with the approval token and params hash the agent reads back."""
    action = api.get(f"/api/v1/actions/{request_id}/").json()
    return api.post(
        f"/api/v1/actions/{request_id}/execution",
        data=json.dumps(
            {
                "status": outcome,
                "approval_token": action.get("approval_token"),
                "params_hash": action.get("final_params_hash"),
                "result": {"message_id": "m-1"},
            }
        ),
        content_type="application/json",
    )


def finished(
    *,
    status: str = "approved",
    at: datetime | None = None,
    reviewer: str = "alice",
    reason: str = "",
    reason_category: str = "",
    edited: bool = False,
    reviewer_user=None,
    **fields,
) -> ActionRequest:
    """A finished request written directly (with its Decision unless expired/cancelled/allowed/blocked)."""
    at = at or timezone.now()
    fields.setdefault("created_at", at - timedelta(seconds=90))
    decided = status not in {"allowed", "blocked"}
    request = PendingRequestFactory(
        status=status,
        decided_at=at if decided else None,
        mode="approve" if decided else ("block" if status == "blocked" else "auto"),
        approval_expires_at=at + timedelta(minutes=15) if status in {"approved", "executed", "lapsed"} else None,
        **{k: v for k, v in fields.items() if k != "created_at"},
    )
    # auto_now_add ignores a value passed at creation.
    ActionRequest.objects.filter(pk=request.pk).update(created_at=fields["created_at"])
    request.refresh_from_db()
    if status in {"approved", "rejected", "executed", "lapsed"}:
        outcome = "rejected" if status == "rejected" else "approved"
        Decision.objects.create(
            request=request,
            outcome=outcome,
            edited=edited,
            reviewer=reviewer_user,
            reviewer_username=reviewer,
            reason=reason,
            reason_category=reason_category,
            original_params=request.params,
            final_params=None if outcome == "rejected" else request.params,
            request_snapshot={},
            verdict={},
            decided_at=at,
            seconds_to_decide=90,
        )
    return request


def history_html(client, **params) -> str:
    response = client.get("/queue/history/", params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def row_ids(html: str) -> list[str]:
    return re.findall(r'<li class="history-row[^"]*" data-id="([0-9a-f-]{36})"', html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="\?([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def walk_pages(client, query: str = "") -> list[list[str]]:
    pages = []
    while True:
        response = client.get(f"/queue/history/?{query}")
        assert response.status_code == 200
        html = response.content.decode()
        pages.append(row_ids(html))
        query = next_link(html)
        if query is None:
            return pages


def live_events(groups: list[str], action) -> list[dict]:
    """Run ``action`` and return the live events the channel layer delivered to ``groups`` meanwhile.

    Listens on the real channel layer (Redis), so it sees what an open queue would, after the
    per-process publisher has sent it.
    """
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from core.channel_layer import publish_flush

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    for group in dict.fromkeys(groups):
        async_to_sync(layer.group_add)(group, channel)

    action()
    publish_flush()

    async def drain() -> list[dict]:
        received = []
        while True:
            try:
                received.append(await asyncio.wait_for(layer.receive(channel), 0.5))
            except TimeoutError:
                return received

    try:
        return async_to_sync(drain)()
    finally:
        for group in dict.fromkeys(groups):
            async_to_sync(layer.group_discard)(group, channel)


def stored_column(model: type, pk: Any, field_name: str) -> Any:
    """A column as the database holds it (a raw SQL cursor, no field conversion): what a dump would show."""
    meta = model._meta
    column = meta.get_field(field_name).column
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(meta.db_table)} "  # noqa: S608
            f"WHERE {connection.ops.quote_name(meta.pk.column)} = %s",
            [meta.pk.get_db_prep_value(pk, connection)],
        )
        (value,) = cursor.fetchone()
    return value


# --- the audit trail's hash chain, and tampering with it as someone with database access would ------------------


def audited(agent: Agent, reviewer) -> ActionRequest:
    """A request whose trail holds four events: submitted, approved, executed, then a violation (a second report)."""
    request = submit_as(agent)
    to_approved(agent, request, reviewer)
    report_execution(agent, request)
    with contextlib.suppress(TransitionRefused):
        report_execution(agent, request)  # already reported: kept in the trail as a violation
    request.refresh_from_db()
    assert request.audit_length == 4
    return request


def tamper_edit(request: ActionRequest, position: int) -> None:
    """Change one event's data in place (its stored hash no longer matches)."""
    assert AuditEvent.objects.filter(request=request, position=position).update(data={"reason": "forged"}) == 1


def tamper_delete(request: ActionRequest, position: int) -> None:
    assert AuditEvent.objects.filter(request=request, position=position).delete()[0] == 1


def tamper_insert(request: ActionRequest, position: int) -> None:
    """Slip a forged event in at ``position``: later events move up one, the forgery links to the one before
    and carries a correctly computed hash (the later events' hashes and the request's head are not rewritten)."""
    for event in AuditEvent.objects.filter(request=request, position__gte=position).order_by("-position"):
        AuditEvent.objects.filter(pk=event.pk).update(position=event.position + 1)
    before = AuditEvent.objects.get(request=request, position=position - 1)
    forged = AuditEvent(
        request=request,
        position=position,
        prev_hash=before.hash,
        kind="approved",
        from_status="pending",
        to_status="approved",
        actor_kind="reviewer",
        actor_label="mallory",
        data={"reason": "forged"},
        created_at=before.created_at,
    )
    forged.hash = audit_event_hash(forged)
    forged.save(force_insert=True)


TAMPERING = {"edited": tamper_edit, "deleted": tamper_delete, "inserted": tamper_insert}


def objects_alive(*types: type) -> list[object]:
    """Every object the garbage collector tracks that is an instance of ``types``."""
    # type(), not isinstance(): a dead weak proxy among the objects raises on isinstance.
    return [obj for obj in gc.get_objects() if issubclass(type(obj), types)]


def held_by_a_starting_pause(agent: Agent, run: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``run`` in a thread while a pause of ``agent`` is starting: holding its gate exclusively, its row
    written but not committed. Returns whether ``run`` finished before the pause committed, and its result."""
    holding, release = threading.Event(), threading.Event()
    results: list[Any] = []

    def pause_starting() -> None:
        try:
            with transaction.atomic():
                transaction_lock(_agent_gate(agent.pk), exclusive=True)  # what starting a pause holds
                Pause.objects.create(
                    agent=agent, reason="Runaway", paused_by_label="race-test", paused_at=timezone.now()
                )
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    def runner() -> None:
        try:
            results.append(run())
        finally:
            connection.close()

    pauser = threading.Thread(target=pause_starting)
    pauser.start()
    assert holding.wait(10)
    other = threading.Thread(target=runner)
    other.start()
    other.join(0.5)
    finished_early = bool(results)
    release.set()
    pauser.join(10)
    other.join(10)
    return finished_early, results[0] if results else None
