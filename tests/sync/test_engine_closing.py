"""A pass that stops early (a failed save) closes the upstream's records at once: their
``finally`` (which cancels the reads they started ahead) runs before the stream's lease is
released, not whenever the loop gets round to finalizing the generator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support.sync import TENANT
from tests.sync.test_sync_scale import Window

from carebridge.domain import Appointment
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync.engine import Phase, sync

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Crash(Exception):
    pass


class Upstream(Window):
    """An appointment window of ``count`` records that notes when its reader closed it."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.yielded = 0
        self.closed = False

    async def appointments(self, start: date, end: date, **_: Any) -> AsyncIterator[Appointment]:
        try:
            async for appointment in super().appointments(start, end):
                self.yielded += 1
                yield appointment
        finally:
            self.closed = True


class Store(SqlSyncStore):
    """Notes whether the upstream's records were closed when the lease was released."""

    upstream: Upstream
    closed_at_release: list[bool]

    async def release(self, tenant_id: str, stream: str, holder: str) -> None:
        self.closed_at_release.append(self.upstream.closed)
        await super().release(tenant_id, stream, holder)


@pytest.mark.parametrize("phase", ["before_commit", "after_commit"])
async def test_a_failed_save_closes_the_upstreams_records_before_the_lease_is_released(
    tmp_path: Path, phase: Phase
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate.upgrade(url)
    db = create_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id=TENANT, name="c", upstream="carecloud", settings={}, created_at=NOW
                )
            )
        upstream = Upstream(50)

        def crash(name: str, page: int, at: Phase) -> None:
            if (name, page, at) == ("appointments", 1, phase):
                raise Crash

        store = Store(db)
        store.upstream, store.closed_at_release = upstream, []
        with pytest.raises(Crash):
            await sync(
                store,
                upstream,  # type: ignore[arg-type]
                TENANT,
                ["appointments"],
                clock=lambda: NOW,
                page_size=10,
                on_page=crash,
            )
        # nothing the upstream started is still running when the lease goes
        assert store.closed_at_release == [True]
        assert upstream.yielded == 10  # it stopped at the failed page, not at the window's end
    finally:
        await db.dispose()
