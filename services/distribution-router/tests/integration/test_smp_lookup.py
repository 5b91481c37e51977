"""PEPPOL capability lookup against the SMP sandbox over HTTP."""

from collections.abc import Iterator

import httpx
import pytest
from distribution_router.adapters.smp import (
    BIS3_CREDIT_NOTE,
    BIS3_INVOICE,
    ParticipantLookup,
    participant_id,
    sml_domain,
)
from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.smp import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smp() -> Iterator[str]:
    server = BackgroundServer(create_app())
    url = server.start()
    yield url
    server.stop()


def register(smp: str, scheme: str, value: str, *docs: str) -> None:
    response = httpx.put(
        f"{smp}/admin/participants/{participant_id(scheme, value)}",
        json={"document_types": list(docs)},
    )
    response.raise_for_status()


async def test_registered_participant_accepts_its_document_types(smp):
    register(smp, "0007", "5567321707", BIS3_INVOICE)
    lookup = ParticipantLookup(smp_url=smp)
    try:
        assert await lookup.accepts("0007", "5567321707", BIS3_INVOICE)
        assert not await lookup.accepts("0007", "5567321707", BIS3_CREDIT_NOTE)
        assert await lookup.document_types("0007", "9999999999") == frozenset()
    finally:
        await lookup.aclose()


async def test_answers_are_cached_until_the_ttl_runs_out(smp):
    now = [0.0]
    lookup = ParticipantLookup(smp_url=smp, ttl=60, clock=lambda: now[0])
    try:
        assert not await lookup.accepts("0192", "974760673", BIS3_INVOICE)
        register(smp, "0192", "974760673", BIS3_INVOICE, BIS3_CREDIT_NOTE)
        assert not await lookup.accepts("0192", "974760673", BIS3_INVOICE)  # cached "no"
        now[0] = 61.0
        assert await lookup.accepts("0192", "974760673", BIS3_INVOICE)  # a cheaper channel
    finally:
        await lookup.aclose()


def test_identifiers_are_case_insensitive_in_the_sml_name():
    a = sml_domain("0088", "7300010000001", "sml.example")
    assert a == sml_domain("0088", "7300010000001 ", "sml.example")
    assert a.endswith(".iso6523-actorid-upis.sml.example")
    label = a.split(".")[0]
    assert len(label) == 52  # base32 of 32 bytes, no padding
    assert label == label.lower()


def test_the_sandbox_refuses_malformed_registrations(smp):
    bad = httpx.put(f"{smp}/admin/participants/0007:123", json={"document_types": ["x"]})
    assert bad.status_code == 400
    assert "iso6523-actorid-upis::" in bad.json()["error"]
