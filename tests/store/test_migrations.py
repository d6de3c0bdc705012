"""The store's migrations go up and down, and the result matches the schema in code, on SQLite
and (in CI) on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from carebridge.store import migrate
from carebridge.store.schema import metadata

TABLES = {
    "tenants",
    "vault_secrets",
    "api_keys",
    "entities",
    "crosswalk",
    "idempotency",
    "write_ledger",
    "audit_log",
    "users",
    "auth_challenges",
    "user_sessions",
    "notifications",
    "freshness",
    "counters",
    "events",
    "webhooks",
    "deliveries",
    "upstream_mfa",
    "sync_leases",
    "sync_marks",
    "sign_in_attempts",
    "audit_heads",
}


def _check_round_trip(url: str) -> None:
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    engine = migrate.engine_for(url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
            assert diff == [], diff
    finally:
        engine.dispose()
    migrate.downgrade(url)
    engine = migrate.engine_for(url)
    try:
        with engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    migrate.upgrade(url)  # and up again: downgrade left nothing behind
    assert migrate.current(url) == migrate.head()


def test_sqlite_migrates_up_and_down(tmp_path: Path) -> None:
    _check_round_trip(f"sqlite:///{tmp_path / 'store.db'}")


def test_async_driver_urls_are_accepted() -> None:
    assert migrate.sync_url("sqlite+aiosqlite:///x.db") == "sqlite:///x.db"
    assert migrate.sync_url("postgresql+asyncpg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="unsupported"):
        migrate.sync_url("mysql://u@h/db")


@pytest.mark.postgres
def test_postgresql_migrates_up_and_down(pg_url: str) -> None:
    _check_round_trip(pg_url)
