"""Spans are recorded only when they are exported; the trace context travels either way.

`configure_tracing` sets a process-wide provider once, so each case runs in a process of its
own (the script prints what it saw as JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

_SCRIPT = f"""
import json, logging, os
from types import SimpleNamespace
from opentelemetry import trace
from nordflow_runtime import telemetry
from nordflow_runtime.consumer import event_scope
from nordflow_runtime.logs import JsonFormatter

telemetry.configure_tracing("svc")
env = SimpleNamespace(
    topic="invoice.created", tenant_id="t1", key="inv-1", id="e1",
    traceparent={INCOMING!r}, tracestate=None,
)
out = {{}}
with event_scope(env):
    out["consumed"] = telemetry.current()[0]
    out["consumed_recording"] = trace.get_current_span().is_recording()
    record = logging.LogRecord("x", logging.INFO, "x.py", 1, "m", None, None)
    out["log"] = json.loads(JsonFormatter("svc").format(record))
new = []
for _ in range(2):
    with telemetry.tracer().start_as_current_span("publish", context=telemetry.new_trace()):
        new.append(telemetry.current()[0])
out["new"] = new
print(json.dumps(out), flush=True)
os._exit(0)  # no exporter's shutdown (it would try to reach the collector)
"""


def _run(**env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _parts(traceparent: str) -> list[str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00"
    assert len(trace_id) == 32
    assert trace_id.strip("0")
    assert len(span_id) == 16
    assert span_id.strip("0")
    return [trace_id, span_id, flags]


def test_without_an_exporter_no_span_is_recorded_and_the_context_travels_on() -> None:
    for env in ({"OTEL_TRACES_EXPORTER": "none"}, {}):  # `otlp` without an endpoint: the same
        seen = _run(**env)
        assert seen["consumed"] == INCOMING  # the consumed event's context, carried on
        assert seen["consumed_recording"] is False
        assert seen["log"]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
        # A journey's first span has a trace of its own, sampled for a service that exports.
        first, second = (_parts(t) for t in seen["new"])
        assert first[2] == second[2] == "01"
        assert first[0] != second[0]


def test_with_an_exporter_spans_are_recorded_as_children_and_journeys_start_new_traces() -> None:
    seen = _run(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert seen["consumed_recording"] is True
    trace_id, span_id, flags = _parts(seen["consumed"])
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span_id != "b7ad6b7169203331"  # the consumer's own span, a child of the incoming
    assert flags == "01"
    assert seen["log"]["span_id"] == span_id
    first, second = (_parts(t) for t in seen["new"])
    assert first[0] != second[0]
