"""Administration use cases, wired to the store: onboarding, keys, vault rotation, audit checks.

The CLI (and later the admin routes) call these; each opens the store at a URL, migrates it to
the newest schema, and closes it again.
"""

from __future__ import annotations

import os
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread

from carebridge.errors import ConfigError
from carebridge.services import keys
from carebridge.store import migrate
from carebridge.store import tenants as repo
from carebridge.store.audit import Verification, verify
from carebridge.store.engine import create_engine
from carebridge.store.vault import KeyRing, Vault
from carebridge.wiring.carecloud import check_profile

DEFAULT_DATABASE = "sqlite:///carebridge.db"
ENV_DATABASE = "CAREBRIDGE_DATABASE_URL"


def database_url(explicit: str | None = None) -> str:
    """The store URL: the argument, else ``CAREBRIDGE_DATABASE_URL``, else ``carebridge.db``."""
    return explicit or os.environ.get(ENV_DATABASE) or DEFAULT_DATABASE


@dataclass(frozen=True)
class NewKey:
    """A key as shown once to whoever created it."""

    id: str
    tenant_id: str
    key: str
    scopes: tuple[str, ...]
    label: str


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def _migrated(url: str) -> Any:
    await anyio.to_thread.run_sync(migrate.upgrade, url)
    return create_engine(url)


async def onboard(
    url: str,
    ring: KeyRing,
    *,
    tenant_id: str,
    name: str,
    upstream: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
) -> None:
    """Add a tenant with its settings and sealed secrets (a complete upstream profile)."""
    check_tenant(upstream, settings, secrets)
    engine = await _migrated(url)
    try:
        await repo.add_tenant(
            engine,
            Vault(ring),
            tenant_id=tenant_id,
            name=name,
            upstream=upstream,
            settings=settings,
            secrets=secrets,
            now=_now(),
        )
    finally:
        await engine.dispose()


def check_tenant(upstream: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` unless the upstream is known and its profile complete."""
    if upstream != "carecloud":
        raise ConfigError(f"unknown upstream {upstream!r}: carecloud is the one supported")
    check_profile(settings, secrets)


async def create_key(url: str, *, tenant_id: str, scopes: str, label: str = "") -> NewKey:
    """Mint an API key for a tenant; the key is in the result and nowhere else.

    Raises:
        carebridge.services.keys.InvalidScopes: unknown or no scopes.
        carebridge.store.tenants.UnknownTenant: no such tenant.
    """
    granted = keys.parse_scopes(scopes)
    minted = keys.mint()
    key_id = f"key_{random.token_hex(8)}"
    engine = await _migrated(url)
    try:
        await repo.add_key(
            engine,
            key_id=key_id,
            tenant_id=tenant_id,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=granted,
            label=label,
            now=_now(),
        )
    finally:
        await engine.dispose()
    return NewKey(key_id, tenant_id, minted.display, tuple(sorted(granted)), label)


async def rotate_vault(url: str, ring: KeyRing) -> int:
    """Re-wrap every secret under the ring's primary key; returns how many changed."""
    engine = await _migrated(url)
    try:
        return await repo.rotate_vault(engine, Vault(ring), now=_now())
    finally:
        await engine.dispose()


async def verify_audit(url: str, ring: KeyRing, tenant_id: str) -> Verification:
    """Walk a tenant's audit chain under its key from the vault."""
    engine = await _migrated(url)
    try:
        return await verify(engine, Vault(ring), tenant_id)
    finally:
        await engine.dispose()
