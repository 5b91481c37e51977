"""Generate the JSON Schemas, the AsyncAPI 3 document and the README topic map from code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from .events import Event
from .topics import TOPICS, TopicSpec

GENERATED = Path(__file__).resolve().parents[2] / "generated"

CE_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 Kafka binary-mode attributes, plus W3C trace context",
    "required": [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_tenantid",
        "content-type",
    ],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique event id; consumers dedupe on it"},
        "ce_source": {"type": "string", "description": "Producing service, e.g. /mapper"},
        "ce_type": {"type": "string", "description": "nordflow.<topic>.v<version>"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "Human-facing document number"},
        "ce_tenantid": {"type": "string", "description": "Tenant (CloudEvents extension)"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context"},
        "tracestate": {"type": "string"},
    },
}


def schema_name(spec: TopicSpec) -> str:
    """File stem of a topic's JSON Schema, carrying the event version."""
    return f"{spec.name}.v{spec.version}"


def json_schema(event: type[Event]) -> dict[str, Any]:
    """The wire (serialization) schema of an event body."""
    schema = event.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document describing every channel, message and operation."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for spec in TOPICS:
        channel_id = spec.name.replace(".", "_")
        if spec.event is None:
            message: dict[str, Any] = {
                "name": "DeadLetter",
                "summary": spec.description,
                "contentType": "application/octet-stream",
                "headers": {
                    "type": "object",
                    "properties": {
                        "x-nordflow-dlq-reason": {"type": "string"},
                        "x-nordflow-dlq-consumer": {"type": "string"},
                        "x-nordflow-dlq-topic": {"type": "string"},
                        "x-nordflow-dlq-partition": {"type": "string"},
                        "x-nordflow-dlq-offset": {"type": "string"},
                    },
                },
                "payload": {"description": "The original record value, unchanged"},
            }
        else:
            body = json_schema(spec.event)
            defs = body.pop("$defs", {})
            body.pop("$schema", None)
            for name, definition in defs.items():
                schemas[name] = definition
            schemas[spec.event.__name__] = body
            message = {
                "name": spec.event.__name__,
                "title": spec.ce_type,
                "summary": spec.description,
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                "payload": {"$ref": f"#/components/schemas/{spec.event.__name__}"},
                "bindings": {"kafka": {"key": {"type": "string", "description": spec.key}}},
            }
        messages[message["name"]] = message
        channels[channel_id] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {message["name"]: {"$ref": f"#/components/messages/{message['name']}"}},
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact"] if spec.compacted else ["delete"]
                    },
                }
            },
        }
        for producer in spec.producers:
            operations[f"{producer}_sends_{channel_id}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"{producer} publishes {spec.name}",
            }
        for consumer in spec.consumers:
            operations[f"{consumer}_receives_{channel_id}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"{consumer} consumes {spec.name}",
            }
    schemas["CloudEventHeaders"] = CE_HEADERS_SCHEMA
    # Pydantic writes local refs as #/$defs/X; inside AsyncAPI they live under components.
    text = json.dumps(
        {
            "asyncapi": "3.0.0",
            "info": {
                "title": "Nordflow events",
                "version": "1.0.0",
                "description": "Every Kafka topic of Nordflow. Records are CloudEvents 1.0 in "
                "binary mode; the key is the canonical invoice id unless the channel's Kafka "
                "binding names another (tenant.updated: the tenant; connection.updated: "
                "tenant:connection; job.*: service:job id; operator.*: service:target); "
                "money is a decimal string.",
                "license": {"name": "Apache-2.0"},
            },
            "defaultContentType": "application/json",
            "channels": channels,
            "operations": operations,
            "components": {"messages": messages, "schemas": schemas},
        }
    ).replace('"#/$defs/', '"#/components/schemas/')
    result: dict[str, Any] = json.loads(text)
    return result


def topic_map() -> str:
    """The README's topic map as a Markdown table: producer → topic → consumers."""
    rows = ["| producer | topic | consumers | what it carries |", "|---|---|---|---|"]
    for spec in TOPICS:
        producers = ", ".join(spec.producers) if spec.producers else "(none yet)"
        rows.append(
            f"| {producers} | `{spec.name}` | {', '.join(spec.consumers)} | {spec.description} |"
        )
    return "\n".join(rows) + "\n"


README = Path(__file__).resolve().parents[4] / "README.md"
START, END = "<!-- topic-map:start -->\n", "<!-- topic-map:end -->"


def update_readme(readme: Path = README) -> bool:
    """Replace the topic map between the README's markers; True if it changed."""
    text = readme.read_text()
    head, found, rest = text.partition(START)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"{readme} has no {START.strip()} ... {END} markers")
    new = head + START + topic_map() + END + tail
    if new != text:
        readme.write_text(new)
    return new != text


def render() -> dict[str, str]:
    """Every generated file, relative path → content."""
    files = {
        f"jsonschema/{schema_name(spec)}.json": json.dumps(
            json_schema(spec.event), indent=2, sort_keys=True
        )
        + "\n"
        for spec in TOPICS
        if spec.event is not None
    }
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True)
    files["topic-map.md"] = topic_map()
    return files


def stale(directory: Path = GENERATED) -> list[str]:
    """Generated files that are missing, differ from the code, or are no longer generated."""
    expected = render()
    out = [name for name, text in expected.items() if _read(directory / name) != text]
    if directory.exists():
        out += [
            str(path.relative_to(directory))
            for path in directory.rglob("*")
            if path.is_file() and str(path.relative_to(directory)) not in expected
        ]
    return sorted(out)


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def write(directory: Path = GENERATED) -> list[str]:
    """Write every generated file; returns what changed."""
    changed = stale(directory)
    for name, text in render().items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for name in changed:
        if name not in render():
            (directory / name).unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m nordflow_schemas.export [--check]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated files are stale")
    args = parser.parse_args(argv)
    if args.check:
        out = stale()
        for name in out:
            print(f"stale: shared/schemas/generated/{name}", file=sys.stderr)  # noqa: T201
        if out:
            print("run `make generate` and commit the result", file=sys.stderr)  # noqa: T201
        return 1 if out else 0
    for name in write():
        print(f"wrote shared/schemas/generated/{name}")  # noqa: T201
    if update_readme():
        print("updated the README topic map")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
