"""mapper's background loop: the purge of contents that came by reference."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from .. import service
from ..deps import Deps

log = logging.getLogger(__name__)

PURGE_SECONDS = 3600.0
"""How often the chunks past their retention are deleted (every replica does it; a second
delete finds nothing)."""


async def purge_payloads(deps: Deps) -> None:
    """Every hour, delete the chunks not received for ``PAYLOAD_RETENTION_DAYS``; errors are
    logged and the next hour tries again."""
    while True:
        try:
            if deps.pool is not None:
                async with deps.pool.acquire() as conn:
                    count = await service.purge_payloads(
                        deps.repositories(conn).chunks,
                        dt.datetime.now(dt.UTC),
                        deps.payload_retention_days,
                    )
                if count:
                    log.info("purged %d payload chunk(s) past their retention", count)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("payload purge failed; trying again later")
        await asyncio.sleep(PURGE_SECONDS)
