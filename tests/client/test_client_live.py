from __future__ import annotations

import asyncio

import httpx
import pytest
from countersign_client import (
    AlreadyExecuted,
    APIError,
    AsyncCountersign,
    Blocked,
    Countersign,
    Expired,
    Rejected,
)

from approvals.models import ActionRequest, AuditEvent
from approvals.services import action_request_decide
from tests.client.conftest import EMAIL, LosesFirstAnswer, gated_email_async, in_thread, pending_request
from tests.conftest import reject


def test_approved_call_runs_once_and_is_reported_executed(sent, alice, in_background):
    send_email, calls = sent

    future = in_background(send_email, **EMAIL, _tool_call_id="call-1")
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    assert future.result(timeout=20) == {"message_id": "m-1"}
    assert calls == [EMAIL]
    request.refresh_from_db()
    assert request.status == "executed"
    assert request.execution_status == "succeeded"
    assert request.execution_result == {"message_id": "m-1"}


def test_edited_params_are_the_ones_that_run(sent, alice, in_background):
    send_email, calls = sent
    edited = {**EMAIL, "body": "Your refund of 40 EUR was sent today."}

    future = in_background(send_email, **EMAIL)
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True, final_params=edited)

    future.result(timeout=20)
    assert calls == [edited]
    request.refresh_from_db()
    assert request.status == "executed"  # the report's params hash matched the edited params


def test_rejection_raises_with_category_and_reason(sent, alice, in_background):
    send_email, calls = sent

    future = in_background(send_email, **EMAIL)
    request = pending_request(action_type="send_external_email")
    reject(request.pk, alice, category="policy_violation", reason="too casual for legal")

    with pytest.raises(Rejected) as rejected:
        future.result(timeout=20)
    assert rejected.value.category == "policy_violation"
    assert rejected.value.reason == "too casual for legal"
    assert calls == []


def test_rejection_can_come_back_as_a_message_for_the_model(gate, alice, in_background):
    calls = []

    @gate.require_approval("send_external_email", on_reject="return")
    def send_email(to: str, subject: str, body: str) -> str:
        calls.append(to)
        return "sent"

    future = in_background(send_email, **EMAIL)
    request = pending_request(action_type="send_external_email")
    reject(request.pk, alice, reason="Wrong customer")

    message = future.result(timeout=20)
    assert "NOT performed" in message
    assert "Wrong customer" in message
    assert calls == []


def test_no_decision_before_the_deadline_raises_expired(slow_review):
    act, calls = slow_review

    with pytest.raises(Expired):
        act(1)
    assert calls == []
    assert ActionRequest.objects.get(action_type="slow_review").status == "expired"


def test_blocked_action_raises_blocked_without_waiting(gate):
    @gate.require_approval("legal_advice")
    def advise(question: str) -> str:
        raise AssertionError("must not run")

    with pytest.raises(Blocked):
        advise("Can I break my lease?")


def test_allowed_action_runs_at_once_and_is_reported(gate):
    @gate.require_approval("search_web")
    def search(q: str) -> list[str]:
        return [f"result for {q}"]

    assert search("refund policy") == ["result for refund policy"]
    assert ActionRequest.objects.get(action_type="search_web").status == "executed"


def test_retried_tool_call_is_neither_submitted_nor_run_twice(sent, alice, in_background):
    send_email, calls = sent
    future = in_background(send_email, **EMAIL, _tool_call_id="call-7")
    request = pending_request(action_type="send_external_email")
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)
    future.result(timeout=20)

    # The agent framework retries the same tool call.
    with pytest.raises(AlreadyExecuted):
        send_email(**EMAIL, _tool_call_id="call-7")

    assert calls == [EMAIL]
    assert ActionRequest.objects.filter(action_type="send_external_email").count() == 1


def test_connection_lost_after_submission_is_retried_onto_the_same_request(live_agent, live_url):
    transport = LosesFirstAnswer("/api/v1/actions/")
    with Countersign(live_url, live_agent[1], backoff=0.01, transport=transport) as gate:
        action = gate.submit("search_web", {"q": "refund"}, tool_call_id="call-9")

    assert transport.matched == 2
    assert ActionRequest.objects.filter(action_type="search_web").count() == 1
    assert action.id == str(ActionRequest.objects.get().pk)


class Answers(httpx.HTTPTransport):
    """Answers the first ``count`` calls itself with ``status``, then lets the gateway answer."""

    def __init__(self, status: int, count: int) -> None:
        super().__init__()
        self.status, self.count, self.calls = status, count, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.count:
            body = {"error": {"code": "x", "message": "injected", "details": {}}}
            return httpx.Response(self.status, json=body, request=request)
        return super().handle_request(request)


def test_5xx_is_retried_with_backoff(live_agent, live_url):
    transport = Answers(503, 2)
    with Countersign(live_url, live_agent[1], backoff=0.01, transport=transport) as gate:
        action = gate.submit("search_web", {"q": "refund"})

    assert action.status == "allowed"
    assert transport.calls == 3


def test_4xx_is_not_retried(live_agent, live_url):
    transport = Answers(422, 5)
    with (
        Countersign(live_url, live_agent[1], backoff=0.01, transport=transport) as gate,
        pytest.raises(APIError) as error,
    ):
        gate.submit("search_web", {"q": "refund"})

    assert error.value.status_code == 422
    assert transport.calls == 1


def test_guard_runs_the_block_with_final_params_and_reports_failure(gate, alice, in_background):
    def agent_step():
        with gate.guard("send_external_email", EMAIL, summary="Email the customer") as approval:
            assert approval.params["body"] == "Edited."
            raise RuntimeError("SMTP 550")

    future = in_background(agent_step)
    request = pending_request(action_type="send_external_email")
    action_request_decide(
        request_id=request.pk, reviewer=alice, approve=True, final_params={**EMAIL, "body": "Edited."}
    )

    with pytest.raises(RuntimeError, match="SMTP 550"):
        future.result(timeout=20)
    request.refresh_from_db()
    assert request.status == "executed"
    assert request.execution_status == "failed"


def test_report_outside_the_decorator_is_refused_twice_by_the_gateway(gate):
    action = gate.submit("search_web", {"q": "x"})
    gate.report(action, result={"hits": 0})

    with pytest.raises(APIError) as error:
        gate.report(action, status="failed")

    assert error.value.code == "already_reported"
    assert AuditEvent.objects.filter(request_id=action.id, kind="violation").count() == 1


def test_async_client_waits_and_runs_the_approved_call(live_agent, live_url, alice):
    calls = []

    async def scenario():
        async with AsyncCountersign(live_url, live_agent[1], backoff=0.01) as gate:
            send_email = gated_email_async(gate, calls)
            task = asyncio.ensure_future(send_email(**EMAIL))
            request = await in_thread(pending_request, action_type="send_external_email")
            await in_thread(action_request_decide, request_id=request.pk, reviewer=alice, approve=True)
            return await asyncio.wait_for(task, timeout=20)

    assert asyncio.run(scenario()) == "sent"
    assert calls == [EMAIL["to"]]
    assert ActionRequest.objects.get(action_type="send_external_email").status == "executed"
