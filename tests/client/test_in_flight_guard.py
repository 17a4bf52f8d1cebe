"""The in-flight guard is per process, the same for both clients: a retry of a tool call that is still
waiting or running waits for it, whichever client instance, thread, event loop or transport it comes
through, and then finds the request executed without claiming the run a second time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from itertools import product
from typing import Any

import pytest
from countersign_client import AlreadyExecuted, AsyncCountersign, Countersign
from countersign_client._common import in_flight_key
from countersign_client._inflight import IN_FLIGHT, InFlight

from approvals.models import ActionRequest, AuditEvent
from approvals.services import action_request_decide
from tests.client.conftest import EMAIL, pending_request
from tests.client.scripted_gateway import (
    BASE_URL,
    PARAMS,
    REPORT,
    RESULT,
    START,
    SUBMIT,
    Answer,
    ScriptedGateway,
    action,
)

# --- the guard itself -----------------------------------------------------------------------


def test_a_coroutine_waits_for_a_thread_holding_the_same_key_without_blocking_its_loop():
    guard = InFlight()
    entered: list[str] = []

    async def coroutine_side() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while not entered:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        async with guard.ahold("k"):
            entered.append("coroutine")
        await ticker
        return ticks

    with guard.hold("k"):
        waiter = threading.Thread(target=lambda: entered.append(asyncio.run(coroutine_side())))
        waiter.start()
        time.sleep(0.3)
        assert entered == []  # still held by this thread

    waiter.join(timeout=5)
    assert entered[0] == "coroutine"
    assert entered[1] > 5  # the loop kept running while the coroutine waited


def test_a_cancelled_waiter_does_not_strand_the_ones_behind_it():
    guard = InFlight()

    async def scenario() -> list[str]:
        order: list[str] = []

        async def take(name: str) -> None:
            async with guard.ahold("k"):
                order.append(name)

        async with guard.ahold("k"):
            cancelled = asyncio.ensure_future(take("cancelled"))
            behind = asyncio.ensure_future(take("behind"))
            await asyncio.sleep(0.05)
            cancelled.cancel()
            await asyncio.sleep(0.05)
        await asyncio.wait_for(behind, timeout=5)
        return order

    assert asyncio.run(scenario()) == ["behind"]
    assert not guard.held("k")


def test_different_tool_calls_do_not_wait_for_each_other():
    guard = InFlight()

    with guard.hold("one"), guard.hold("two"):
        assert guard.held("one")
        assert guard.held("two")


# --- both clients, offline ------------------------------------------------------------------


def gated_call(transport: str, gateway: ScriptedGateway, tool: Callable[[], None]) -> Callable[[], Any]:
    """A gated tool call with its own client instance (and, for async, its own event loop in the caller's thread).

    The client is built here, before any thread starts, so the retry is at the gate at once."""
    if transport == "sync":
        gate = Countersign(BASE_URL, "cs_test", backoff=0, transport=gateway.transport())

        @gate.require_approval("send_email")
        def send_email(to: str) -> dict:
            tool()
            return RESULT

        return lambda: send_email(**PARAMS, _tool_call_id="call-twice")

    agate = AsyncCountersign(BASE_URL, "cs_test", backoff=0, transport=gateway.transport())

    @agate.require_approval("send_email")
    async def asend_email(to: str) -> dict:
        await asyncio.to_thread(tool)
        return RESULT

    return lambda: asyncio.run(asend_email(**PARAMS, _tool_call_id="call-twice"))


@pytest.mark.parametrize(("first", "retry"), list(product(["sync", "async"], repeat=2)))
def test_a_retry_through_another_client_waits_for_the_running_call(first, retry):
    executed = action("executed", execution={"status": "succeeded", "result": RESULT})
    gateway = ScriptedGateway(
        [
            Answer(SUBMIT, action("allowed")),
            Answer(START, action("allowed")),
            # The retry's submission must come only now, after the first call reported: it finds it executed.
            Answer(REPORT, executed),
            Answer(SUBMIT, executed),
        ]
    )
    running, finish = threading.Event(), threading.Event()
    outcomes: dict[str, Any] = {}

    def tool() -> None:
        running.set()
        assert finish.wait(timeout=10)

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            outcomes[name] = call()
        except Exception as exc:  # shown by the asserts below, not lost in the thread
            outcomes[name] = exc

    threads = [
        threading.Thread(target=run, args=("first", gated_call(first, gateway, tool))),
        threading.Thread(target=run, args=("retry", gated_call(retry, gateway, lambda: None))),
    ]
    threads[0].start()
    assert running.wait(timeout=10)
    threads[1].start()
    deadline = time.monotonic() + 1.0
    while len(gateway.seen) == 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sent_while_running = list(gateway.seen)
    finish.set()
    for thread in threads:
        thread.join(timeout=10)

    assert sent_while_running == [SUBMIT, START]  # the retry sent nothing while the first call's tool ran

    assert outcomes["first"] == RESULT
    assert isinstance(outcomes["retry"], AlreadyExecuted)
    assert not gateway.answers
    assert not IN_FLIGHT.held(in_flight_key(BASE_URL, "send_email", "call-twice"))


# --- both clients, against the live gateway -------------------------------------------------


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_retry_through_a_second_client_instance_never_claims_the_run(transport, live_agent, live_url, alice):
    """Before the core was shared, the async guard was per instance: this retry also claimed, and was refused."""
    _, key = live_agent
    calls: list[str] = []

    def gated(gate: Any) -> Callable[..., Any]:
        @gate.require_approval("send_external_email")
        def send_email(to: str, subject: str, body: str) -> dict:
            calls.append(to)
            return {"message_id": "m-1"}

        return send_email

    async def call_async() -> Any:
        async with AsyncCountersign(live_url, key, backoff=0.01) as gate:
            return await gated(gate)(**EMAIL, _tool_call_id="call-two-clients")

    def call() -> Any:
        try:
            if transport == "async":
                return asyncio.run(call_async())
            with Countersign(live_url, key, backoff=0.01) as gate:
                return gated(gate)(**EMAIL, _tool_call_id="call-two-clients")
        except AlreadyExecuted:
            return "already executed"

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(2)]
    threads[0].start()
    request = pending_request(action_type="send_external_email")
    threads[1].start()
    time.sleep(0.5)  # the second call is now waiting on the guard, or (if unguarded) long-polling
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)
    for thread in threads:
        thread.join(timeout=30)

    assert calls == [EMAIL["to"]]
    assert sorted(map(str, results)) == sorted(["already executed", str({"message_id": "m-1"})])
    assert ActionRequest.objects.count() == 1
    assert not AuditEvent.objects.filter(request=request, kind="violation").exists()
