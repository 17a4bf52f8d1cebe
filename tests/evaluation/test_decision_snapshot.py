"""The decision record holds what the reviewer decided on, in its own shape, not the queue card's."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import approvals.selectors
from approvals.models import ActionRequest, Decision
from approvals.services import action_request_decide
from evaluation.records import decision_record
from tests.factories import AgentFactory, PendingRequestFactory

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).parents[2] / "evaluation/schemas/decision-record.v1.json").read_text())
SNAPSHOT_KEYS = {
    "id",
    "revision",
    "action_type",
    "agent",
    "summary",
    "params",
    "evidence",
    "confidence",
    "context",
    "trace_id",
    "mode",
    "risk",
    "policy",
    "policy_version",
    "verdict_reason",
    "required_approvals",
    "reviewer_group",
    "submitted_at",
    "expires_at",
}


def record_of(decision: Decision) -> dict:
    return decision_record(Decision.objects.select_related("request__agent").get(pk=decision.pk))


def test_snapshot_is_the_revision_the_reviewer_decided_on(alice):
    request = PendingRequestFactory(revision=3)

    decision = action_request_decide(request_id=request.id, reviewer=alice, approve=True, seen_revision=3)

    assert ActionRequest.objects.get(pk=request.pk).revision == 4
    assert decision.request_snapshot["revision"] == 3
    assert record_of(decision)["request"]["revision"] == 3


def test_snapshot_has_the_documented_shape_and_the_record_stays_v1_valid(alice):
    evidence = [{"title": f"source {i}", "url": f"https://docs.example/{i}", "excerpt": "x"} for i in range(5)]
    request = PendingRequestFactory(evidence=evidence, context={"trace_id": "trace-7", "ticket": 42})

    decision = action_request_decide(request_id=request.id, reviewer=alice, approve=False, reason="wrong_data: no")

    snapshot = decision.request_snapshot
    assert set(snapshot) == SNAPSHOT_KEYS
    # All the evidence, not the card's first three.
    assert snapshot["evidence"] == evidence
    assert snapshot["context"] == {"trace_id": "trace-7", "ticket": 42}
    assert snapshot["trace_id"] == "trace-7"
    assert snapshot["agent"] == request.agent.name
    jsonschema.validate(record_of(decision), SCHEMA, format_checker=jsonschema.FormatChecker())


def test_a_change_to_the_queue_card_alone_leaves_the_decision_record_unchanged(alice, monkeypatch):
    agent = AgentFactory(name="same-agent")

    def decided_record() -> dict:
        request = PendingRequestFactory(agent=agent)
        record = record_of(action_request_decide(request_id=request.id, reviewer=alice, approve=True))
        # Ids and clocks differ between two requests; everything else must not.
        for part in (record, record["request"]):
            for key in ("decision_id", "request_id", "id", "submitted_at", "expires_at", "timestamps"):
                part.pop(key, None)
        record.pop("seconds_to_decide")
        return record

    before = decided_record()
    real_card = approvals.selectors.queue_card

    def changed_card(request, **kwargs):
        # A UI-only change: the card gains a field and loses two.
        card = {k: v for k, v in real_card(request, **kwargs).items() if k not in {"summary", "params"}}
        return {**card, "badge": "new"}

    monkeypatch.setattr(approvals.selectors, "queue_card", changed_card)
    assert "badge" in approvals.selectors.queue_card(PendingRequestFactory(agent=agent))
    after = decided_record()

    assert after == before
