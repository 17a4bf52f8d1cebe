"""The sync and async clients are one implementation: the same server answers give the same outcome,
through the decorator and the guard alike, because both drive the same sans-IO programs in _core."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from countersign_client import Action, AsyncCountersign, Countersign, _core, idempotency_key_for

from tests.client.scripted_gateway import (
    EDITED,
    GET,
    PARAMS,
    REPORT,
    RESULT,
    START,
    SUBMIT,
    WAIT,
    WAYS,
    Answer,
    action,
    error,
    outcome_of,
)

SUCCEEDED = {"status": "succeeded"}
CLAIMED = action("approved", execution={"started_at": "2030-01-01T00:00:00Z"})
EXECUTED = action("executed", execution={"status": "succeeded", "result": RESULT})
REJECTED = action("rejected", decision={"reason_category": "wrong_recipient", "reason": "not this one"})
REJECTED_MESSAGE = (
    "[countersign] The action `send_email` was NOT performed: a human reviewer rejected it "
    "(category: wrong_recipient). Reviewer's reason: not this one. "
    "Do not retry the same call; change the plan to address the reason, or ask the user."
)
ran_and_reported = [Answer(START, CLAIMED), Answer(REPORT, EXECUTED, expect=SUCCEEDED)]

# (what the gateway answers, options of the gated call, what the caller gets, the params the tool ran with)
TABLE: dict[str, tuple[list[Answer], dict[str, Any], tuple[Any, ...], list[dict]]] = {
    "allowed runs at once and is reported": (
        [Answer(SUBMIT, action("allowed")), *ran_and_reported],
        {},
        ("returned", RESULT),
        [PARAMS],
    ),
    "approved after long-polls runs the reviewer's edit": (
        [
            Answer(SUBMIT, action("pending")),
            Answer(WAIT, action("pending")),
            Answer(WAIT, action("approved", final_params=EDITED, edited=True)),
            *ran_and_reported,
        ],
        {},
        ("returned", RESULT),
        [EDITED],
    ),
    "rejected raises Rejected with category and reason": (
        [Answer(SUBMIT, REJECTED)],
        {},
        ("Rejected", "wrong_recipient", "not this one"),
        [],
    ),
    "blocked raises Blocked": ([Answer(SUBMIT, action("blocked"))], {}, ("Blocked", "blocked"), []),
    "expired raises Expired": (
        [Answer(SUBMIT, action("pending")), Answer(WAIT, action("expired"))],
        {},
        ("Expired", "expired"),
        [],
    ),
    "a lapsed approval raises Expired": ([Answer(SUBMIT, action("lapsed"))], {}, ("Expired", "lapsed"), []),
    "cancelled raises Cancelled": ([Answer(SUBMIT, action("cancelled"))], {}, ("Cancelled", "cancelled"), []),
    "executed raises AlreadyExecuted": ([Answer(SUBMIT, EXECUTED)], {}, ("AlreadyExecuted", "executed"), []),
    "an unknown status is not permitted": (
        [Answer(SUBMIT, action("quarantined"))],
        {},
        ("ActionNotPermitted", "quarantined"),
        [],
    ),
    "the wait running out raises Expired without a long-poll": (
        [Answer(SUBMIT, action("pending"))],
        {"wait_timeout": 0},
        ("Expired", "pending"),
        [],
    ),
    "a claim lost to another run raises AlreadyExecuted": (
        [
            Answer(SUBMIT, action("approved")),
            Answer(START, error("execution_already_started"), status=409),
            Answer(GET, CLAIMED),
        ],
        {},
        ("AlreadyExecuted", "approved"),
        [],
    ),
    "5xx is retried with backoff": (
        [
            Answer(SUBMIT, error("unavailable"), status=503),
            Answer(SUBMIT, error("unavailable"), status=503),
            Answer(SUBMIT, action("allowed")),
            *ran_and_reported,
        ],
        {},
        ("returned", RESULT),
        [PARAMS],
    ),
    "a lost connection is retried": (
        [Answer(SUBMIT, lost=True), Answer(SUBMIT, action("allowed")), *ran_and_reported],
        {},
        ("returned", RESULT),
        [PARAMS],
    ),
    "retries stop after max_retries": (
        [Answer(SUBMIT, error("unavailable"), status=503)] * 5,
        {},
        ("APIError", 503, "unavailable"),
        [],
    ),
    "4xx is an answer, not retried": (
        [Answer(SUBMIT, error("invalid_input"), status=422)],
        {},
        ("APIError", 422, "invalid_input"),
        [],
    ),
    "an error that is not JSON keeps its status": (
        [Answer(SUBMIT, None, status=502)] * 5,
        {},
        ("APIError", 502, "http_error"),
        [],
    ),
    "a lost report answer finds its first try recorded": (
        [
            Answer(SUBMIT, action("allowed")),
            Answer(START, CLAIMED),
            Answer(REPORT, lost=True),
            Answer(REPORT, error("already_reported"), status=409),
            Answer(GET, EXECUTED),
        ],
        {},
        ("returned", RESULT),
        [PARAMS],
    ),
    "a tool that raises is reported failed and the error raised": (
        [
            Answer(SUBMIT, action("allowed")),
            Answer(START, CLAIMED),
            Answer(REPORT, EXECUTED, expect={"status": "failed", "result": {"error": "RuntimeError('SMTP 550')"}}),
        ],
        {"fails": True},
        ("RuntimeError", "SMTP 550"),
        [PARAMS],
    ),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("row", TABLE)
def test_each_server_answer_gives_the_same_outcome_every_way(row, way):
    answers, options, expected, ran = TABLE[row]

    assert outcome_of(WAYS[way], answers, **options) == (expected, ran)


@pytest.mark.parametrize("way", ["sync decorator", "async decorator"])
def test_a_refusal_comes_back_as_the_same_message_from_both_decorators(way):
    assert outcome_of(WAYS[way], [Answer(SUBMIT, REJECTED)], on_reject="return") == (
        ("returned", REJECTED_MESSAGE),
        [],
    )


# --- the one core ---------------------------------------------------------------------------


class Settings:
    max_retries = 2
    backoff = 0.5


def test_the_core_asks_for_each_request_pause_and_run_itself():
    """Driven by hand, with no transport at all: the program says what to do next."""
    program = _core.gated(Settings(), "send_email", PARAMS, tool_call_id="call-1")

    submit = _core.advance(program)
    assert isinstance(submit, _core.Send)
    assert (submit.method, submit.path) == SUBMIT
    assert submit.headers == {"Idempotency-Key": idempotency_key_for("send_email", "call-1")}
    pause = _core.advance(program, httpx.Response(503, json=error("unavailable")))
    assert isinstance(pause, _core.Sleep)
    assert 0 <= pause.seconds <= Settings.backoff
    assert _core.advance(program).path == SUBMIT[1]
    assert _core.advance(program, httpx.Response(200, json=action("approved", final_params=EDITED))).path == START[1]
    run = _core.advance(program, httpx.Response(200, json=CLAIMED))
    assert isinstance(run, _core.Run)
    assert run.params == EDITED
    report = _core.advance(program, RESULT)
    assert (report.method, report.path, report.json["status"]) == (*REPORT, "succeeded")
    assert _core.advance(program, httpx.Response(200, json=EXECUTED)) == _core.Done(RESULT)


def test_the_wait_loop_polls_up_to_its_deadline_and_no_further():
    now = [100.0]
    program = _core.wait(Settings(), Action.from_json(action("pending")), timeout=70, clock=lambda: now[0])

    first = _core.advance(program)
    assert (first.params, first.server_wait) == ({"timeout": "50.00"}, 50.0)  # the gateway's cap on one poll
    now[0] = 150.0
    second = _core.advance(program, httpx.Response(200, json=action("pending")))
    assert (second.params, second.server_wait) == ({"timeout": "20.00"}, 20.0)
    now[0] = 170.0
    done = _core.advance(program, httpx.Response(200, json=action("pending")))
    assert isinstance(done, _core.Done)
    assert done.value.status == "pending"


def test_every_request_of_both_clients_goes_through_the_core(monkeypatch):
    through_core: list[tuple[str, str]] = []
    call = _core.call

    def recording_call(settings, send):
        through_core.append((type(settings).__name__, send.path))
        return (yield from call(settings, send))

    monkeypatch.setattr(_core, "call", recording_call)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=action("allowed"), request=request))

    with Countersign("http://gateway.test", "cs_test", transport=transport) as gate:
        gate.get("a-1")

    async def use_async() -> None:
        async with AsyncCountersign("http://gateway.test", "cs_test", transport=transport) as gate:
            await gate.get("a-1")

    asyncio.run(use_async())
    assert through_core == [("Countersign", GET[1]), ("AsyncCountersign", GET[1])]
