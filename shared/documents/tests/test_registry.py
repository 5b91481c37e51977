"""The renderer registry: one renderer per format id, looked up by the route's format."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_documents.registry import (
    Attachment,
    DocumentRenderer,
    RendererRegistry,
    UnknownFormatError,
    default_registry,
)
from nordflow_documents.testing.invoices import make_invoice
from nordflow_schemas.invoice import Invoice


class TextRenderer:
    """A stand-in for another format module (Finvoice, Svefaktura …)."""

    format_id = "plain-text"
    media_type = "text/plain"

    def render(self, invoice: Invoice, attachments: Sequence[Attachment] = ()) -> bytes:
        names = ",".join(a.filename for a in attachments)
        return f"{invoice.number}|{names}".encode()


def test_default_registry_renders_peppol_bis_billing_3() -> None:
    registry = default_registry()

    renderer = registry.get("peppol-bis-billing-3")

    assert isinstance(renderer, PeppolBisRenderer)
    assert list(registry) == ["peppol-bis-billing-3"]
    assert renderer.media_type == "application/xml"


def test_a_new_format_is_one_registered_renderer() -> None:
    registry = RendererRegistry([PeppolBisRenderer()])
    registry.register(TextRenderer())
    attachment = Attachment("a.pdf", "application/pdf", b"%PDF", description="Bilaga")

    rendered = registry.render("plain-text", make_invoice(number="77"), [attachment])

    assert rendered == b"77|a.pdf"
    assert "plain-text" in registry
    assert len(registry) == 2


def test_unknown_format_names_the_known_ones() -> None:
    registry = RendererRegistry([TextRenderer()])

    with pytest.raises(UnknownFormatError, match=r"finvoice-3.*plain-text") as raised:
        registry.get("finvoice-3")

    assert raised.value.format_id == "finvoice-3"
    assert isinstance(raised.value, LookupError)


def test_a_format_is_registered_once() -> None:
    registry = RendererRegistry([TextRenderer()])

    with pytest.raises(ValueError, match="already registered"):
        registry.register(TextRenderer())


def test_renderers_satisfy_the_protocol() -> None:
    assert isinstance(PeppolBisRenderer(), DocumentRenderer)
    assert isinstance(TextRenderer(), DocumentRenderer)


def test_attachment_content_stays_out_of_its_repr() -> None:
    attachment = Attachment("big.pdf", "application/pdf", b"secret bytes" * 1000)

    assert "secret" not in repr(attachment)
