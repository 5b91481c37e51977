"""One module per source system, each reading only its documents' shape (into the builder)."""

from __future__ import annotations

from nordflow_schemas.common import SourceSystem

from ..domain.builder import SourceMapper
from .fortnox import map_fortnox
from .onprem import map_on_premise
from .sirvoy import map_sirvoy
from .visma_eaccounting import map_visma_eaccounting
from .visma_net import map_visma_net
from .winner import map_winner

MAPPERS: dict[SourceSystem, SourceMapper] = {
    SourceSystem.FORTNOX: map_fortnox,
    SourceSystem.VISMA_EACCOUNTING: map_visma_eaccounting,
    SourceSystem.VISMA_NET: map_visma_net,
    SourceSystem.SIRVOY: map_sirvoy,
    SourceSystem.WINNER: map_winner,
    SourceSystem.ON_PREMISE: map_on_premise,
}
"""The invoice mapper of each source system (payments: ``sources.payments``)."""
