"""Delivery adapters: one module per channel, all behind `base.Sender`."""
