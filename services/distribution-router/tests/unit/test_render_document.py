"""render_document: each channel carries attachments its own way; routes name registered formats."""

from __future__ import annotations

import os
import signal
from io import BytesIO

from distribution_router.adapters.channels.base import Attachment
from distribution_router.adapters.channels.print_post import PrintOptions, print_options
from distribution_router.deps import renderer_processes
from distribution_router.domain import FORMATS, Route
from distribution_router.domain.documents import PaperOptions, Rendered
from distribution_router.service.ports import Partners
from distribution_router.service.routing import render, render_document
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_documents.registry import default_registry
from nordflow_documents.testing.files import CSV, text_pdf
from nordflow_documents.testing.invoices import make_invoice
from nordflow_documents.validation import shared_validator
from nordflow_runtime.testing import process_exited
from nordflow_schemas.events import Channel
from pypdf import PdfReader


def attachments() -> tuple[Attachment, ...]:
    return (
        Attachment("villkor.pdf", "application/pdf", text_pdf("Villkor")),
        Attachment("data.csv", "text/csv", CSV),
    )


def test_each_channel_carries_the_attachments_its_own_way() -> None:
    invoice = make_invoice()
    files = attachments()

    def render(channel: Channel, recipient: str, document_format: str = "pdf") -> Rendered:
        return render_document(
            Route(channel, recipient, document_format),
            invoice,
            renderers=default_registry(),
            validator=shared_validator(),
            attachments=files,
        )

    bank = render(Channel.B2C_BANK, "198503172384")
    mail = render(Channel.EMAIL, "ap@kund.example")
    paper = render(Channel.PAPER, "post: Göteborg")
    peppol = render(Channel.PEPPOL, "0007:5566778899", "peppol-bis-billing-3")

    assert PdfReader(BytesIO(bank.content)).attachments == {
        "villkor.pdf": [files[0].content],
        "data.csv": [CSV],
    }
    assert [a.handling for a in bank.attachments] == ["embedded", "embedded"]
    assert PdfReader(BytesIO(mail.content)).attachments == {}
    assert [a.handling for a in mail.attachments] == ["attached", "attached"]
    assert [(a.handling, a.pages) for a in paper.attachments] == [
        ("printed", 1),
        ("not_printed", None),
    ]
    assert len(PdfReader(BytesIO(paper.content)).pages) == 2
    assert b"AdditionalDocumentReference" in peppol.content
    assert [a.handling for a in peppol.attachments] == ["embedded", "embedded"]


def test_paper_options_pass_only_what_the_tenant_set() -> None:
    defaults = PrintOptions(postage="B", colour=False, duplex=True)
    assert print_options(PaperOptions().channel_options(), defaults) == defaults
    chosen = PaperOptions(postage="A", colour=True).channel_options()
    assert chosen == {"postage": "A", "colour": "true"}
    assert print_options(chosen, defaults) == PrintOptions(postage="A", colour=True, duplex=True)
    simplex = PaperOptions(duplex=False).channel_options()
    assert print_options(simplex, defaults) == PrintOptions(postage="B", colour=False, duplex=False)


def test_peppol_routes_name_a_format_the_default_registry_renders() -> None:
    assert isinstance(default_registry().get(FORMATS[Channel.PEPPOL]), PeppolBisRenderer)


async def test_a_renderer_process_renders_what_the_event_loop_would() -> None:
    """The invoice travels to a renderer process as its JSON and is read back there: the
    document, its rule check and its attachments are the same as rendered in place."""
    invoice = make_invoice()
    route = Route(Channel.PEPPOL, "0007:5566778899", "peppol-bis-billing-3")
    files = attachments()
    here = Partners(renderers=default_registry(), validator=shared_validator())
    processes = renderer_processes(1)
    assert processes is not None
    try:
        there = await render(
            Partners(renderers=here.renderers, validator=here.validator, processes=processes),
            route,
            invoice,
            files,
        )
    finally:
        await processes.aclose()
    assert there == await render(here, route, invoice, files)
    assert there.errors == ()
    assert b"AdditionalDocumentReference" in there.content


async def test_a_renderer_process_that_died_is_replaced_and_the_next_document_renders() -> None:
    """A renderer killed (out of memory, a crash in SaxonC) does not stop the service's
    rendering: a process pool executor whose worker died refused every later call."""
    invoice = make_invoice()
    route = Route(Channel.PEPPOL, "0007:5566778899", "peppol-bis-billing-3")
    processes = renderer_processes(1)
    assert processes is not None
    partners = Partners(
        renderers=default_registry(), validator=shared_validator(), processes=processes
    )
    try:
        first = await render(partners, route, invoice)
        renderer = await processes.call(os.getpid)
        os.kill(renderer, signal.SIGKILL)
        assert await process_exited(renderer)
        assert await render(partners, route, invoice) == first
        assert await processes.call(os.getpid) != renderer
    finally:
        await processes.aclose()
