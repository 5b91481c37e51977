"""A PEPPOL access point sandbox: send UBL BIS 3.0 documents to receivers found in an SMP."""

from nordflow_sandboxes.peppol_ap.app import create_app
from nordflow_sandboxes.peppol_ap.state import PeppolApState, Transmission

__all__ = ["PeppolApState", "Transmission", "create_app"]
