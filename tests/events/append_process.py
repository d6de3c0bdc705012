"""A process that appends one operational event to a store, for the two-process delivery test
(``test_delivery_wake.py``): ``python append_process.py <store URL> <tenant> <stream>``.

It opens the store as any carebridge process does and announces ``integration.degraded`` for
``<stream>`` (queueing one delivery per subscription that takes it), then exits; it runs no
delivery loop, so only another process can send what it queued.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from carebridge.ports.events import Announcement
from carebridge.store.engine import create_engine
from carebridge.store.events import SqlAnnouncer


async def main(url: str, tenant: str, stream: str) -> None:
    engine = create_engine(url)
    try:
        await SqlAnnouncer(engine).announce(
            tenant,
            [Announcement("integration.degraded", "stream", stream, {"stream": stream})],
            at=datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        )
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
