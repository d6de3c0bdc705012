"""The administration use cases (:mod:`carebridge.services.admin`) composed over the store.

The CLI opens the store at a URL (migrated to the newest schema) for one command with
:func:`using`; the API's deployment builds its :class:`Admin` once with :func:`admin_over`. The
vault's key ring comes from the environment (:func:`key_ring`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.errors import ConfigError
from carebridge.services.admin import Admin
from carebridge.services.admin import NewKey as NewKey
from carebridge.store import migrate
from carebridge.store.audit import SqlAuditChain
from carebridge.store.engine import create_engine
from carebridge.store.people import SqlUsers
from carebridge.store.tenants import SqlKeyAdmin, SqlTenants, SqlVault
from carebridge.store.vault import KeyRing as KeyRing
from carebridge.store.vault import Vault
from carebridge.wiring.carecloud import check_profile

DEFAULT_DATABASE = "sqlite:///carebridge.db"
ENV_DATABASE = "CAREBRIDGE_DATABASE_URL"

T = TypeVar("T")


def database_url(explicit: str | None = None) -> str:
    """The store URL: the argument, else ``CAREBRIDGE_DATABASE_URL``, else ``carebridge.db``."""
    return explicit or os.environ.get(ENV_DATABASE) or DEFAULT_DATABASE


def key_ring(environ: Mapping[str, str] | None = None) -> KeyRing:
    """The vault's key ring from ``CAREBRIDGE_VAULT_KEY`` (or ``CAREBRIDGE_VAULT_KEY_FILE``).

    Raises:
        ConfigError: neither is set, or the key does not parse.
    """
    return KeyRing.from_env(environ)


def parse_key_ring(text: str) -> KeyRing:
    """A key ring from its text form (a key file's content)."""
    return KeyRing.parse(text)


def new_key_ring(kid: str = "k1") -> KeyRing:
    """A ring with one fresh random key (``carebridge vault new-key``, ``carebridge run``)."""
    return KeyRing.generate(kid)


def check_tenant(upstream: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` unless the upstream is known and its profile complete."""
    if upstream != "carecloud":
        raise ConfigError(f"unknown upstream {upstream!r}: carecloud is the one supported")
    check_profile(settings, secrets)


def _now() -> datetime:
    return datetime.now(UTC)


def admin_over(
    engine: AsyncEngine, vault: Vault | None, *, clock: Callable[[], datetime] = _now
) -> Admin:
    """The administration use cases over one store (``vault`` None: no key ring configured;
    what needs one raises :class:`ConfigError`)."""
    return Admin(
        tenants=SqlTenants(engine, vault),
        keys=SqlKeyAdmin(engine),
        users=SqlUsers(engine, vault),
        vault=SqlVault(engine, vault),
        audit=SqlAuditChain(engine, vault),
        check_profile=check_tenant,
        clock=clock,
    )


@asynccontextmanager
async def open_admin(url: str, ring: KeyRing | None = None) -> AsyncIterator[Admin]:
    """The administration use cases over the store at ``url``, migrated first; closed after."""
    await anyio.to_thread.run_sync(migrate.upgrade, url)
    engine = create_engine(url)
    try:
        yield admin_over(engine, None if ring is None else Vault(ring))
    finally:
        await engine.dispose()


async def using(url: str, ring: KeyRing | None, use: Callable[[Admin], Awaitable[T]]) -> T:
    """Run one administration use case over the store at ``url`` (one CLI command)."""
    async with open_admin(url, ring) as admin:
        return await use(admin)
