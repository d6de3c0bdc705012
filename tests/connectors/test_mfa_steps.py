"""MFA codes are a shared resource of the upstream account: a TOTP step is sent once by all of
carebridge's processes together, a sign-in waits for the next step rather than reuse one, and
sign-ins stop well before the upstream locks the account (issue 11, item 1).

The emulated tenant runs in process on a manual clock; "waiting" for a step moves that clock.
The multi-process tests run real OS processes that share one SQLite file store and sign in to
a tenant served on a loopback port.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina
from tests.support.clock import FakeTime
from tests.support.sandbox import LiveTenant, start_live

from carebridge.connectors.carecloud.auth import SignInRefused
from carebridge.connectors.carecloud.mfa import (
    MemoryMfaSteps,
    SignInGuard,
    TotpSource,
    account_key,
)
from carebridge.connectors.carecloud.surfaces import Connection, PortalSecrets, connect
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.errors import AccountLocked, MfaLockoutRisk
from carebridge.ports.upstream import MfaSteps
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.mfa_steps import SqlMfaSteps
from carecloud_sandbox import personas
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
PORTAL = f"{BASE}/portal/api"
WRONG_SEED = "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TF"  # not the persona's seed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counting(httpx.AsyncBaseTransport):
    """The ASGI transport, counting requests by path."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths if p == path)


@dataclass
class Bed:
    """The tenant in process, its clock, and a way to connect carebridge to it."""

    tenant: Tenant
    clock: ManualClock
    transport: Counting
    user: dict[str, Any]

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def connect(self, steps: MfaSteps, *, seed: str | None = None) -> Connection:
        account = account_key(PORTAL, self.user["username"])
        t = FakeTime()
        gate = AimdThrottle(ThrottleConfig(start_rate=50), clock=t.clock, sleep=t.sleep)
        source = TotpSource(
            seed or self.user["totp_seed"],
            self.clock.now,
            steps=steps,
            account=account,
            sleep=self.sleep,
        )
        portal = PortalSecrets(
            api_url=PORTAL,
            username=self.user["username"],
            password=self.user["password"],
            codes=[source],
            methods=("totp",),
            guard=SignInGuard(steps, account, self.clock.now),
        )
        return connect(clock=self.clock.now, transport=self.transport, throttle=gate, portal=portal)

    def upstream_state(self) -> Any:
        return self.tenant.db.one(
            "SELECT s.failed_attempts, s.locked_until FROM portal_user_state s "
            "JOIN users u ON u.id = s.user_id WHERE u.username = ?",
            (self.user["username"],),
        )


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    config = SandboxConfig(
        seed=7, patients=20, practices=1, anchor=date(2026, 11, 24), base_url=BASE
    )
    clock = ManualClock(START)
    tenant = Tenant.open(config, clock=clock)
    transport = Counting(httpx.ASGITransport(app=build_app(tenant)))
    users = credentials(tenant)["practices"][0]["users"]
    user = next(u for u in users if u["username"] == personas.USERNAME)
    with stamina.set_testing(True, attempts=8):
        yield Bed(tenant, clock, transport, user)
    await transport.inner.aclose()
    tenant.db.close()


async def _whoami(conn: Connection) -> int:
    assert conn.portal is not None
    return (await conn.portal.request("GET", f"{PORTAL}/session")).status_code


async def test_two_connections_in_one_step_share_the_ledger_and_the_second_waits(bed: Bed) -> None:
    steps = MemoryMfaSteps()
    first, second = bed.connect(steps), bed.connect(steps)
    assert await _whoami(first) == 200
    assert await _whoami(second) == 200  # the step is taken: it waits for the next one
    assert bed.clock.now() == START + timedelta(seconds=30)
    assert bed.transport.count("/portal/api/session/mfa/verify") == 2
    assert bed.upstream_state()["failed_attempts"] == 0
    assert (await steps.state(account_key(PORTAL, bed.user["username"]))).last_step == (
        int((START + timedelta(seconds=30)).timestamp()) // 30
    )
    await first.aclose()
    await second.aclose()


async def test_a_restart_in_the_same_step_does_not_resend_the_used_code(
    bed: Bed, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        for _ in range(3):  # three runs of `carebridge sync`, each a new connector
            conn = bed.connect(SqlMfaSteps(engine))
            assert await _whoami(conn) == 200
            await conn.aclose()
    finally:
        await engine.dispose()
    assert bed.upstream_state()["failed_attempts"] == 0
    assert bed.upstream_state()["locked_until"] is None


async def test_refused_codes_stop_sign_ins_after_two_well_before_the_upstream_lockout(
    bed: Bed,
) -> None:
    steps = MemoryMfaSteps()
    conn = bed.connect(steps, seed=WRONG_SEED)
    with pytest.raises(SignInRefused) as first:
        await _whoami(conn)
    assert first.value.code == "invalid_mfa_code"
    bed.clock.advance(timedelta(seconds=30))
    with pytest.raises(MfaLockoutRisk) as stopped:
        await _whoami(conn)
    assert stopped.value.failures == 2
    sent = len(bed.transport.paths)
    for _ in range(5):  # every later sign-in is refused here, without a request upstream
        bed.clock.advance(timedelta(seconds=30))
        with pytest.raises(MfaLockoutRisk):
            await _whoami(bed.connect(steps, seed=WRONG_SEED))
    assert len(bed.transport.paths) == sent
    state = bed.upstream_state()
    assert state["failed_attempts"] == 2 < bed.tenant.config.portal_lockout_threshold
    assert state["locked_until"] is None
    await steps.reset(account_key(PORTAL, bed.user["username"]))  # an operator fixed the seed
    assert await _whoami(bed.connect(steps)) == 200
    assert bed.upstream_state()["failed_attempts"] == 0


async def test_a_locked_account_is_left_alone_until_its_lockout_ends(bed: Bed) -> None:
    async with httpx.AsyncClient(transport=bed.transport, base_url=BASE) as front_desk:
        for _ in range(bed.tenant.config.portal_lockout_threshold):  # someone else's typos
            await front_desk.post(
                "/portal/api/session",
                json={"username": bed.user["username"], "password": "not-the-password"},
            )
    steps = MemoryMfaSteps()
    with pytest.raises(AccountLocked) as locked:
        await _whoami(bed.connect(steps))
    until = locked.value.locked_until
    assert until == START + timedelta(seconds=bed.tenant.config.portal_lockout_seconds)
    sent = len(bed.transport.paths)
    with pytest.raises(AccountLocked):
        await _whoami(bed.connect(steps))
    assert len(bed.transport.paths) == sent  # no attempt while the lockout runs
    bed.clock.advance(until - bed.clock.now())
    assert await _whoami(bed.connect(steps)) == 200


# --- real processes sharing one SQLite file store -------------------------------------------------


@pytest.fixture
def served() -> Iterator[LiveTenant]:
    config = SandboxConfig(seed=11, patients=20, practices=1, anchor=date(2026, 11, 24))
    live, stop = start_live(config)
    yield live
    stop()


def _spawn(live: LiveTenant, store: str) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("signin_process.py")
    return subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(script), live.base_url, store],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_processes_signing_in_within_one_step_and_restarting_never_reuse_a_code(
    served: LiveTenant, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(store)
    # two processes (a sync beside an API worker) start in the same 30-second step ...
    pair = [_spawn(served, store), _spawn(served, store)]
    results = [_result(p) for p in pair]
    # ... then `carebridge sync` is restarted three times in a row
    results += [_result(_spawn(served, store)) for _ in range(3)]
    assert results == [{"ok": True}] * 5
    username = served.credentials["practices"][0]["users"][0]["username"]
    state = served.tenant.db.one(
        "SELECT s.failed_attempts, s.locked_until, s.last_totp_step FROM portal_user_state s "
        "JOIN users u ON u.id = s.user_id WHERE u.username = ?",
        (username,),
    )
    assert state["failed_attempts"] == 0
    assert state["locked_until"] is None
    sessions = served.tenant.db.scalar(
        "SELECT COUNT(*) FROM portal_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE u.username = ? AND s.state != 'mfa_pending'",
        (username,),
    )
    assert sessions == 5  # five sign-ins, each on its own step
