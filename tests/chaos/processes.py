"""Real processes for the kill -9 scenarios: the emulated tenant and a webhook receiver in
threads of the test process (so the test reads the ground truth directly), and carebridge's own
commands (`sync`, `serve`, `worker`) as child processes that the test kills with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support.processes import free_port, wait_for

from carebridge.events.webhooks import new_secret
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import SystemClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a loopback port, in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Sandbox:
    """The emulated tenant on wall-clock time, served over HTTP from a thread."""

    tenant: Tenant
    base: str
    clock: SystemClock = field(default_factory=SystemClock)

    def truth(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.tenant.db.all(sql, params)]


@contextmanager
def sandbox(*, seed: int, patients: int) -> Iterator[Sandbox]:
    port = free_port()
    # Bulk exports are ready at once: on wall-clock time the encounters stream's export would
    # wait its default 10 s of Retry-After in every sync
    config = SandboxConfig(
        seed=seed,
        patients=patients,
        practices=1,
        base_url=f"http://127.0.0.1:{port}",
        bulk_export_seconds=0,
    )
    tenant = Tenant.open(config)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(tenant), host="127.0.0.1", port=port, log_level="error", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(f"http://127.0.0.1:{port}/_sandbox/clock")
        yield Sandbox(tenant, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        tenant.db.close()


@dataclass(frozen=True)
class Arrival:
    message_id: str
    entity: str
    seq: int


class Receiver:
    """Verifies each delivery with standardwebhooks and keeps what arrived, in order."""

    def __init__(self) -> None:
        self.secret = new_secret()
        self.arrivals: list[Arrival] = []
        self.rejected = 0
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload: Any = Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:  # noqa: BLE001 - a malformed header raises ValueError, not only ours
            with self.lock:
                self.rejected += 1
            return Response(status_code=400)
        data = payload["data"]
        with self.lock:
            self.arrivals.append(
                Arrival(
                    request.headers["webhook-id"],
                    f"{data['kind']}:{data['entity_id']}",
                    data["seq"],
                )
            )
        return Response(status_code=204)


def env(database: str, vault_key: str, **extra: str) -> dict[str, str]:
    """A child's environment: the store, the vault key, loopback receivers allowed."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    out |= {
        "CAREBRIDGE_DATABASE_URL": database,
        "CAREBRIDGE_VAULT_KEY": vault_key,
        "CAREBRIDGE_WEBHOOK_ALLOW": "127.0.0.0/8,localhost",
    }
    return out | extra


def carebridge(
    args: list[str], environment: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``carebridge <args>`` as a child in its own process group (kill -9 reaches all of it),
    its stderr appended to ``log``."""
    with open(log or os.devnull, "ab") as errors:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "carebridge", *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )


def kill9(child: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the child's whole group; True when it was still running."""
    running = child.poll() is None
    if running:
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    return running


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill9(child)
