"""Registry of e-invoice renderers by format id: adding a format is adding one module."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from nordflow_schemas.invoice import Invoice


@dataclass(frozen=True)
class Attachment:
    """A supporting document sent along with an invoice (EN 16931 BG-24)."""

    filename: str
    mime_type: str
    content: bytes = field(repr=False)
    description: str | None = None


@runtime_checkable
class DocumentRenderer(Protocol):
    """Turns a canonical invoice into the bytes of one document format."""

    @property
    def format_id(self) -> str:
        """The id routes name the format by, e.g. ``peppol-bis-billing-3``."""
        ...

    @property
    def media_type(self) -> str:
        """The MIME type of what :meth:`render` returns."""
        ...

    def render(self, invoice: Invoice, attachments: Sequence[Attachment] = ()) -> bytes:
        """Render ``invoice`` with ``attachments`` embedded where the format allows it."""
        ...


class UnknownFormatError(LookupError):
    """No renderer is registered for the requested format id."""

    def __init__(self, format_id: str, known: Iterable[str]) -> None:
        self.format_id = format_id
        super().__init__(f"no renderer for format {format_id!r} (known: {', '.join(known)})")


class RendererRegistry:
    """Renderers keyed by format id; each id is registered once."""

    def __init__(self, renderers: Iterable[DocumentRenderer] = ()) -> None:
        self._renderers: dict[str, DocumentRenderer] = {}
        for renderer in renderers:
            self.register(renderer)

    def register(self, renderer: DocumentRenderer) -> None:
        """Add ``renderer``; a second renderer for the same format id is a programming error."""
        if renderer.format_id in self._renderers:
            raise ValueError(f"a renderer for {renderer.format_id!r} is already registered")
        self._renderers[renderer.format_id] = renderer

    def get(self, format_id: str) -> DocumentRenderer:
        """The renderer for ``format_id``; raises :class:`UnknownFormatError` if there is none."""
        try:
            return self._renderers[format_id]
        except KeyError:
            raise UnknownFormatError(format_id, self._renderers) from None

    def render(
        self, format_id: str, invoice: Invoice, attachments: Sequence[Attachment] = ()
    ) -> bytes:
        """Render ``invoice`` in ``format_id``."""
        return self.get(format_id).render(invoice, attachments)

    def __contains__(self, format_id: object) -> bool:
        return format_id in self._renderers

    def __iter__(self) -> Iterator[str]:
        return iter(self._renderers)

    def __len__(self) -> int:
        return len(self._renderers)


def default_registry() -> RendererRegistry:
    """A registry with every e-invoice format this package renders."""
    # Imported here: the renderer modules import Attachment from this module.
    from .peppol import PeppolBisRenderer

    return RendererRegistry([PeppolBisRenderer()])
