"""The client sends the agent's trace context, so Countersign's spans join the agent's trace (issue 15)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from approvals.models import ActionRequest
from tests.client.conftest import EMAIL


def test_inside_an_agents_span_the_client_sends_its_traceparent(gate):
    tracer = TracerProvider().get_tracer("agent")
    with tracer.start_as_current_span("agent.tool_call") as span:
        action = gate.submit("send_external_email", EMAIL)
    context = span.get_span_context()
    stored = ActionRequest.objects.get(pk=action.id).traceparent
    assert stored == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_outside_any_span_the_client_sends_no_trace_context(gate):
    action = gate.submit("send_external_email", EMAIL)
    assert ActionRequest.objects.get(pk=action.id).traceparent == ""
