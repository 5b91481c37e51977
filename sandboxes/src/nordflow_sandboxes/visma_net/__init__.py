"""Visma.net ERP API sandbox: an in-memory test double of Visma.net's customer ledger API."""

from nordflow_sandboxes.visma_net.app import create_app
from nordflow_sandboxes.visma_net.state import CompanyIdInUseError, VismaNetState

__all__ = ["CompanyIdInUseError", "VismaNetState", "create_app"]
