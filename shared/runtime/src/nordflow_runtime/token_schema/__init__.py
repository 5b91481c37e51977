"""The `api_tokens` columns every tenant API shares (scope `api-tokens`)."""
