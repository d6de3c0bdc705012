"""The jobs' handlers over one deployment: sync a stream, deliver webhooks, list tenants."""

from __future__ import annotations

from carebridge.jobs.queue import Handlers
from carebridge.store import tenants as repo
from carebridge.sync.engine import STREAMS
from carebridge.wiring.api import Deployment


def handlers(deployment: Deployment) -> Handlers:
    """What a worker (or the in-process runner) does, over ``deployment``."""

    async def sync(
        tenant: str, stream: str, *, holder: str | None = None, supersedes: str | None = None
    ) -> None:
        await deployment.sync(
            tenant_id=tenant, streams=[stream], holder=holder, supersedes=supersedes
        )

    async def tenants() -> list[str]:
        return await repo.tenant_ids(deployment.engine)

    return Handlers(
        sync=sync,
        deliver=deployment.deliverer.run_once,
        tenants=tenants,
        streams=list(STREAMS),
    )
