"""The provider file formats behind one registry: an agreement names its format by id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .base import BatchLine, DueDateChange, FileFormat, FileHeader, OutFile

__all__ = [
    "BatchLine",
    "DueDateChange",
    "FileFormat",
    "FileHeader",
    "FormatRegistry",
    "OutFile",
    "UnknownFormatError",
    "default_formats",
]


class UnknownFormatError(LookupError):
    """No format is registered under an id."""


class FormatRegistry:
    """File formats by id; each id is registered once."""

    def __init__(self, formats: Iterable[FileFormat] = ()) -> None:
        self._formats: dict[str, FileFormat] = {}
        for file_format in formats:
            self.register(file_format)

    def register(self, file_format: FileFormat) -> None:
        """Add a format; a second one under the same id is a programming error."""
        if file_format.format_id in self._formats:
            raise ValueError(f"a format {file_format.format_id!r} is already registered")
        self._formats[file_format.format_id] = file_format

    def get(self, format_id: str) -> FileFormat:
        """The format of ``format_id``."""
        try:
            return self._formats[format_id]
        except KeyError:
            known = ", ".join(self._formats)
            raise UnknownFormatError(f"no file format {format_id!r} (known: {known})") from None

    @property
    def ids(self) -> frozenset[str]:
        """Every registered id."""
        return frozenset(self._formats)

    def __iter__(self) -> Iterator[str]:
        return iter(self._formats)


def default_formats() -> FormatRegistry:
    """The fixed-width SG Finans style, CUSIN-style XML and zipped PEPPOL BIS 3 copies."""
    from nordflow_documents.peppol import PeppolBisRenderer

    from .cusin import CusinFormat
    from .fixed_width import FixedWidthFormat
    from .peppol_zip import PeppolZipFormat

    return FormatRegistry([FixedWidthFormat(), CusinFormat(), PeppolZipFormat(PeppolBisRenderer())])
