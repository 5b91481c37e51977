"""The erp-poller service."""
