"""The sandbox tests' fixtures: a live emulated tenant on a loopback port.

``live`` is module-scoped: each test module gets its own small tenant (seed 42, 60 patients,
2 practices) on a manual clock fixed at Tuesday 2026-11-24 15:00 UTC (09:00 in practice 1's
America/Chicago); ``fhir_live`` is one such tenant shared by the Connector's test modules. The
tenant and the helpers that drive it live in ``tests/support/sandbox.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.support.sandbox import ANCHOR, LiveTenant, start_live

from carecloud_sandbox.config import SandboxConfig


@pytest.fixture(scope="module")
def live() -> Iterator[LiveTenant]:
    """A fresh small tenant per test module."""
    # 60 visits a patient keeps the small tenant's schedules busy (thousands of rows to page).
    config = SandboxConfig(
        seed=42, patients=60, practices=2, anchor=ANCHOR, appointments_per_patient=60
    )
    tenant, stop = start_live(config)
    yield tenant
    stop()


@pytest.fixture(scope="module")
def token(live: LiveTenant) -> str:
    """An access token for practice 1 with every privilege."""
    return live.token(0)


@pytest.fixture
def api(live: LiveTenant, token: str) -> Iterator[httpx.Client]:
    """An httpx client for practice 1, authenticated."""
    with live.client(token) as c:
        yield c


@pytest.fixture(scope="session")
def fhir_http() -> Iterator[httpx.Client]:
    """One plain httpx client (creating a client costs ~50 ms of TLS setup)."""
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def fhir_live() -> Iterator[LiveTenant]:
    """One small tenant shared by the Connector test modules (same shape as ``live``); they
    only add rows, touch ``updated_at`` and move the clock forward, which none of them mind."""
    config = SandboxConfig(
        seed=42, patients=60, practices=2, anchor=ANCHOR, appointments_per_patient=60
    )
    tenant, stop = start_live(config)
    yield tenant
    stop()
