"""SMTP sandbox (aiosmtpd + HTTP inspection API); import its submodules, this imports nothing."""
