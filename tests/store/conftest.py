"""Shared fixtures of the store tests: a migrated store on SQLite, and on PostgreSQL in CI (over
the root conftest's ``pg_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants

CREATED = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def seeded(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """A migrated store with tenants ``ten_a`` and ``ten_b``, on each database."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    migrate.upgrade(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        for tenant in ("ten_a", "ten_b"):
            await conn.execute(
                tenants.insert().values(
                    id=tenant, name=tenant, upstream="carecloud", settings={}, created_at=CREATED
                )
            )
    yield engine
    await engine.dispose()


@pytest.fixture
def engine(seeded: AsyncEngine) -> AsyncEngine:
    """The seeded store, by the name the store's tests give it (a module may define its own)."""
    return seeded
