"""erp-poller's pure rules: connections and their credentials, documents and their versions,
the tenant's profile on every document, and the pushed formats (Sirvoy, Winner, on-premise
JSON and SIE 4i batches, customer registers)."""
