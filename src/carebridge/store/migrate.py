"""Run the store's Alembic migrations on a database URL, without an ``alembic.ini``.

URLs are the store's: ``sqlite:///path.db`` (the embedded default; WAL is switched on) or
``postgresql://user@host/db``. Async driver names (``+aiosqlite``, ``+psycopg``) are accepted
and mapped to their sync twins for the migration run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url

MIGRATIONS = Path(__file__).with_name("migrations")


def sync_url(url: str) -> str:
    """The synchronous form of a store URL (migrations run synchronously)."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}.get(parsed.get_backend_name())
    if driver is None:
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def engine_for(url: str) -> Engine:
    """A synchronous engine; SQLite files get WAL and foreign keys on."""
    engine = create_engine(sync_url(url))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, record: object) -> None:
            del record
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _migrate(url: str, step: Callable[[Config], None]) -> None:
    """Run one Alembic command over the database, in one transaction."""
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            step(config)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    _migrate(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    _migrate(url, lambda config: command.downgrade(config, revision))


def current(url: str) -> str | None:
    """The database's revision, or None before the first migration."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision in the code."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise RuntimeError("no migrations found")
    return revision
