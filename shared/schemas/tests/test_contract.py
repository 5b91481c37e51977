"""The event contract: envelope round trip, decode errors, and generated files up to date."""

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from nordflow_schemas import export
from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import DecodeError, decode, encode, envelope
from nordflow_schemas.events import (
    CHUNK_BYTES,
    ChannelSuggestionDecided,
    DeliveryHoldUpdated,
    ErpDocumentChunked,
    Event,
    InvoiceDistributed,
    InvoiceTransferred,
    PaymentReceived,
)
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.topics import BY_CE_TYPE, ERP_DOCUMENT_CHUNKED, TOPICS, consumer_group

ROOT = Path(__file__).resolve().parents[3]


def transferred(amount: str = "1250.50") -> InvoiceTransferred:
    return InvoiceTransferred(
        tenant_id="acme",
        invoice_id=canonical_invoice_id("acme", "fortnox", "c1", "101"),
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c1", document_id="101"),
        document_type=DocumentType.INVOICE,
        number="101",
        provider="nordea-finans",
        agreement_kind="factoring",
        transfer_id="tr_1",
        amount=Decimal(amount),
        currency="SEK",
        transferred_at=dt.datetime(2026, 11, 23, 15, 45, tzinfo=dt.UTC),
    )


def test_round_trip_keeps_money_exact_and_attributes():
    env = envelope(transferred(), source="/factoring-gateway", subject="101")
    key, value, headers = encode(env)
    assert key == env.body.invoice_id.encode()
    assert b'"amount":"1250.50"' in value  # money travels as a decimal string, never a float
    names = dict(headers)
    assert names["ce_type"] == b"nordflow.invoice.transferred.v1"
    assert names["ce_tenantid"] == b"acme"
    back = decode(value, headers)
    assert back.body == env.body
    assert back.id == env.id
    assert back.body.amount == Decimal("1250.50")


def test_unknown_fields_are_ignored_by_consumers():
    env = envelope(transferred(), source="/x")
    _, value, headers = encode(env)
    richer = value[:-1] + b',"added_later":{"x":1}}'
    assert decode(richer, headers).body == env.body


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda v, h: (v, [x for x in h if x[0] != "ce_id"]), "missing CloudEvents headers: ce_id"),
        (
            lambda v, h: (v, [(k, b"nordflow.nope.v9" if k == "ce_type" else x) for k, x in h]),
            "unknown ce_type",
        ),
        (lambda v, h: (b"{not json", h), "body invalid"),
        (lambda v, h: (v.replace(b'"SEK"', b'"sek"'), h), "currency"),
        (
            lambda v, h: (v, [(k, b"other" if k == "ce_tenantid" else x) for k, x in h]),
            "does not match",
        ),
    ],
)
def test_decode_names_what_is_wrong(mutate, message):
    _, value, headers = encode(envelope(transferred(), source="/x"))
    bad_value, bad_headers = mutate(value, headers)
    with pytest.raises(DecodeError, match=message):
        decode(bad_value, bad_headers)


@pytest.mark.parametrize("amount", ["Infinity", "-Infinity", "NaN", "sNaN"])
def test_money_that_is_not_a_finite_number_is_refused_naming_the_field(amount):
    with pytest.raises(ValueError, match="amount\n  Input should be a finite number"):
        transferred(amount)
    _, value, headers = encode(envelope(transferred(), source="/x"))
    with pytest.raises(DecodeError, match="amount: Input should be a finite number"):
        decode(value.replace(b'"1250.50"', f'"{amount}"'.encode()), headers)


def test_every_topic_has_a_versioned_type_and_one_owner_module():
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    for spec in TOPICS:
        assert spec.name.count(".") >= 1
        if spec.event is not None:
            assert BY_CE_TYPE[spec.ce_type] is spec
    assert "payment_id" in PaymentReceived.model_fields


def test_generated_files_match_the_code():
    assert export.stale() == [], "run `make generate` and commit shared/schemas/generated"


def test_readme_topic_map_matches_the_code():
    readme = (ROOT / "README.md").read_text()
    assert export.topic_map() in readme, "README topic map is stale: run `make generate`"


def test_asyncapi_lists_every_channel_with_resolvable_refs():
    doc = export.asyncapi()
    assert doc["asyncapi"].startswith("3.")
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in TOPICS}
    text = str(doc)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref


# Events added since every text field had to be bounded: each string has a length limit,
# an enumeration, or a format of its own (money, instants).
BOUNDED_EVENTS = (DeliveryHoldUpdated, ChannelSuggestionDecided, ErpDocumentChunked)


def _unbounded_strings(node: Any, defs: dict[str, Any], path: str) -> list[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _unbounded_strings(defs[name], defs, f"{path}<{name}>")
        found: list[str] = []
        if node.get("type") == "string" and not (
            "maxLength" in node or "enum" in node or "const" in node or "format" in node
        ):
            found.append(path)
        for key, value in node.items():
            if key != "$defs":
                found += _unbounded_strings(value, defs, f"{path}.{key}")
        return found
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _unbounded_strings(v, defs, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("event", BOUNDED_EVENTS, ids=lambda e: e.__name__)
def test_new_events_bound_every_text_field(event: type[Event]) -> None:
    schema = event.model_json_schema()
    assert _unbounded_strings(schema, schema.get("$defs", {}), event.__name__) == []


def test_a_distributed_invoices_cost_comes_with_its_currency() -> None:
    body = {
        "tenant_id": "acme",
        "invoice_id": "inv_1",
        "number": "101",
        "channel": "paper",
        "document_format": "pdf",
        "recipient": "post: Malmö",
        "distributed_at": "2026-11-23T15:45:00+00:00",
    }
    assert InvoiceDistributed.model_validate(body).cost is None  # older producers
    priced = InvoiceDistributed.model_validate(body | {"cost": "9.50", "cost_currency": "SEK"})
    assert priced.cost == Decimal("9.50")
    assert b'"cost":"9.50"' in encode(envelope(priced, source="/x"))[1]
    with pytest.raises(ValueError, match="cost and cost_currency go together"):
        InvoiceDistributed.model_validate(body | {"cost": "9.50"})


def chunk(**changes: Any) -> dict[str, Any]:
    return {
        "tenant_id": "acme",
        "sha256": "a" * 64,
        "size": 10,
        "index": 0,
        "count": 1,
        "data": "aGVsbG8gd29ybGQ=",
    } | changes


def test_a_chunk_is_keyed_by_tenant_and_content_and_bounded() -> None:
    body = ErpDocumentChunked.model_validate(chunk())
    assert body.record_key == f"acme:{'a' * 64}"
    assert envelope(body, source="/erp-poller").topic == ERP_DOCUMENT_CHUNKED.name
    for bad in (
        {"index": 1, "count": 1},  # past its count
        {"sha256": "A" * 64},
        {"data": "not base64!"},
        {"data": "QUJD" * (CHUNK_BYTES // 3 + 2)},  # more than one chunk's bytes
    ):
        with pytest.raises(ValueError, match="validation error"):
            ErpDocumentChunked.model_validate(chunk(**bad))


def test_a_topic_read_in_a_group_of_its_own() -> None:
    assert consumer_group("mapper", "erp.document.chunked") == "mapper.erp.document.chunked"
    assert consumer_group("mapper", "erp.document.fetched") == "mapper"
    assert consumer_group("mapper", "some.test.topic") == "mapper"
