"""Oracles for the chaos suite, independent of the code under test where they can be.

- **Ids against the ground truth**: the sandbox's own tables name every record a sync should
  hold (``tests/support/sync.py``'s ``truth_ids``, which spells ids out from upstream keys
  without the mappers). A missing id is *lost*; an id the truth does not name is *duplicated*
  (a second carebridge id for one upstream record is the only way a sync can duplicate, since
  the store's key is the id).
- **Content against a fault-free reference**: the same tenant synced into a second, empty store
  with no faults. A record whose JSON (provenance aside) differs is *wrong*.
- **Events**: two events for one change (same entity, type and diff) are *duplicates*.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support.api import Live
from tests.support.clock import FakeTime
from tests.support.sync import TENANT, store_ids, truth_ids

from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.store.schema import entities
from carebridge.store.sync_state import SqlSyncStore
from carebridge.store.vault import KeyRing
from carebridge.sync.engine import sync
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox
from carecloud_sandbox.control import credentials


def without_provenance(value: Any) -> Any:
    """A record's JSON without provenance, at every depth."""
    if isinstance(value, dict):
        return {k: without_provenance(v) for k, v in value.items() if k != "sources"}
    if isinstance(value, list):
        return [without_provenance(v) for v in value]
    return value


async def against_truth(live: Live) -> tuple[int, int, int]:
    """(compared, lost, duplicated) of the store's ids against the sandbox's tables."""
    truth, stored = truth_ids(live), await store_ids(live)
    compared = lost = extra = 0
    for kind, expected in truth.items():
        compared += len(expected)
        lost += len(expected - stored[kind])
        extra += len(stored[kind] - expected)
    return compared, lost, extra


async def records(engine: AsyncEngine, tenant: str = TENANT) -> dict[tuple[str, str], Any]:
    """Every live record of a tenant, provenance aside, by (kind, id)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(entities.c.kind, entities.c.id, entities.c.data).where(
                entities.c.tenant_id == tenant, entities.c.deleted.is_(False)
            )
        )
        return {(r.kind, r.id): without_provenance(r.data) for r in rows}


async def reference(live: Live, folder: Path) -> dict[tuple[str, str], Any]:
    """The same tenant synced with no fault into a fresh store: what the chaos store should
    hold, record for record. The fresh store has its own MFA ledger, so the clock moves to a
    TOTP step the chaos store's sign-ins have not used. Its throttle runs on a fake clock, as
    the chaos store's does (``tests.support.api``): nothing waits in real time, neither for a
    request slot nor for a Bulk export's ``Retry-After`` (the sandbox's clock stands still, so
    the export is given up and read per patient, as in the chaos store's syncs)."""
    live.clock.advance(timedelta(seconds=31))
    fake = FakeTime()
    deployment = await open_deployment(
        f"sqlite:///{folder / 'reference.db'}",
        KeyRing.generate(),
        clock=live.clock.now,
        transport=live.upstream,
        throttle=lambda: AimdThrottle(
            ThrottleConfig(start_rate=200, max_rate=500), clock=fake.clock, sleep=fake.sleep
        ),
    )
    try:
        settings, secrets = from_sandbox(credentials(live.sandbox), practice=0)
        await deployment.onboard(
            tenant_id=TENANT, name=TENANT, upstream="carecloud", settings=settings, secrets=secrets
        )
        upstream = await deployment.upstreams.of(TENANT)
        report = await sync(SqlSyncStore(deployment.engine), upstream, TENANT, clock=live.clock.now)
        assert report.ok, report.as_json()
        return await records(deployment.engine)
    finally:
        await deployment.aclose()


SNAPSHOTS = frozenset({"balances"})
"""Fields that are a snapshot of their read, not of the record's own version: a patient's
balances move with every charge and payment while the patient's ``updated_at`` stays, so an
incremental sync does not re-read them (``GET /balances`` is the real-time answer)."""


def wrong(chaos: dict[tuple[str, str], Any], clean: dict[tuple[str, str], Any]) -> tuple[int, int]:
    """(wrong, stale snapshots): records both stores hold whose content differs, snapshot
    fields aside; and records whose snapshot fields alone differ. What only one store holds is
    lost or duplicated, and counted against the truth."""
    differ = stale = 0
    for key in chaos.keys() & clean.keys():
        mine, theirs = chaos[key], clean[key]
        if mine == theirs:
            continue
        if isinstance(mine, dict) and isinstance(theirs, dict):
            rest = {k: v for k, v in mine.items() if k not in SNAPSHOTS}
            if rest == {k: v for k, v in theirs.items() if k not in SNAPSHOTS}:
                stale += 1
                continue
        differ += 1
    return differ, stale


def duplicate_events(events: list[dict[str, Any]]) -> int:
    """Events repeating another's (entity, type, diff)."""
    seen = Counter(
        (e["kind"], e["entity_id"], e["type"], orjson.dumps(e["diff"], option=orjson.OPT_SORT_KEYS))
        for e in events
    )
    return sum(n - 1 for n in seen.values() if n > 1)
