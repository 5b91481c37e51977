"""OpenTelemetry set-up and W3C trace context carried in Kafka headers and outbox rows."""

from __future__ import annotations

import os

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_ids = RandomIdGenerator()
_configured = False
_recording = False


def configure_tracing(service: str) -> None:
    """Record and export spans by OTLP when ``OTEL_*`` says where; otherwise record none.

    Without an exporter the SDK's spans would be built and dropped: 50-70 µs of CPU for each
    consumed event (docs/performance.md, change 25). The API's own spans, used then, record
    nothing and carry on the trace context they are started in, so a journey is still one
    trace in the events, the jobs, the logs and the control panel (`new_trace` starts it).
    """
    global _configured, _recording  # noqa: PLW0603 - process-wide provider, set once
    if _configured:
        return
    _configured = True
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    if exporter != "otlp" or not (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the service's
    # own name is only the default.
    if "service.name=" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        os.environ.setdefault("OTEL_SERVICE_NAME", service)
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _recording = True


def new_trace() -> context.Context:
    """The context to start a journey's first span in (erp-poller, per document).

    Spans recorded: an empty context (the span gets a new trace id). Otherwise the API's span
    would have no trace at all, so the context carries a new trace id and span id of its own,
    marked sampled, so that a service further on that does export records the journey.
    """
    if _recording:
        return context.Context()
    span = trace.SpanContext(
        trace_id=_ids.generate_trace_id(),
        span_id=_ids.generate_span_id(),
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span), context.Context())


# Looked up once: asking the provider anew for every span was 2-3 % of a busy service's
# CPU. Until `configure_tracing` installs a provider (only when spans are exported) this is
# the API's proxy, which turns into the provider's tracer then (and records nothing before).
_TRACER = trace.get_tracer("nordflow")


def tracer() -> trace.Tracer:
    """The tracer for Nordflow's own spans."""
    return _TRACER


def extract(traceparent: str | None, tracestate: str | None) -> context.Context:
    """The context a consumed record's headers carry (empty if none)."""
    carrier = {}
    if traceparent:
        carrier["traceparent"] = traceparent
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier)


def current() -> tuple[str | None, str | None]:
    """traceparent and tracestate of the active span, for outgoing events."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")
