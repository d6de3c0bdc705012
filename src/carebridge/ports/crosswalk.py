"""The ``Crosswalk`` port: carebridge's ids and the upstream's, shared by every process.

carebridge ids derive deterministically from upstream ids (``pat_`` from the chart number,
``apt_`` from the v2 GUID, ``loc_`` from the v2 integer id...), so the forward direction needs
no table. The reverse direction does: an ``apt_`` id does not reveal the GUID a write must
name, and one person is known by a v2 GUID, a chart number, an RCM account number and a FHIR
logical id. Every such pair the connector learns is a :class:`Link`; the crosswalk keeps them
for the tenant, so an API process, a worker beside it and a restarted process all resolve an
id the same way without reading the upstream's lists again.

``kind`` is a kind of the registry (:data:`carebridge.domain.kinds.KINDS`); ``surface`` says
which of the upstream's id spaces ``upstream_id`` belongs to (:data:`SURFACES`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from carebridge.domain.kinds import KINDS

SURFACES: Final = frozenset({"v2", "chart_number", "rcm_account", "fhir", "portal"})
"""The upstream's id spaces: v2 GUIDs and integer ids, chart numbers, RCM account numbers, the
Connector's FHIR logical ids, and the portal's integer ids (encounters, ledger charges)."""


@dataclass(frozen=True)
class Link:
    """One entity's id on one upstream surface."""

    kind: str
    surface: str
    upstream_id: str
    entity_id: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if self.surface not in SURFACES:
            raise ValueError(f"unknown surface {self.surface!r}")


class Crosswalk(Protocol):
    """The tenant's links between carebridge ids and upstream ids (the store's, in a
    deployment: one map for every process)."""

    async def remember(self, tenant: str, links: Sequence[Link]) -> None:
        """Keep ``links`` (one batch: a page of records); a link to an upstream id already kept
        for the kind and surface replaces it."""
        ...

    async def upstream_id(self, tenant: str, kind: str, surface: str, entity_id: str) -> str | None:
        """The entity's id on ``surface`` (None when none is kept)."""
        ...

    async def entity_id(self, tenant: str, kind: str, surface: str, upstream_id: str) -> str | None:
        """The entity an upstream id names (None when none is kept)."""
        ...

    async def upstream_ids(
        self, tenant: str, kind: str, surface: str, entity_ids: Collection[str]
    ) -> dict[str, str]:
        """Entity id -> its id on ``surface``, for those of ``entity_ids`` that have one."""
        ...

    async def links_of(self, tenant: str, kind: str, entity_ids: Collection[str]) -> list[Link]:
        """Every link of these entities, on every surface (one person's ids everywhere)."""
        ...


class MemoryCrosswalk:
    """``Crosswalk`` in one process's memory, for tests and tools that have no store.

    It shares a map between the facades of one process, not between processes: a deployment
    wires the store's crosswalk.
    """

    def __init__(self) -> None:
        self._links: dict[tuple[str, str, str, str], str] = {}
        self.batches = 0
        """How many ``remember`` calls were made (tests count the batches)."""

    async def remember(self, tenant: str, links: Sequence[Link]) -> None:
        if links:
            self.batches += 1
        for link in links:
            self._links[(tenant, link.kind, link.surface, link.upstream_id)] = link.entity_id

    def _all(self, tenant: str, kind: str) -> list[Link]:
        return [
            Link(k, s, u, e)
            for (t, k, s, u), e in sorted(self._links.items())
            if t == tenant and k == kind
        ]

    async def upstream_id(self, tenant: str, kind: str, surface: str, entity_id: str) -> str | None:
        return (await self.upstream_ids(tenant, kind, surface, [entity_id])).get(entity_id)

    async def entity_id(self, tenant: str, kind: str, surface: str, upstream_id: str) -> str | None:
        return self._links.get((tenant, kind, surface, upstream_id))

    async def upstream_ids(
        self, tenant: str, kind: str, surface: str, entity_ids: Collection[str]
    ) -> dict[str, str]:
        wanted = set(entity_ids)
        found: dict[str, str] = {}
        for link in self._all(tenant, kind):  # sorted: the smallest upstream id wins, as in SQL
            if link.surface == surface and link.entity_id in wanted:
                found.setdefault(link.entity_id, link.upstream_id)
        return found

    async def links_of(self, tenant: str, kind: str, entity_ids: Collection[str]) -> list[Link]:
        wanted = set(entity_ids)
        return [link for link in self._all(tenant, kind) if link.entity_id in wanted]
