"""An agent retrying the same tool call never submits twice and never executes twice.

Against the live gateway (uvicorn on a free port); the test plays the reviewer.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from countersign_client import AlreadyExecuted, AsyncCountersign, Blocked, Countersign, Expired, Rejected

from approvals.models import ActionRequest, AuditEvent
from approvals.services import action_request_decide
from tests.client.conftest import EMAIL, LosesFirstAnswer, gated_email_async, in_thread, pending_request
from tests.conftest import reject


def test_a_retry_after_a_rejection_is_rejected_again_without_a_second_submission(sent, alice, in_background):
    send_email, calls = sent
    first = in_background(send_email, **EMAIL, _tool_call_id="call-r")
    reject(pending_request(action_type="send_external_email").pk, alice, reason="Wrong customer")
    with pytest.raises(Rejected):
        first.result(timeout=20)

    with pytest.raises(Rejected) as again:
        send_email(**EMAIL, _tool_call_id="call-r")

    assert again.value.reason == "Wrong customer"
    assert calls == []
    assert ActionRequest.objects.count() == 1


def test_a_retry_of_a_blocked_call_is_blocked_without_a_second_submission(gate):
    @gate.require_approval("legal_advice")
    def advise(question: str) -> str:
        raise AssertionError("must not run")

    for _ in range(2):
        with pytest.raises(Blocked):
            advise("Can I break my lease?", _tool_call_id="call-b")

    assert ActionRequest.objects.filter(action_type="legal_advice").count() == 1


def test_a_retry_after_expiry_is_expired_without_a_second_submission(slow_review):
    act, calls = slow_review

    for _ in range(2):
        with pytest.raises(Expired):
            act(1, _tool_call_id="call-e")

    assert calls == []
    assert ActionRequest.objects.filter(action_type="slow_review").count() == 1


def test_a_retry_while_the_first_call_still_waits_runs_the_tool_once(sent, alice, in_background):
    """Agent frameworks time a tool out and call it again while the first call is still waiting."""
    send_email, calls = sent
    first = in_background(send_email, **EMAIL, _tool_call_id="call-dup")
    request = pending_request(action_type="send_external_email")
    second = in_background(send_email, **EMAIL, _tool_call_id="call-dup")
    # Let the retry reach its own long-poll on the same request before the reviewer decides.
    threading.Event().wait(0.5)

    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    outcomes = []
    for future in (first, second):
        try:
            outcomes.append(future.result(timeout=20))
        except AlreadyExecuted:
            outcomes.append("already executed")
    assert calls == [EMAIL]
    assert sorted(map(str, outcomes)) == sorted(["already executed", str({"message_id": "m-1"})])
    assert ActionRequest.objects.count() == 1
    assert not AuditEvent.objects.filter(request=request, kind="violation").exists()


def test_two_async_calls_with_one_tool_call_id_run_the_tool_once(live_agent, live_url, alice):
    calls = []

    async def scenario():
        async with AsyncCountersign(live_url, live_agent[1], backoff=0.01) as gate:
            send_email = gated_email_async(gate, calls)
            first = asyncio.ensure_future(send_email(**EMAIL, _tool_call_id="call-async"))
            request = await in_thread(pending_request, action_type="send_external_email")
            second = asyncio.ensure_future(send_email(**EMAIL, _tool_call_id="call-async"))
            await asyncio.sleep(0.5)
            await in_thread(action_request_decide, request_id=request.pk, reviewer=alice, approve=True)
            return await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), timeout=20)

    outcomes = asyncio.run(scenario())

    assert calls == [EMAIL["to"]]
    assert sorted(type(o).__name__ if isinstance(o, Exception) else o for o in outcomes) == [
        "AlreadyExecuted",
        "sent",
    ]


def test_a_lost_report_answer_is_retried_without_running_the_tool_again(live_agent, live_url):
    transport = LosesFirstAnswer("/execution")
    calls = []
    with Countersign(live_url, live_agent[1], backoff=0.01, transport=transport) as gate:

        @gate.require_approval("search_web")
        def search(q: str) -> list[str]:
            calls.append(q)
            return [f"result for {q}"]

        assert search("refund policy", _tool_call_id="call-s") == ["result for refund policy"]
        with pytest.raises(AlreadyExecuted):
            search("refund policy", _tool_call_id="call-s")

    assert calls == ["refund policy"]
    assert transport.matched == 2
    request = ActionRequest.objects.get()
    assert (request.status, request.execution_status) == ("executed", "succeeded")
    # The retried report found its first try already recorded: that is kept, but it ran once.
    assert AuditEvent.objects.filter(request=request, kind="executed").count() == 1


def test_a_lost_start_answer_is_retried_and_the_run_is_still_ours(live_agent, live_url):
    # The claim reached the gateway but its answer was lost: the client's retry carries the same
    # run id, so it is told "yours" and the tool runs once, instead of never.
    transport = LosesFirstAnswer("/execution/start")
    calls = []
    with Countersign(live_url, live_agent[1], backoff=0.01, transport=transport) as gate:

        @gate.require_approval("search_web")
        def search(q: str) -> list[str]:
            calls.append(q)
            return [f"result for {q}"]

        assert search("refund policy", _tool_call_id="call-start") == ["result for refund policy"]

    assert calls == ["refund policy"]
    assert transport.matched == 2
    request = ActionRequest.objects.get()
    assert (request.status, request.execution_status) == ("executed", "succeeded")
    assert AuditEvent.objects.filter(request=request, kind="execution_started").count() == 1
    assert not AuditEvent.objects.filter(request=request, kind="violation").exists()
