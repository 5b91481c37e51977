"""The tenant's paper options: postage class, colour and duplex of its letters."""

from __future__ import annotations

from ..domain.documents import PaperOptions
from .ports import PaperOptionsRepository


class NoPaperOptionsError(LookupError):
    """The tenant set no paper options."""


async def paper_options(repo: PaperOptionsRepository, tenant_id: str) -> PaperOptions:
    """The tenant's paper options (all None when it set none: the service's defaults)."""
    return await repo.get(tenant_id)


async def set_paper_options(
    repo: PaperOptionsRepository, tenant_id: str, options: PaperOptions
) -> PaperOptions:
    """Replace the tenant's paper options; a None leaves that choice to the service default."""
    return await repo.save(tenant_id, options)


async def delete_paper_options(repo: PaperOptionsRepository, tenant_id: str) -> None:
    """Back to the service's defaults; NoPaperOptionsError when the tenant had set none."""
    if not await repo.delete(tenant_id):
        raise NoPaperOptionsError("no paper options set")
