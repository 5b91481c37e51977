"""A print-and-post sandbox: PDF letters printed, enveloped and posted (A or B post), priced."""

from nordflow_sandboxes.print_post.app import create_app
from nordflow_sandboxes.print_post.letters import Letter, PrintPostState

__all__ = ["Letter", "PrintPostState", "create_app"]
