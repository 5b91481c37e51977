"""Tests of the rendered documents: e-invoice formats, registry and validation."""
