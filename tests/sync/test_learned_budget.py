"""A tenant's learned throttle budget outlives the process that learned it.

A sync's end (and the connections' close) keeps the throttle's budget in the store; the next
process that connects the tenant starts from it instead of the configured 20 requests/s, unless
it is older than a day or was learned against another throttle configuration or upstream. The
first test runs two real processes (spawned) over one SQLite file and the emulated tenant served
over HTTP: the second process's throttle starts at the rate the first one learned.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.store import throttle_budgets
from carebridge.store.throttle_budgets import LearnedBudget
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import LEARNED_MAX_AGE, from_sandbox, learned_against

pytestmark = pytest.mark.anyio

TENANT = "ten_budget"
START = ThrottleConfig().start_rate
RING = KeyRing.generate()
"""The in-process tests' vault key (one per module run: each deployment opens the secrets)."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _settings(base: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A sandbox-shaped tenant profile (no request is made to it in the in-process tests)."""
    document = {
        "base_url": base,
        "token_url": f"{base}/oauth2/access_token",
        "portal_url": f"{base}/portal/api",
        "client_id": "client",
        "client_secret": "secret",
        "practices": [
            {
                "id": 1,
                "refresh_token": "refresh",
                "users": [
                    {
                        "username": "frontdesk",
                        "password": "pw",
                        "totp_seed": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    }
                ],
            }
        ],
    }
    return from_sandbox(document)


async def _onboard(deployment: Deployment, base: str) -> None:
    settings, secrets = _settings(base)
    await deployment.onboard(
        tenant_id=TENANT, name=TENANT, upstream="carecloud", settings=settings, secrets=secrets
    )


# --- two processes ------------------------------------------------------------------------------


def _child(url: str, ring: str, sync: bool, results: Any) -> None:
    results.put(anyio.run(_in_child, url, ring, sync))


async def _in_child(url: str, ring: str, sync: bool) -> dict[str, Any]:
    deployment = await open_deployment(url, KeyRing.parse(ring))
    try:
        throttle = (await deployment.upstreams.of(TENANT)).connection.throttle
        opened = throttle.budget()
        out: dict[str, Any] = {"opened": [opened.rate, opened.concurrency]}
        if sync:
            report = await deployment.syncs.run(TENANT, ["providers", "locations", "patients"])
            assert report.ok, report.as_json()
            learned = throttle.learned()
            out["learned"] = [learned.rate, learned.concurrency, throttle.ceiling]
            kept = await throttle_budgets.learned(deployment.engine, TENANT)
            assert kept is not None
            out["kept"] = [kept.rate, kept.concurrency, kept.ceiling]
        return out
    finally:
        await deployment.aclose()


async def _run_child(url: str, ring: KeyRing, *, sync: bool) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_child, args=(url, ring.to_text(), sync, results))
    child.start()
    outcome: dict[str, Any] = await anyio.to_thread.run_sync(results.get, True, 240)
    child.join(timeout=60)
    assert child.exitcode == 0
    return outcome


async def test_a_second_process_starts_at_the_rate_the_first_learned(
    tmp_path: Path, sandbox: str
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ring = KeyRing.generate()
    deployment = await open_deployment(url, ring)
    try:
        async with httpx.AsyncClient() as client:
            document = (await client.get(f"{sandbox}/_sandbox/credentials")).json()
        settings, secrets = from_sandbox(document)
        await deployment.onboard(
            tenant_id=TENANT, name=TENANT, upstream="carecloud", settings=settings, secrets=secrets
        )
    finally:
        await deployment.aclose()

    first = await _run_child(url, ring, sync=True)
    assert first["opened"][0] == START  # nothing learned yet: the configured start
    rate, concurrency, _ceiling = first["learned"]
    assert rate > START  # slow start grew it, request by request
    assert first["kept"] == first["learned"]  # kept as the sync ended

    second = await _run_child(url, ring, sync=False)
    assert second["opened"] == [rate, concurrency]  # where the first process left off


# --- in one process: what is started from, and what is not ---------------------------------------


@pytest.fixture
async def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    deployment = await open_deployment(url, RING)
    try:
        await _onboard(deployment, "https://api.example.test")
    finally:
        await deployment.aclose()
    return url


async def _opened_rate(
    url: str, now: datetime, throttle: ThrottleConfig | None = None
) -> tuple[float, float | None]:
    """The rate and ceiling a deployment's throttle for the tenant opens with at ``now``."""
    config = throttle or ThrottleConfig()
    deployment = await open_deployment(
        url,
        RING,
        clock=lambda: now,
        throttle=lambda: AimdThrottle(config, clock=lambda: 0.0),
    )
    try:
        gate = (await deployment.upstreams.of(TENANT)).connection.throttle
        return gate.budget().rate, gate.ceiling
    finally:
        await deployment.aclose()


async def _plant(url: str, *, rate: float, at: datetime, against: str) -> None:
    deployment = await open_deployment(url, RING)
    try:
        await throttle_budgets.keep(
            deployment.engine,
            TENANT,
            LearnedBudget(
                rate=rate, concurrency=12, ceiling=rate + 5, against=against, learned_at=at
            ),
        )
    finally:
        await deployment.aclose()


def _against(config: ThrottleConfig | None = None) -> str:
    settings, _ = _settings("https://api.example.test")
    return learned_against(config or ThrottleConfig(), settings)


async def test_a_budget_learned_less_than_a_day_ago_is_started_from(store_url: str) -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    await _plant(store_url, rate=137.5, at=now - timedelta(hours=23), against=_against())
    assert await _opened_rate(store_url, now) == (137.5, 142.5)


async def test_a_budget_older_than_a_day_is_not(store_url: str) -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    stale = now - LEARNED_MAX_AGE - timedelta(seconds=1)
    await _plant(store_url, rate=137.5, at=stale, against=_against())
    assert await _opened_rate(store_url, now) == (START, None)
    ahead = now + timedelta(minutes=5)  # learned "in the future": a clock went back
    await _plant(store_url, rate=137.5, at=ahead, against=_against())
    assert await _opened_rate(store_url, now) == (START, None)


async def test_a_budget_learned_against_other_settings_is_not(store_url: str) -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    other = ThrottleConfig(max_rate=50.0)
    await _plant(store_url, rate=137.5, at=now, against=_against(other))
    assert await _opened_rate(store_url, now) == (START, None)
    settings, _ = _settings("https://elsewhere.example.test")
    moved = learned_against(ThrottleConfig(), settings)
    await _plant(store_url, rate=137.5, at=now, against=moved)
    assert await _opened_rate(store_url, now) == (START, None)
    # the configuration it was learned under: started from, within its bounds
    await _plant(store_url, rate=45.0, at=now, against=_against(other))
    assert await _opened_rate(store_url, now, other) == (45.0, 50.0)


async def test_a_connection_that_had_no_answer_keeps_nothing(store_url: str) -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    await _plant(store_url, rate=137.5, at=now - timedelta(hours=1), against=_against())
    await _opened_rate(store_url, now)  # opened, resumed, closed without a request
    deployment = await open_deployment(store_url, RING)
    try:
        kept = await throttle_budgets.learned(deployment.engine, TENANT)
    finally:
        await deployment.aclose()
    assert kept is not None
    assert (kept.rate, kept.learned_at) == (137.5, now - timedelta(hours=1))
