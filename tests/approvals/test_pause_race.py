"""A submission racing a pause is either blocked or cancelled by the pause: never left pending.

Real threads on real connections (SQLite here, PostgreSQL with COUNTERSIGN_TEST_DB=postgres).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from approvals.models import ActionRequest, AuditEvent, Status
from approvals.services import action_type_pause, agent_pause
from approvals.services.pauses import submission_gate_pass
from policies.services import policies_load_defaults
from tests.factories import PendingRequestFactory
from tests.helpers import EMAIL, held_by_a_starting_pause, run_at_once, submit_as

THREADS = 8
SUBMISSIONS_EACH = 6

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", ["agent", "action_type"])
def test_submissions_racing_a_pause_are_each_blocked_or_cancelled_never_left_pending(agent, kind):
    policies_load_defaults()

    def act(index: int):
        if index == THREADS // 2:
            if kind == "agent":
                return agent_pause(agent_name=agent.name, reason="Runaway", by_label="race-test")
            return action_type_pause(action_type="send_external_email", reason="Incident", by_label="race-test")
        # Each its own params: identical ones would collapse into one pending card.
        return [submit_as(agent, params={**EMAIL, "subject": f"{index}-{n}"}).pk for n in range(SUBMISSIONS_EACH)]

    results = run_at_once(act, count=THREADS)

    assert all(outcome == "ok" for outcome, _ in results), results
    pause = results[THREADS // 2][1].pause
    rows = ActionRequest.objects.filter(agent=agent)
    assert rows.count() == (THREADS - 1) * SUBMISSIONS_EACH
    assert not rows.filter(status=Status.PENDING).exists()
    blocked = rows.filter(status=Status.BLOCKED, verdict_reason=f"{kind}_paused").count()
    cancelled_ids = set(rows.filter(status=Status.CANCELLED).values_list("id", flat=True))
    assert blocked + len(cancelled_ids) == rows.count()
    cancelled_by_pause = set(
        AuditEvent.objects.filter(kind="cancelled", data__pause_id=pause.pk).values_list("request_id", flat=True)
    )
    assert cancelled_by_pause == cancelled_ids


def test_a_pause_waits_for_a_submission_in_flight_and_then_cancels_it(agent):
    """The gate itself, step by step: a submission's transaction is open when the pause begins."""
    inside, release = threading.Event(), threading.Event()
    created: list[ActionRequest] = []
    paused = threading.Event()

    def submission_in_flight() -> None:
        try:
            with transaction.atomic():
                submission_gate_pass(agent_id=agent.pk, action_type="send_external_email")
                created.append(PendingRequestFactory(agent=agent))
                inside.set()
                release.wait(10)
        finally:
            connection.close()

    def pause() -> None:
        try:
            agent_pause(agent_name=agent.name, reason="Runaway", by_label="race-test")
            paused.set()
        finally:
            connection.close()

    submitter = threading.Thread(target=submission_in_flight)
    submitter.start()
    assert inside.wait(10)
    pauser = threading.Thread(target=pause)
    pauser.start()

    finished_early = paused.wait(0.5)
    release.set()
    submitter.join(10)
    pauser.join(20)

    assert not finished_early  # the pause waited for the submission's commit
    assert paused.is_set()
    assert ActionRequest.objects.get(pk=created[0].pk).status == Status.CANCELLED


def test_a_submission_let_in_by_a_pause_that_just_committed_reads_that_pause(agent):
    """The other order: the gate's read is taken once the gate lets the submission in (on PostgreSQL the
    lock and the read are one round trip, two statements), so it sees the pause that held the gate."""

    def submission():
        with transaction.atomic():
            return submission_gate_pass(agent_id=agent.pk, action_type="send_external_email")

    let_in_early, passed = held_by_a_starting_pause(agent, submission)

    assert not let_in_early  # the gate held the submission while the pause was starting
    assert passed.pause is not None
    assert passed.pause.reason == "Runaway"
