"""The crosswalk in the store (``crosswalk``), shared by every process of a deployment.

``remember`` runs one ``INSERT ... ON CONFLICT DO UPDATE``, built once, over a batch's rows (a
page of records; executemany, in chunks of :data:`CHUNK`), which leaves a row that already says
the same untouched. Lookups by entity use ``ix_crosswalk_entity``
(tenant, entity id); lookups by upstream id the primary key. When one entity has two ids on a
surface (an upstream that re-keyed a record), the smallest is answered, the same every time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.crosswalk import Link
from carebridge.store.schema import crosswalk

T = crosswalk.c

CHUNK = 500
"""Rows per ``executemany`` at most (a bounded batch of parameters in flight)."""


_REMEMBER: dict[str, Any] = {}


def _remember(dialect: str) -> Any:
    """The links' ``INSERT ... ON CONFLICT DO UPDATE`` (only where the entity differs), built
    once per dialect and run with a list of rows (executemany): a multi-``VALUES`` statement is
    compiled anew for every batch."""
    found = _REMEMBER.get(dialect)
    if found is None:
        insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(crosswalk)
        found = _REMEMBER[dialect] = statement.on_conflict_do_update(
            index_elements=["tenant_id", "surface", "kind", "upstream_id"],
            set_={"entity_id": statement.excluded.entity_id},
            where=T.entity_id != statement.excluded.entity_id,
        )
    return found


class SqlCrosswalk:
    """``Crosswalk`` over the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def remember(self, tenant: str, links: Sequence[Link]) -> None:
        rows = {
            (link.surface, link.kind, link.upstream_id): {
                "tenant_id": tenant,
                "surface": link.surface,
                "kind": link.kind,
                "upstream_id": link.upstream_id,
                "entity_id": link.entity_id,
            }
            for link in links
        }  # one row per key: PostgreSQL refuses a statement that updates a row twice
        if not rows:
            return
        values = list(rows.values())
        async with self.engine.begin() as conn:
            statement = _remember(conn.dialect.name)
            for start in range(0, len(values), CHUNK):
                await conn.execute(statement, values[start : start + CHUNK])

    async def upstream_id(self, tenant: str, kind: str, surface: str, entity_id: str) -> str | None:
        return (await self.upstream_ids(tenant, kind, surface, [entity_id])).get(entity_id)

    async def entity_id(self, tenant: str, kind: str, surface: str, upstream_id: str) -> str | None:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(T.entity_id).where(
                    T.tenant_id == tenant,
                    T.surface == surface,
                    T.kind == kind,
                    T.upstream_id == upstream_id,
                )
            )
        return None if found is None else str(found)

    async def upstream_ids(
        self, tenant: str, kind: str, surface: str, entity_ids: Collection[str]
    ) -> dict[str, str]:
        wanted = sorted(set(entity_ids))
        found: dict[str, str] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                rows = await conn.execute(
                    select(T.entity_id, func.min(T.upstream_id))
                    .where(
                        T.tenant_id == tenant,
                        T.entity_id.in_(wanted[start : start + CHUNK]),
                        T.kind == kind,
                        T.surface == surface,
                    )
                    .group_by(T.entity_id)
                )
                found.update({str(e): str(u) for e, u in rows})
        return found

    async def links_of(self, tenant: str, kind: str, entity_ids: Collection[str]) -> list[Link]:
        wanted = sorted(set(entity_ids))
        links: list[Link] = []
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                rows = await conn.execute(
                    select(T.surface, T.upstream_id, T.entity_id)
                    .where(
                        T.tenant_id == tenant,
                        T.entity_id.in_(wanted[start : start + CHUNK]),
                        T.kind == kind,
                    )
                    .order_by(T.entity_id, T.surface, T.upstream_id)
                )
                links.extend(Link(kind, str(s), str(u), str(e)) for s, u, e in rows)
        return links
