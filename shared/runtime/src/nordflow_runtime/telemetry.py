"""OpenTelemetry set-up and W3C trace context carried in Kafka headers and outbox rows."""

from __future__ import annotations

import os

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_configured = False


def configure_tracing(service: str) -> None:
    """Install an SDK tracer provider; export by OTLP only when ``OTEL_*`` says where."""
    global _configured  # noqa: PLW0603 - process-wide provider, set once
    if _configured:
        return
    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the service's
    # own name is only the default.
    if "service.name=" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        os.environ.setdefault("OTEL_SERVICE_NAME", service)
    provider = TracerProvider(resource=Resource.create())
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    if exporter == "otlp" and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


# Looked up once: asking the provider anew for every span was 2-3 % of a busy service's
# CPU. Until `configure_tracing` installs the provider this is the API's proxy, which turns
# into the provider's tracer then (and does nothing before).
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
