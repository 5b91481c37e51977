"""Production clients for partner systems (ERPs), shared by the services that talk to them."""
