"""Just enough PDF reading for a print house: the magic, the end marker, and the page count."""

from __future__ import annotations

import re
import zlib

MAX_PDF_BYTES = 10 * 1024 * 1024
_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])")
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_MAX_INFLATED = 8 * 1024 * 1024


def is_pdf(data: bytes) -> bool:
    """Whether the bytes start with the PDF magic `%PDF-`."""
    return data.startswith(b"%PDF-")


def is_complete(data: bytes) -> bool:
    """Whether the file ends with `%%EOF` (a truncated upload does not)."""
    return b"%%EOF" in data[-2048:]


def is_encrypted(data: bytes) -> bool:
    """Whether the PDF is encrypted (a print house cannot render it)."""
    return b"/Encrypt" in data


def count_pages(data: bytes) -> int:
    """Page objects in the file, including those inside compressed object streams."""
    count = len(_PAGE.findall(data))
    for match in _STREAM.finditer(data):
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(match.group(1), _MAX_INFLATED)
        except zlib.error:
            continue  # not a Flate stream (an image, say): it holds no page objects
        count += len(_PAGE.findall(inflated))
    return count
