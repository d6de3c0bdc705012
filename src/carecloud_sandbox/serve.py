"""Serve one emulated tenant over HTTP until stopped."""

from __future__ import annotations

from pathlib import Path

import orjson
import uvicorn

from carecloud_sandbox.activity import start_realtime
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import OffsetClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant


def open_tenant(config: SandboxConfig, state: Path | None) -> Tenant:
    """Open (or generate) the tenant, in memory or in the ``state`` file, on a wall clock that
    the control plane can advance."""
    return Tenant.open(config, state=state, clock=OffsetClock())


def serve(tenant: Tenant, host: str, port: int, *, realtime: bool = False) -> None:
    """Print the credentials document, then serve until interrupted.

    With ``realtime``, the practice works as wall-clock time passes (``activity.py``).
    """
    if realtime:
        start_realtime(tenant)
    print(orjson.dumps(credentials(tenant), option=orjson.OPT_INDENT_2).decode(), flush=True)  # noqa: T201 - the CLI's output
    uvicorn.run(build_app(tenant), host=host, port=port, log_level="warning", access_log=False)
