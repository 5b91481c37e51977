"""Nordic payment references: Swedish OCR, Norwegian KID and factors' KID layouts."""

from .kid import KidAlgorithm, Mod11DashError, check_kid, make_kid
from .layouts import LAYOUTS, Field, KidLayout, check_layout_kid, parse_kid, render_kid
from .ocr import OcrControl, check_ocr, make_ocr
from .policy import ReferenceKind, ReferencePolicy, generate, validate

__all__ = [
    "LAYOUTS",
    "Field",
    "KidAlgorithm",
    "KidLayout",
    "Mod11DashError",
    "OcrControl",
    "ReferenceKind",
    "ReferencePolicy",
    "check_kid",
    "check_layout_kid",
    "check_ocr",
    "generate",
    "make_kid",
    "make_ocr",
    "parse_kid",
    "render_kid",
    "validate",
]
