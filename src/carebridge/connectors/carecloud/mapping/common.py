"""What every mapper returns, and the keys that link one person across surfaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from carebridge.domain import Provenance
from carebridge.domain.provenance import Surface

T = TypeVar("T")


@dataclass(frozen=True)
class Mapped(Generic[T]):
    """A domain record and the upstream fields the mapping did not carry (dotted paths)."""

    value: T
    dropped: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Context:
    """What a mapper needs besides the payload: whose data, from where, fetched when.

    ``tenant`` is carebridge's tenant id; entity ids are derived from it and an upstream key
    that every surface shares (the chart number for a patient), so the v2 GUID, the portal's
    chart number and the Connector's logical id of one person map to one ``pat_`` id.
    """

    tenant: str
    surface: Surface
    endpoint: str
    fetched_at: datetime

    def source(self, upstream_id: str) -> Provenance:
        """The provenance of one record from this fetch."""
        return Provenance(
            surface=self.surface,
            endpoint=self.endpoint,
            upstream_id=upstream_id,
            fetched_at=self.fetched_at,
        )

    def key(self, kind: str, upstream_key: str) -> str:
        """The stable key an entity id is derived from (``PatientId.new(ctx.key(...))``)."""
        return f"{self.tenant}:{kind}:{upstream_key}"
