"""A local sandbox of the Tripletex API v2 (Norway): session tokens, customers, projects,
products, orders and the invoices made from them."""

from nordflow_sandboxes.tripletex.app import create_app
from nordflow_sandboxes.tripletex.state import TripletexState

__all__ = ["TripletexState", "create_app"]
