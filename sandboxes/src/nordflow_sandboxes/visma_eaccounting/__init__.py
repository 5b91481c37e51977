"""Visma eAccounting API v2 sandbox: an in-memory test double of the API and its token endpoint."""

from nordflow_sandboxes.kit.oauth import ClientSecretMismatchError
from nordflow_sandboxes.visma_eaccounting.app import create_app
from nordflow_sandboxes.visma_eaccounting.state import VismaEAccountingState

__all__ = ["ClientSecretMismatchError", "VismaEAccountingState", "create_app"]
