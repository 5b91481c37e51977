"""chaos fixtures: the session's whole stack, polled as quickly as the e2e tests poll it."""

import os

# Poll fast in tests (as tests/e2e does); a real deployment polls every 30 s.
os.environ.setdefault("POLL_INTERVAL_SECONDS", "1")
