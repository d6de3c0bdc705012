"""Wire models: the upstream's payloads as they are, one module per surface.

Every wire model accepts fields it does not know (they are reported as drift, never dropped
silently) and uses the upstream's spellings as aliases, so the Python names can be ours.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """Base of every wire model: extra fields allowed, upstream spellings as aliases."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
