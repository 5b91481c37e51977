"""The HTTP side: the tenant API (/api/v1) and the web pages."""
