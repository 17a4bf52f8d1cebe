from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import AgentKey
from approvals.services import action_request_decide, agent_create
from core.jsondiff import json_diff
from evaluation.models import SCOPE_EVALUATION_READ
from evaluation.records import reason_category
from evaluation.services import agent_key_scope_grant
from tests.evaluation.synthetic import Case, write_history
from tests.factories import PendingRequestFactory

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "evaluation/schemas/decision-record.v1.json").read_text())
URL = "/api/v1/decisions/"


@pytest.fixture
def reader(db):
    agent, key = agent_create(name="eval-pipeline")
    agent_key_scope_grant(key=AgentKey.objects.get(agent=agent), scope=SCOPE_EVALUATION_READ)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _decide(reviewer, *, approve=True, **kwargs):
    request = PendingRequestFactory(**kwargs.pop("request", {}))
    return action_request_decide(request_id=request.pk, reviewer=reviewer, approve=approve, **kwargs)


def _ids(response):
    return [r["decision_id"] for r in response.json()["results"]]


# --- who may read ------------------------------------------------------------------------


def test_agent_key_with_evaluation_scope_reads_decisions(reader, alice):
    _decide(alice)
    response = reader.get(URL)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_agent_key_without_scope_is_refused(api, alice):
    _decide(alice)
    response = api.get(URL)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_staff_session_reads_decisions(admin_user, alice):
    _decide(alice)
    client = Client()
    client.force_login(admin_user)
    assert client.get(URL).status_code == 200


def test_reviewer_who_is_not_staff_is_refused(alice):
    client = Client()
    client.force_login(alice)
    assert client.get(URL).status_code == 403


def test_anonymous_is_asked_to_authenticate(db):
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_revoked_key_loses_the_scope(reader, alice, db):
    AgentKey.objects.filter(agent__name="eval-pipeline").update(revoked_at=timezone.now())
    assert reader.get(URL).status_code == 401


# --- the record ----------------------------------------------------------------------------


def test_edited_approval_record_validates_against_schema_and_carries_the_diff(reader, alice):
    decision = _decide(
        alice,
        final_params={"to": "customer@example.org", "subject": "Your refund is on its way", "cc": "me@x.org"},
        note="softened the subject",
    )
    record = reader.get(URL).json()["results"][0]
    jsonschema.validate(record, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert record["decision_id"] == decision.pk
    assert record["decision"]["edited"] is True
    assert record["decision"]["note"] == "softened the subject"
    assert record["decision"]["reviewer"] == "alice"
    assert record["params_diff"] == [
        {"op": "add", "path": "/cc", "value": "me@x.org"},
        {"op": "replace", "path": "/subject", "value": "Your refund is on its way"},
    ]
    assert record["request"]["summary"] == "Email the customer that the refund is on its way"
    assert record["verdict"]["mode"] == "approve"
    assert record["execution"]["outcome"] == "awaiting_execution"
    assert record["seconds_to_decide"] >= 0


def test_rejection_record_validates_and_carries_reason_category(reader, alice):
    _decide(alice, approve=False, reason_category="unsafe", reason="quotes the customer's card number")
    record = reader.get(URL).json()["results"][0]
    jsonschema.validate(record, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert record["decision"]["reason_category"] == "unsafe"
    assert record["final_params"] is None
    assert record["params_diff"] == []


def test_json_diff_removes_and_escapes_pointer_tokens():
    assert json_diff({"a/b": 1, "gone": 2}, {"a/b": 3}) == [
        {"op": "remove", "path": "/gone"},
        {"op": "replace", "path": "/a~1b", "value": 3},
    ]


def test_reason_without_slug_is_uncategorised():
    assert reason_category("Wrong customer") == "uncategorised"
    assert reason_category("") is None


# --- filters -------------------------------------------------------------------------------


def test_filters_by_action_type_decision_reason_category_and_policy_version(reader, agent):
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 3, policy_version=1)
    write_history(
        agent=agent,
        action_type="refund",
        cases=[Case(outcome="rejected", reason="amount: too high")] * 2 + [Case(edited=True)],
        policy_version=2,
    )
    assert len(_ids(reader.get(URL, {"action_type": "refund"}))) == 3
    assert len(_ids(reader.get(URL, {"decision": "rejected"}))) == 2
    assert len(_ids(reader.get(URL, {"decision": "edited"}))) == 1
    assert len(_ids(reader.get(URL, {"reason_category": "amount"}))) == 2
    assert len(_ids(reader.get(URL, {"policy_version": "1"}))) == 3
    assert len(_ids(reader.get(URL, {"agent": agent.name}))) == 6
    assert len(_ids(reader.get(URL, {"agent": "nobody"}))) == 0


def test_filters_by_time_range(reader, agent):
    start = timezone.now() - timedelta(days=3)
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 10, start=start, step=timedelta(hours=1))
    since = (start + timedelta(hours=2)).isoformat()
    until = (start + timedelta(hours=5)).isoformat()
    assert len(_ids(reader.get(URL, {"since": since, "until": until}))) == 3


def test_bad_filter_is_a_422_in_the_error_shape(reader):
    response = reader.get(URL, {"since": "yesterday"})
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_forged_cursor_is_refused(reader):
    response = reader.get(URL, {"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"


# --- cursor pagination ---------------------------------------------------------------------


def test_cursor_pages_skip_and_repeat_nothing_while_decisions_arrive(reader, agent, alice):
    # Several decisions share one decided_at, so the id tie-break is exercised too.
    start = timezone.now() - timedelta(hours=1)
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 25, start=start, step=timedelta(0))
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 25, start=start + timedelta(minutes=1))
    seen: list[int] = []
    cursor = None
    inserted = 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = reader.get(URL, params).json()
        seen.extend(r["decision_id"] for r in body["results"])
        cursor = body["next_cursor"]
        if inserted < 4:  # a reviewer decides while the pipeline pages
            _decide(alice, request={"agent": agent})
            inserted += 1
        if not body["has_more"]:
            break
    from approvals.models import Decision

    assert len(seen) == len(set(seen)), "a decision was repeated"
    assert sorted(seen) == sorted(Decision.objects.values_list("id", flat=True)), "a decision was skipped"
    assert len(seen) == 54


# --- JSON Lines streaming ------------------------------------------------------------------


@pytest.mark.slow
def test_jsonl_streams_100k_decisions_with_bounded_memory(reader, agent):
    total = 100_000
    write_history(agent=agent, action_type="send_email", cases=[Case()] * total, step=timedelta(milliseconds=10))
    response = reader.get(URL, {"format": "jsonl"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    lines = 0
    size = 0
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nstreamed {lines} records, {size / 1e6:.1f} MB, tracemalloc peak {peak / 1e6:.1f} MB")
    assert lines == total
    # The body is ~70 MB; a streamed export holds one chunk of 2,000 rows at a time.
    assert peak < 25_000_000
    assert peak < size / 4


def test_jsonl_export_reads_a_constant_number_of_queries_whatever_the_size(reader, agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_export() -> int:
        with CaptureQueriesContext(connection) as captured:
            b"".join(reader.get(URL, {"format": "jsonl"}).streaming_content)
        return len(captured)

    write_history(agent=agent, action_type="send_email", cases=[Case()] * 3)
    queries_for_export()  # the key's first use records last_used_at
    few = queries_for_export()
    write_history(agent=agent, action_type="send_email", cases=[Case(edited=True)] * 300)
    assert queries_for_export() == few, "the number of queries grows with the export"


def test_a_page_and_a_stream_give_the_same_records(reader, agent):
    write_history(
        agent=agent, action_type="send_email", cases=[Case(edited=True), Case(outcome="rejected", reason="pii: x")]
    )
    page = reader.get(URL).json()["results"]
    body = b"".join(reader.get(URL, {"format": "jsonl"}).streaming_content)
    streamed = [json.loads(line) for line in body.splitlines()]
    assert page == streamed
    assert [r["decision"]["reason_category"] for r in streamed] == [None, "pii"]


def test_jsonl_limit_caps_the_stream(reader, agent):
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 5)
    body = b"".join(reader.get(URL, {"format": "jsonl", "limit": "2"}).streaming_content)
    assert body.count(b"\n") == 2


def test_jsonl_lines_are_records_that_validate(reader, agent):
    write_history(agent=agent, action_type="send_email", cases=[Case(), Case(outcome="rejected", reason="x")])
    response = reader.get(URL, {"format": "jsonl"})
    records = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(records) == 2
    for record in records:
        jsonschema.validate(record, SCHEMA)


# --- the management command ----------------------------------------------------------------


def test_export_command_writes_jsonl_since_a_time(agent, tmp_path):
    start = timezone.now() - timedelta(days=2)
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 4, start=start, step=timedelta(days=1))
    out = tmp_path / "d.jsonl"
    call_command(
        "export_decisions",
        "--since",
        (start + timedelta(hours=1)).isoformat(),
        "--output",
        str(out),
        stderr=io.StringIO(),
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3
    jsonschema.validate(records[0], SCHEMA)


def test_export_command_writes_csv_with_json_encoded_params(agent):
    write_history(agent=agent, action_type="send_email", cases=[Case(edited=True)])
    out = io.StringIO()
    call_command("export_decisions", "--format", "csv", stdout=out, stderr=io.StringIO())
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 1
    assert rows[0]["edited"] == "True"
    assert json.loads(rows[0]["params_diff"])[0]["path"] == "/subject"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_jsonl_is_an_async_stream_under_asgi(agent_and_key):
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    agent, _ = agent_and_key

    def setup():
        _, key = agent_create(name="async-reader")
        agent_key_scope_grant(key=AgentKey.objects.get(agent__name="async-reader"), scope=SCOPE_EVALUATION_READ)
        write_history(agent=agent, action_type="send_email", cases=[Case()] * 1200)
        return key

    key = await sync_to_async(setup)()
    response = await AsyncClient().get(URL, {"format": "jsonl"}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.is_async, "a sync iterator would make Django's ASGI handler buffer the whole export"
    body = b"".join([chunk async for chunk in response.streaming_content])
    # The ORM ran in asgiref's sync thread: close its connection there, or the test database
    # cannot be dropped at the end of the session (PostgreSQL: "being accessed by other users").
    await sync_to_async(connections.close_all)()
    assert body.count(b"\n") == 1200


def test_an_unknown_format_is_a_422_not_a_404(reader):
    response = reader.get(URL, {"format": "csv"})

    assert response.status_code == 422
    assert "'format'" in response.json()["error"]["message"]


@pytest.mark.parametrize("name", ["since", "until", "decision", "policy_version", "limit", "format"])
def test_an_empty_typed_filter_is_refused_rather_than_ignored(reader, name):
    response = reader.get(URL, {name: ""})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["empty"] == [name]


def test_an_empty_text_filter_means_no_filter(reader, alice):
    _decide(alice)

    response = reader.get(URL, {"action_type": "", "agent": ""})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_a_since_with_an_offset_postgresql_refuses_is_read_as_utc(reader, alice):
    _decide(alice)

    response = reader.get(URL, {"since": "0454-05-21T14:41:38.378+18:22"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("since", ["2026-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00"])
def test_an_impossible_or_naive_since_is_a_422(reader, since):
    response = reader.get(URL, {"since": since})

    assert response.status_code == 422


def test_a_cursor_with_an_offset_postgresql_refuses_is_read_as_utc(reader, alice):
    from core.cursors import cursor_encode

    _decide(alice)

    response = reader.get(URL, {"cursor": cursor_encode(["2000-01-01T00:00:00+18:22", 0])})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
