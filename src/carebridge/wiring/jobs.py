"""The jobs' handlers over one deployment: sync a stream, deliver webhooks, list tenants."""

from __future__ import annotations

from carebridge.jobs.queue import Handlers
from carebridge.services.sync import STREAMS
from carebridge.wiring.api import Deployment


def handlers(deployment: Deployment) -> Handlers:
    """What a worker (or the in-process runner) does, over ``deployment``."""
    syncs = deployment.syncs

    async def sync(
        tenant: str, stream: str, *, holder: str | None = None, supersedes: str | None = None
    ) -> None:
        await syncs.run(tenant, [stream], holder=holder, supersedes=supersedes)

    return Handlers(
        sync=sync,
        deliver=deployment.deliverer.run_once,
        tenants=syncs.tenants,
        streams=list(STREAMS),
    )
