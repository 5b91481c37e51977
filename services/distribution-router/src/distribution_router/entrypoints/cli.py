"""distribution-router's command tree: the shared service commands (run, migrate, dlq, jobs,
tokens) plus ``archive purge``."""

from __future__ import annotations

from nordflow_runtime.cli import new_group, run_async, run_cli, service_cli, service_pool
from nordflow_schemas.topics import DISTRIBUTION_ROUTER

from ..adapters.repositories import PgArchiveRepository
from ..app import create_app
from ..service.archive import purge_expired

cli = service_cli(DISTRIBUTION_ROUTER, create_app, tenant_api=True)
archive = new_group("The archive of sent documents.")
cli.add_typer(archive, name="archive")


@archive.command("purge")
def archive_purge() -> None:
    """Delete the archived documents past their retention (counters are kept)."""

    async def purging() -> int:
        app = create_app()
        async with service_pool(app) as pool, pool.acquire() as conn, conn.transaction():
            return await purge_expired(PgArchiveRepository(conn))

    count = run_async(purging())
    print(f"purged {count} archived document(s) past their retention")


def main(argv: list[str] | None = None) -> int:
    """``distribution-router``'s command line."""
    return run_cli(cli, DISTRIBUTION_ROUTER, argv)
