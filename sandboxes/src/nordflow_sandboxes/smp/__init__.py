"""A PEPPOL SMP sandbox: who can receive which document types (the standard read path)."""

from .app import SmpState, create_app

__all__ = ["SmpState", "create_app"]
