"""Traces (issue 15): the agent's traceparent is kept, and the request's life shows up as spans in that trace."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from approvals.models import ActionRequest
from approvals.services import action_request_decide
from core.tracing import (
    traceparent_for_unlinked,
    traceparent_normalised,
    tracer_provider_for_otlp,
    tracing_configure,
    tracing_flush,
)
from tests.helpers import report_execution, submission_body, submit

pytestmark = pytest.mark.usefixtures("default_policies")

AGENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
AGENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{AGENT_TRACE}-{AGENT_SPAN}-01"


@pytest.fixture
def spans():
    """Countersign's spans, kept in memory (the SDK's own test exporter) for the length of one test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing_configure(provider)
    yield exporter
    tracing_configure(None)


def by_name(exporter: InMemorySpanExporter) -> dict[str, object]:
    finished = exporter.get_finished_spans()
    named = {span.name: span for span in finished}
    assert len(named) == len(finished), [span.name for span in finished]
    return named


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (TRACEPARENT, TRACEPARENT),
        (f"  00-{AGENT_TRACE.upper()}-{AGENT_SPAN}-01 ", TRACEPARENT),
        (f"cc-{AGENT_TRACE}-{AGENT_SPAN}-01-future-field", TRACEPARENT),  # a later version: read as 00
        (f"00-{AGENT_TRACE}-{AGENT_SPAN}-01-extra", ""),
        (f"ff-{AGENT_TRACE}-{AGENT_SPAN}-01", ""),
        (f"00-{'0' * 32}-{AGENT_SPAN}-01", ""),
        (f"00-{AGENT_TRACE}-{'0' * 16}-01", ""),
        (f"00-{AGENT_TRACE[:-1]}-{AGENT_SPAN}-01", ""),
        ("00-xyz", ""),
        (42, ""),
        (None, ""),
    ],
)
def test_a_traceparent_is_kept_in_its_version_00_form_or_ignored_when_invalid(raw, kept):
    assert traceparent_normalised(raw) == kept


def test_the_traceparent_header_is_kept_and_returned_with_the_request(api):
    created = api.post("/api/v1/actions/", data=submission_body(), format="json", HTTP_TRACEPARENT=TRACEPARENT).json()
    assert created["traceparent"] == TRACEPARENT
    assert api.get(f"/api/v1/actions/{created['id']}/").json()["traceparent"] == TRACEPARENT


def test_context_traceparent_is_used_without_the_header_and_the_header_wins_over_it(api):
    other = f"00-{'a' * 32}-{'b' * 16}-00"
    from_context = submit(api, context={"traceparent": other, "task_id": "t-1"})
    assert from_context["traceparent"] == other
    both = api.post(
        "/api/v1/actions/",
        data=submission_body(context={"traceparent": other, "task_id": "t-2"}),
        format="json",
        HTTP_TRACEPARENT=TRACEPARENT,
    ).json()
    assert both["traceparent"] == TRACEPARENT


def test_an_invalid_traceparent_is_ignored_and_the_submission_still_succeeds(api):
    response = api.post("/api/v1/actions/", data=submission_body(), format="json", HTTP_TRACEPARENT="00-nonsense")
    assert response.status_code == 201
    assert response.json()["traceparent"] is None


def test_a_retry_with_a_new_traceparent_is_still_a_replay_of_the_same_request(api):
    first = api.post(
        "/api/v1/actions/",
        data=submission_body(),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
        HTTP_TRACEPARENT=TRACEPARENT,
    )
    retry = api.post(
        "/api/v1/actions/",
        data=submission_body(),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
        HTTP_TRACEPARENT=f"00-{AGENT_TRACE}-{'1' * 16}-01",
    )
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["id"] == first.json()["id"]


def test_an_approved_and_executed_request_is_submit_verdict_pending_decision_and_execution_in_the_agents_trace(
    api, agent, alice, spans, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/api/v1/actions/", data=submission_body(), format="json", HTTP_TRACEPARENT=TRACEPARENT
        ).json()
    with django_capture_on_commit_callbacks(execute=True):
        action_request_decide(request_id=created["id"], reviewer=alice, approve=True, surface="api")
    with django_capture_on_commit_callbacks(execute=True):
        report_execution(agent, ActionRequest.objects.get(pk=created["id"]))

    named = by_name(spans)
    assert set(named) == {
        "countersign.submit",
        "countersign.verdict",
        "countersign.pending",
        "countersign.decision",
        "countersign.execution",
    }
    for span in named.values():
        assert format(span.context.trace_id, "032x") == AGENT_TRACE
    for top in ("countersign.submit", "countersign.pending", "countersign.execution"):
        assert format(named[top].parent.span_id, "016x") == AGENT_SPAN
        assert named[top].parent.is_remote
    assert named["countersign.verdict"].parent.span_id == named["countersign.submit"].context.span_id
    assert named["countersign.decision"].parent.span_id == named["countersign.pending"].context.span_id

    request = ActionRequest.objects.select_related("decision").get(pk=created["id"])
    assert named["countersign.submit"].attributes["countersign.request_id"] == created["id"]
    assert named["countersign.submit"].attributes["countersign.agent"] == "support-bot"
    assert named["countersign.verdict"].attributes["countersign.mode"] == "approve"
    assert named["countersign.decision"].attributes["countersign.outcome"] == "approved"
    assert named["countersign.decision"].attributes["countersign.decided_by"] == "alice"
    assert named["countersign.decision"].attributes["countersign.surface"] == "api"
    assert named["countersign.execution"].attributes["countersign.execution_status"] == "succeeded"
    pending = named["countersign.pending"]
    assert pending.start_time == int(request.created_at.timestamp() * 1e9)
    assert pending.end_time == int(request.decision.decided_at.timestamp() * 1e9)


def test_a_rejection_is_traced_with_its_category_and_a_failed_run_marks_its_span_as_an_error(
    api, agent, alice, spans, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rejected = submit(api, context={"task_id": "r"})
        action_request_decide(
            request_id=rejected["id"],
            reviewer=alice,
            approve=False,
            reason="Wrong person",
            reason_category="wrong_recipient",
        )
    decision = by_name(spans)["countersign.decision"]
    assert decision.attributes["countersign.outcome"] == "rejected"
    assert decision.attributes["countersign.reason_category"] == "wrong_recipient"

    spans.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ran = submit(api, action_type="search_web", params={"query": "refund policy"})
        report_execution(agent, ActionRequest.objects.get(pk=ran["id"]), outcome="failed")
    named = by_name(spans)
    assert set(named) == {"countersign.submit", "countersign.verdict", "countersign.execution"}
    assert named["countersign.execution"].status.status_code == StatusCode.ERROR


def test_without_a_traceparent_a_requests_spans_share_a_trace_named_by_its_id(
    api, alice, spans, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = submit(api)
        action_request_decide(request_id=created["id"], reviewer=alice, approve=True)
    trace_ids = {format(span.context.trace_id, "032x") for span in spans.get_finished_spans()}
    assert trace_ids == {created["id"].replace("-", "")}
    assert traceparent_for_unlinked(ActionRequest.objects.get(pk=created["id"]).pk).split("-")[1] == trace_ids.pop()


def test_with_tracing_off_no_span_work_is_queued_after_commit(api, django_capture_on_commit_callbacks):
    tracing_configure(None)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(api)
    assert callbacks  # the live events are queued as usual
    assert not [c for c in callbacks if c.__qualname__.startswith("audit.")]


class _Receiver(BaseHTTPRequestHandler):
    """A local OTLP/HTTP traces receiver: decodes each protobuf export it is sent."""

    received: list[ExportTraceServiceRequest]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.server.received.append(
            (self.path, self.headers.get("Content-Type"), self.headers.get("X-Api-Key"), export)
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def otlp_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_spans_reach_an_otlp_http_receiver_as_protobuf_with_the_service_name(
    api, alice, otlp_receiver, django_capture_on_commit_callbacks
):
    endpoint = f"http://127.0.0.1:{otlp_receiver.server_address[1]}/v1/traces"
    tracing_configure(tracer_provider_for_otlp(endpoint=endpoint, headers={"X-Api-Key": "k"}, service_name="cs-test"))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            created = api.post(
                "/api/v1/actions/", data=submission_body(), format="json", HTTP_TRACEPARENT=TRACEPARENT
            ).json()
            action_request_decide(request_id=created["id"], reviewer=alice, approve=True)
        tracing_flush()
    finally:
        tracing_configure(None)

    assert otlp_receiver.received
    received = {}
    for path, content_type, api_key, export in otlp_receiver.received:
        assert (path, content_type, api_key) == ("/v1/traces", "application/x-protobuf", "k")
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert attributes["service.name"] == "cs-test"
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received[span.name] = span
    assert set(received) == {"countersign.submit", "countersign.verdict", "countersign.pending", "countersign.decision"}
    assert received["countersign.submit"].trace_id.hex() == AGENT_TRACE
    assert received["countersign.submit"].parent_span_id.hex() == AGENT_SPAN
    assert received["countersign.decision"].parent_span_id == received["countersign.pending"].span_id
