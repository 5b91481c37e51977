"""erp-poller's use cases: polls, sync requests and backfills (`polling`), pushes (`ingest`),
connections (`connections`) and the tenants' profiles (`profiles`), on the repositories and
the source clients of `ports`."""
