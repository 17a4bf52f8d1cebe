"""OpenTelemetry spans into the agent's own trace: the W3C trace context and the span exporter.

Off unless ``COUNTERSIGN_OTLP_ENDPOINT`` is set: then spans go to that OTLP/HTTP endpoint in
batches, from a background thread, and the SDK is imported only then. A request's spans are
written after the fact, with the times its rows recorded (its submission, its decision, its
run happen in different processes, minutes or days apart), each the child of the span the
agent named in its ``traceparent``. Without one, the request's spans share a trace whose id is
the request's id, so a trace viewer finds them by it.

Tracing never fails a write: a span that cannot be built or exported is logged and dropped.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# version 00: 2 hex version, 32 hex trace id, 16 hex parent id, 2 hex flags (W3C Trace Context §3.2).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
TRACEPARENT_MAX_LENGTH = 55


def traceparent_normalised(value: Any) -> str:
    """The version-00 form of a W3C ``traceparent``, or "" when ``value`` is not a valid one.

    As the W3C specification asks of a receiver, an invalid value is ignored, not refused:
    version ``ff``, an all-zero trace or parent id, or a version-00 header with extra fields.
    A future version is read as version 00 (its first four fields).
    """
    if not isinstance(value, str) or len(value) > 512:
        return ""
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return ""
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return ""
    return f"00-{trace_id}-{parent_id}-{flags}"


def traceparent_for_unlinked(request_id: uuid.UUID) -> str:
    """The parent of a request's spans when its agent sent no trace context: trace id = request id."""
    span_id = hashlib.sha256(request_id.bytes).hexdigest()[:16]
    return f"00-{request_id.hex}-{span_id}-01"


@dataclass(frozen=True)
class SpanRecord:
    """One finished span: when it started and ended, what it says, and the spans beneath it."""

    name: str
    start: datetime
    end: datetime
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    error: str = ""
    children: Sequence[SpanRecord] = ()


_provider: Any = None
_configured = False


def tracing_enabled() -> bool:
    """True when spans are exported: cheap enough to ask on every write."""
    if not _configured:
        tracing_configure(_provider_from_settings())
    return _provider is not None


def tracing_configure(provider: Any) -> None:
    """Send spans to ``provider`` (an SDK ``TracerProvider``), or stop tracing with None.

    Called once from the settings; tests call it with a provider of their own (an in-memory
    exporter, or OTLP to a local receiver).
    """
    global _provider, _configured
    _provider, _configured = provider, True


def _provider_from_settings() -> Any:
    endpoint = getattr(settings, "COUNTERSIGN_OTLP_ENDPOINT", "")
    if not endpoint:
        return None
    return tracer_provider_for_otlp(
        endpoint=endpoint,
        headers=getattr(settings, "COUNTERSIGN_OTLP_HEADERS", {}),
        service_name=getattr(settings, "COUNTERSIGN_OTEL_SERVICE_NAME", "countersign"),
    )


def tracer_provider_for_otlp(*, endpoint: str, headers: Mapping[str, str], service_name: str) -> Any:
    """A ``TracerProvider`` that batches spans to an OTLP/HTTP (protobuf) traces endpoint."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=dict(headers), timeout=10))
    )
    return provider


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def spans_emit(*, traceparent: str, spans: Sequence[SpanRecord]) -> None:
    """Write finished spans as children of the span ``traceparent`` names (best effort)."""
    if not tracing_enabled() or not spans:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        tracer = _provider.get_tracer("countersign")
        for record in spans:
            _emit(tracer, trace, parent, record)
    except Exception:
        logger.warning("spans %s not written", [record.name for record in spans], exc_info=True)


def _emit(tracer: Any, trace: Any, parent: Any, record: SpanRecord) -> None:
    span = tracer.start_span(
        record.name,
        context=parent,
        kind=trace.SpanKind.INTERNAL,
        attributes=dict(record.attributes),
        start_time=_ns(record.start),
    )
    if record.error:
        span.set_status(trace.Status(trace.StatusCode.ERROR, record.error))
    for child in record.children:
        _emit(tracer, trace, trace.set_span_in_context(span), child)
    span.end(end_time=max(_ns(record.end), _ns(record.start)))


def tracing_flush(timeout_millis: int = 5_000) -> None:
    """Export what is batched now (tests; a process about to exit does this itself)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)
