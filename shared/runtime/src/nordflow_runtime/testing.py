"""Test harness: a service's consumer handlers and jobs on a throwaway schema, without Kafka.

``ServiceHarness.start(create_app(settings), database_url)`` migrates a fresh schema on the
given PostgreSQL server and builds the service's dependencies as ``run`` would (or takes
``deps`` you pass, with fakes in them). ``deliver(*envelopes)`` encodes each event into a
Kafka record and runs it through the same ``BatchProcessor`` the consumer uses — inbox,
handler savepoint, dead-lettering, outbox — in one transaction, and returns what the
batch emitted. ``run_jobs()`` runs the durable jobs that are due through ``JobWorker``.
``http()`` is an HTTP client on the service's routers. Nothing here needs a broker.

``FakeTenantProfiles`` stands in for the tenants' profiles in fast use-case tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import asyncpg
import httpx
from aiokafka import ConsumerRecord, TopicPartition
from cryptography.fernet import Fernet
from fastapi import FastAPI
from nordflow_schemas.envelope import Envelope, decode, encode, envelope
from nordflow_schemas.events import Event
from nordflow_schemas.tenant import TenantProfile
from nordflow_schemas.testing import tenant_updated

from . import db
from .app import Resources, ServiceApp, close_deps
from .consumer import EventConsumer
from .jobs import JobWorker

D = TypeVar("D")

PERSONAL_DATA_KEY = Fernet.generate_key().decode()
"""The ``PERSONAL_DATA_KEY`` of a test session: the services' ``app_for`` share it, so what
the mapper seals the others open."""


@dataclass(frozen=True)
class DeadLetter:
    """A record the batch sent to ``event.dead_lettered``, with the reason."""

    event_id: str
    reason: str
    origin_topic: str


@dataclass
class Emitted:
    """What one ``deliver`` or ``run_jobs`` call wrote to the outbox."""

    events: list[Envelope[Event]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def of(self, body_type: type[Event]) -> list[Any]:
        """The bodies of one event type, in the order they were emitted."""
        return [env.body for env in self.events if isinstance(env.body, body_type)]


class ServiceHarness(Generic[D]):
    """One service's handlers and jobs on its own throwaway schema."""

    def __init__(self, app: ServiceApp[D], pool: asyncpg.Pool, schema: str, deps: D) -> None:
        self.app = app
        self.pool = pool
        self.schema = schema
        self.deps = deps
        self._offset = 0
        self._seen_seq = 0

    @classmethod
    async def start(
        cls, app: ServiceApp[D], database_url: str, *, deps: D | None = None, pool_size: int = 4
    ) -> ServiceHarness[D]:
        """Migrate a fresh schema ``<service>_t<random>`` and build the dependencies."""
        schema = f"{app.schema}_t{secrets.token_hex(4)}"
        pool = await db.create_pool(database_url, schema, min_size=1, max_size=pool_size)
        await db.migrate(pool, schema, app.migrations())
        if deps is None:
            deps = await app.build_deps(Resources(app.name, app.settings, pool, lambda: None))
        return cls(app, pool, schema, deps)

    async def close(self) -> None:
        """Close the dependencies, drop the schema and the pool."""
        await close_deps(self.deps)
        async with self.pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        await self.pool.close()

    # -- consuming --------------------------------------------------------------------------
    async def deliver(self, *envelopes: Envelope[Any]) -> Emitted:
        """Run the events through the consumer's batch processing, as one batch."""
        return await self.deliver_records([(env.topic, *encode(env)) for env in envelopes])

    async def deliver_records(
        self,
        records: Sequence[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]],
        *,
        timestamp_ms: int = 0,
    ) -> Emitted:
        """Raw records ``(topic, key, value, headers)`` as one batch (for poison records and
        raw topics), each with the Kafka timestamp ``timestamp_ms``."""
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for topic, key, value, headers in records:
            self._offset += 1
            record = ConsumerRecord(
                topic=topic,
                partition=0,
                offset=self._offset,
                timestamp=timestamp_ms,
                timestamp_type=0,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=len(key or b""),
                serialized_value_size=len(value or b""),
                headers=tuple(headers),
            )
            batch.setdefault(TopicPartition(topic, 0), []).append(record)
        consumer = EventConsumer(
            service=self.app.name,
            pool=self.pool,
            consumer=_NoBroker(),
            handlers=self.app.handlers,
            batch_handlers=self.app.batch_handlers,
            raw_handlers=self.app.raw_handlers,
            deps=self.deps,
            retry_initial=0.01,
            retry_max=0.02,
        )
        await consumer.handle(batch)
        return await self._new_outbox_rows()

    async def publish(self, body: Event, *, subject: str | None = None) -> Emitted:
        """Wrap a body in an envelope (as its producer would) and deliver it."""
        return await self.deliver(envelope(body, source="/test", subject=subject))

    async def tenant(self, tenant_id: str, profile: TenantProfile, revision: int = 1) -> None:
        """Deliver a ``tenant.updated`` for the tenant (the service's copy of its profile)."""
        await self.publish(tenant_updated(tenant_id, profile, revision))

    # -- jobs -------------------------------------------------------------------------------
    async def run_jobs(
        self, kinds: Iterable[str] | None = None, *, include_future: bool = False
    ) -> Emitted:
        """Run every due job of the kinds (default: all the service's) until none is due.

        ``include_future`` makes pending timers due first (the closing delay, a hold).
        """
        chosen = list(kinds) if kinds is not None else list(self.app.job_handlers)
        if include_future:
            await self.pool.execute(
                "UPDATE jobs SET due_at = now() WHERE state = 'pending' AND kind = ANY($1)",
                chosen,
            )
        for kind in chosen:
            handler, options = self.app.job_handlers[kind]
            options = {k: v for k, v in options.items() if k not in {"idle_seconds"}}
            worker = JobWorker(self.pool, self.app.name, kind, handler, deps=self.deps, **options)
            while await worker.run_one():
                pass
        return await self._new_outbox_rows()

    async def jobs(self, kind: str | None = None) -> list[asyncpg.Record]:
        """The job rows (state, attempts, last_error, result), oldest first."""
        return list(
            await self.pool.fetch(
                "SELECT * FROM jobs WHERE $1::text IS NULL OR kind = $1 ORDER BY id", kind
            )
        )

    # -- HTTP -------------------------------------------------------------------------------
    def http(self, *, token: str | None = None) -> httpx.AsyncClient:
        """A client on the service's HTTP app (its routers behind the same edge as in
        production: body limits, the 422 shape), with the pool and dependencies attached."""
        api = self.app.http_app()
        api.state.pool = self.pool
        api.state.deps = self.deps
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://service", headers=headers
        )

    # -- what was emitted -------------------------------------------------------------------
    async def emitted(self) -> Emitted:
        """Everything the service has written to its outbox so far."""
        return _emitted(await self.pool.fetch("SELECT * FROM outbox ORDER BY seq"))

    async def _new_outbox_rows(self) -> Emitted:
        rows = await self.pool.fetch(
            "SELECT * FROM outbox WHERE seq > $1 ORDER BY seq", self._seen_seq
        )
        if rows:
            self._seen_seq = rows[-1]["seq"]
        return _emitted(rows)


def _emitted(rows: Iterable[asyncpg.Record]) -> Emitted:
    out = Emitted()
    for row in rows:
        headers = [(k, base64.b64decode(v)) for k, v in json.loads(row["headers"])]
        if row["topic"] == "event.dead_lettered":
            named = {k: v.decode() for k, v in headers}
            out.dead_letters.append(
                DeadLetter(
                    event_id=row["event_id"],
                    reason=named.get("x-nordflow-dlq-reason", ""),
                    origin_topic=named.get("x-nordflow-dlq-topic", ""),
                )
            )
        else:
            out.events.append(decode(row["value"], headers))
    return out


class _NoBroker:
    """Stands in for the Kafka consumer: the harness has no offsets to commit."""

    async def commit(self, offsets: object) -> None:
        """Nothing to commit."""

    def assignment(self) -> set[TopicPartition]:
        """No partitions."""
        return set()


class FakeTenantProfiles:
    """Tenants' profiles in a dict, for fast use-case tests (the ``TenantProfiles`` protocol)."""

    def __init__(self, profiles: dict[str, TenantProfile] | None = None) -> None:
        self.profiles = dict(profiles or {})

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's profile, or None."""
        return self.profiles.get(tenant_id)

    async def of_tenants(self, tenant_ids: Sequence[str]) -> dict[str, TenantProfile]:
        """The profiles of those of the tenants that have one."""
        return {t: self.profiles[t] for t in tenant_ids if t in self.profiles}


# -- probing an API for 5xx -------------------------------------------------------------------
NASTY_TEXT = (
    "",
    " ",
    "\x00",
    "a\x1b[31mb",
    "x\u202efdp.exe",
    "../../etc/passwd",
    "%00",
    "x" * 5000,
    "9" * 40,
    "-1",
    "1e309",
    "null",
    "\U0001f642",
)
NASTY_NUMBERS = (0, -1, 2**63, 2**64, 10**40, 1.5, "abc", None, True)
NASTY_DATES = ("0001-01-01", "9999-12-31", "2025-02-30", "99999-01-01")


def _nasty_values(schema: dict[str, Any]) -> list[Any]:
    kind = schema.get("type")
    if kind in {"integer", "number"}:
        return list(NASTY_NUMBERS)
    if schema.get("format") in {"date", "date-time"}:
        return list(NASTY_DATES)
    if kind == "array":
        return [[], ["x"] * 2000, list(NASTY_TEXT[:4]), "x"]
    if kind == "object":
        return [{}, [], "x"]
    return [*NASTY_TEXT, 2**64, None, {"a": 1}]


async def probe_for_server_errors(
    http: httpx.AsyncClient, app: FastAPI, *, headers: dict[str, str], prefix: str = "/api/"
) -> list[str]:
    """Send every route under ``prefix`` bad values, one parameter or body field at a time
    (huge and negative numbers, control characters, overlong text, impossible dates, wrong
    types), and return each request that answered 5xx or raised: every bad input must be a
    4xx that names the field. A schemathesis-style check of the service's own OpenAPI."""
    spec = app.openapi()
    problems: list[str] = []

    async def send(method: str, path: str, **options: Any) -> None:
        try:
            answer = await http.request(method, path, headers=headers, **options)
        except Exception as exc:  # an exception escaping the app is the 500 we look for
            problems.append(f"{method} {path} {options}"[:300] + f": raised {type(exc).__name__}")
            return
        if answer.status_code >= 500:
            problems.append(f"{method} {path} {options}"[:300] + f": {answer.status_code}")

    for template, operations in spec.get("paths", {}).items():
        if not template.startswith(prefix):
            continue
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            path_params = [p for p in params if p["in"] == "path"]
            query_params = [p for p in params if p["in"] == "query"]
            good = {p["name"]: "1" for p in path_params}

            def path_of(values: dict[str, Any], template: str = template) -> str:
                out = template
                for name, value in values.items():
                    out = out.replace("{" + name + "}", quote(str(value), safe=""))
                return out

            body_schema = _body_schema(spec, operation)
            body: Any = _minimal(spec, body_schema) if body_schema else None
            for p in path_params:
                for value in _nasty_values(p.get("schema", {})):
                    if value in ("", None) or "/" in str(value):
                        continue
                    await send(method.upper(), path_of({**good, p["name"]: value}), json=body)
            for p in query_params:
                for value in _nasty_values(p.get("schema", {})):
                    if value is None:
                        continue
                    await send(
                        method.upper(), path_of(good), params={p["name"]: str(value)}, json=body
                    )
            if body_schema is None:
                continue
            await send(method.upper(), path_of(good), content=b"{")
            wrong_shapes: tuple[Any, ...] = ([], "x", 1, None, {"deep": [[[[[[[[[[1]]]]]]]]]]})
            for raw in wrong_shapes:
                await send(method.upper(), path_of(good), json=raw)
            properties = _resolved(spec, body_schema).get("properties", {})
            for name, field_schema in properties.items():
                for value in _nasty_values(_resolved(spec, field_schema)):
                    await send(
                        method.upper(),
                        path_of(good),
                        json={**(body if isinstance(body, dict) else {}), name: value},
                    )
    return problems


def _resolved(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        found: Any = spec
        for part in ref.lstrip("#/").split("/"):
            found = found[part]
        return dict(found)
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            if options:
                return _resolved(spec, options[0])
    return schema


def _body_schema(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    return dict(media["schema"]) if media and "schema" in media else None


def _minimal(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A small body of the right shape (required fields only, plausible values)."""
    schema = _resolved(spec, schema)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        required = schema.get("required", [])
        return {
            name: _minimal(spec, sub)
            for name, sub in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "date":
        return "2025-03-10"
    if schema.get("format") == "date-time":
        return "2025-03-10T10:00:00+00:00"
    return "x" * max(1, int(schema.get("minLength", 1)))


def _exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    except FileNotFoundError:
        return True
    # A killed process's main thread is a zombie before its other threads have exited; its
    # parent can reap it (and its sockets close) only after the last one.
    return state in ("Z", "X") and threads <= 1


async def process_exited(pid: int, seconds: float = 10.0) -> bool:
    """Whether the process has exited, all its threads (a zombie not yet reaped counts),
    waiting up to ``seconds`` for it (Linux: reads ``/proc``)."""
    for _ in range(int(seconds / 0.05)):
        if _exited(pid):
            return True
        await asyncio.sleep(0.05)
    return _exited(pid)
