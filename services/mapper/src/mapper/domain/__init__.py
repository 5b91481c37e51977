"""mapper's pure rules: the shared reader, the invoice builder, validation, reference policies."""
