"""nordflow-agent: pushes an on-premise ERP's exports from a folder to erp-poller, signed."""
