"""Decode nothing more than needed and delegate: consumers, HTTP, the command line."""
