"""Structured JSON logs carrying service, tenant, invoice and trace ids."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace

tenant_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant_id", default=None)
invoice_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("invoice_id", default=None)


@contextmanager
def log_context(tenant_id: str | None, invoice_id: str | None) -> Iterator[None]:
    """Attach tenant and invoice ids to every log line written inside the block."""
    t1 = tenant_var.set(tenant_id)
    t2 = invoice_var.set(invoice_id)
    try:
        yield
    finally:
        tenant_var.reset(t1)
        invoice_var.reset(t2)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra ``fields=`` dicts are merged in."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        out: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (tenant := tenant_var.get()) is not None:
            out["tenant_id"] = tenant
        if (invoice := invoice_var.get()) is not None:
            out["invoice_id"] = invoice
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
            out["span_id"] = format(span.span_id, "016x")
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route all logging to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
