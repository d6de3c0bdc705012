"""Each tenant's learned throttle budget, kept between processes.

A connection's adaptive throttle learns the rate and concurrency its upstream bears (ADR 0019);
a one-shot ``carebridge sync`` would otherwise start over from the configured start rate every
time. The budget is a ``freshness`` row of the tenant (``kind`` :data:`KIND`, ``scope``
:data:`SCOPE`): ``refreshed_at`` when it was learned, ``cursor`` the budget and what it was
learned against (an opaque fingerprint the caller makes of its throttle's configuration and the
upstream's addresses). No kind of record is named ``throttle``, so the read path never reads it
as a slice's freshness. Whether a kept budget is still worth starting from is the caller's call
(:meth:`LearnedBudget.usable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.store.engine import read_first
from carebridge.store.schema import freshness

KIND = "throttle"
SCOPE = "learned"


@dataclass(frozen=True)
class LearnedBudget:
    """A throttle's budget as a process left it: requests/s, requests in flight, the rate
    congestion last struck at (None: none yet), what it was learned against, and when."""

    rate: float
    concurrency: int
    ceiling: float | None
    against: str
    learned_at: datetime

    def usable(self, against: str, *, now: datetime, max_age: timedelta) -> bool:
        """Whether to start from it: learned against the same ``against`` at most ``max_age``
        before ``now`` (and not after it: a clock gone back trusts nothing)."""
        age = now.astimezone(UTC) - self.learned_at
        return self.against == against and timedelta(0) <= age <= max_age

    def as_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "concurrency": self.concurrency,
            "ceiling": self.ceiling,
            "against": self.against,
        }


def _aware(at: datetime) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


async def keep(engine: AsyncEngine, tenant_id: str, budget: LearnedBudget) -> None:
    """Store ``budget`` as the tenant's learned one (replacing the last)."""
    async with engine.begin() as conn:
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
            freshness
        )
        values = {"refreshed_at": _aware(budget.learned_at), "cursor": budget.as_json()}
        await conn.execute(
            insert.values(
                tenant_id=tenant_id, kind=KIND, scope=SCOPE, **values
            ).on_conflict_do_update(index_elements=["tenant_id", "kind", "scope"], set_=values)
        )


async def learned(engine: AsyncEngine, tenant_id: str) -> LearnedBudget | None:
    """The tenant's last kept budget (None: none, or one this code cannot read)."""
    row = await read_first(
        engine,
        select(freshness.c.refreshed_at, freshness.c.cursor).where(
            freshness.c.tenant_id == tenant_id,
            freshness.c.kind == KIND,
            freshness.c.scope == SCOPE,
        ),
    )
    if row is None or not isinstance(row.cursor, dict):
        return None
    kept = row.cursor
    try:
        ceiling = kept.get("ceiling")
        return LearnedBudget(
            rate=float(kept["rate"]),
            concurrency=int(kept["concurrency"]),
            ceiling=None if ceiling is None else float(ceiling),
            against=str(kept["against"]),
            learned_at=_aware(row.refreshed_at),
        )
    except (KeyError, TypeError, ValueError):
        return None
