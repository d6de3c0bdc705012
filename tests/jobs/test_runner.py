"""The embedded mode's in-process runner: every tenant's streams, past a failing one, then
delivery rounds until nothing is due."""

from __future__ import annotations

import pytest

from carebridge.errors import UpstreamStatusError
from carebridge.jobs.queue import Handlers, InProcessRunner

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_round_syncs_every_stream_of_every_tenant_then_drains_deliveries() -> None:
    calls: list[tuple[str, str]] = []
    due = [3, 2, 0]

    async def sync(tenant: str, stream: str) -> None:
        calls.append((tenant, stream))
        if (tenant, stream) == ("ten_a", "claims"):
            raise UpstreamStatusError("portal down", status=503)

    async def deliver() -> int:
        return due.pop(0)

    async def tenants() -> list[str]:
        return ["ten_a", "ten_b"]

    runner = InProcessRunner(Handlers(sync, deliver, tenants, ["patients", "claims"]))
    await runner.round()
    assert calls == [
        ("ten_a", "patients"),
        ("ten_a", "claims"),
        ("ten_b", "patients"),
        ("ten_b", "claims"),
    ]
    assert due == []  # delivered until a round attempted nothing
