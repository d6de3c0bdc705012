"""Tenants, their sealed upstream credentials, and their API keys, in the store.

Every function takes the tenant id and filters by it; a key or secret of another tenant is never
returned. Secrets are sealed by the vault before they reach a row and opened only on request.

:class:`SqlTenants`, :class:`SqlKeyAdmin` and :class:`SqlVault` are these functions behind the
administration ports (:mod:`carebridge.ports.tenants`, :mod:`carebridge.ports.keys`,
:mod:`carebridge.ports.vault`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.errors import TenantExists as TenantExists
from carebridge.errors import UnknownTenant as UnknownTenant
from carebridge.ports.keys import KeyInfo
from carebridge.ports.tenants import TenantRecord
from carebridge.store.engine import commit_one, read_all, read_first
from carebridge.store.schema import GENERATION_KEYS, api_keys, counters, tenants, vault_secrets
from carebridge.store.vault import Sealed, Vault, needs_vault


@dataclass(frozen=True)
class StoredKey:
    """An API key as the store knows it: never the key itself."""

    id: str
    tenant_id: str
    prefix: str
    secret_hash: str
    scopes: frozenset[str]
    label: str
    revoked: bool


async def add_tenant(
    engine: AsyncEngine,
    vault: Vault,
    *,
    tenant_id: str,
    name: str,
    upstream: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    now: datetime,
) -> None:
    """Onboard a tenant with its settings and sealed secrets, in one transaction."""
    try:
        async with engine.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id=tenant_id,
                    name=name,
                    upstream=upstream,
                    settings=dict(settings),
                    created_at=now,
                )
            )
            for slot, secret in secrets.items():
                await put_secret_in(conn, vault, tenant_id, slot, secret, now=now)
    except IntegrityError:
        raise TenantExists(f"tenant {tenant_id!r} already exists") from None


async def tenant_ids(engine: AsyncEngine) -> list[str]:
    """Every enabled tenant's id, in order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(tenants.c.id).where(tenants.c.disabled_at.is_(None)).order_by(tenants.c.id)
        )
        return [str(r[0]) for r in rows]


async def tenant_settings(engine: AsyncEngine, tenant_id: str) -> dict[str, Any]:
    """A tenant's settings (no secrets)."""
    row = await read_first(engine, select(tenants.c.settings).where(tenants.c.id == tenant_id))
    if row is None:
        raise UnknownTenant(f"no tenant {tenant_id!r}")
    return dict(row[0])


async def put_secret(
    engine: AsyncEngine, vault: Vault, tenant_id: str, slot: str, secret: str, *, now: datetime
) -> None:
    """Seal and store (or replace) one secret of a tenant, e.g. a rotated refresh token."""
    async with engine.begin() as conn:
        await put_secret_in(conn, vault, tenant_id, slot, secret, now=now)


async def put_secret_in(
    conn: AsyncConnection,
    vault: Vault,
    tenant_id: str,
    slot: str,
    secret: str,
    *,
    now: datetime,
) -> None:
    """:func:`put_secret` in the caller's transaction (a secret stored with its owner's row)."""
    sealed = vault.seal(tenant_id, slot, secret)
    changed = await conn.execute(
        update(vault_secrets)
        .where(vault_secrets.c.tenant_id == tenant_id, vault_secrets.c.name == slot)
        .values(sealed=sealed.to_text(), kid=sealed.kid, updated_at=now)
    )
    if changed.rowcount == 0:
        await conn.execute(
            vault_secrets.insert().values(
                tenant_id=tenant_id,
                name=slot,
                sealed=sealed.to_text(),
                kid=sealed.kid,
                updated_at=now,
            )
        )


async def secrets_of(engine: AsyncEngine, vault: Vault, tenant_id: str) -> dict[str, str]:
    """Every secret of a tenant, opened (for building its upstream connection)."""
    rows = await read_all(
        engine,
        select(vault_secrets.c.name, vault_secrets.c.sealed).where(
            vault_secrets.c.tenant_id == tenant_id
        ),
    )
    return {
        name: vault.open_text(tenant_id, name, Sealed.from_text(sealed)) for name, sealed in rows
    }


async def rotate_vault(engine: AsyncEngine, vault: Vault, *, now: datetime) -> int:
    """Re-wrap every secret whose key is not the primary; returns how many changed.

    Each row is re-wrapped in its own short transaction, so the API keeps reading secrets while
    a rotation runs (old and new key ids both open until the old key is dropped).
    """
    stale = await read_all(
        engine,
        select(vault_secrets.c.tenant_id, vault_secrets.c.name, vault_secrets.c.sealed).where(
            vault_secrets.c.kid != vault.ring.primary
        ),
    )
    for tenant_id, name, text in stale:
        rewrapped = vault.rewrap(Sealed.from_text(text))
        await commit_one(
            engine,
            update(vault_secrets)
            .where(vault_secrets.c.tenant_id == tenant_id, vault_secrets.c.name == name)
            .values(sealed=rewrapped.to_text(), kid=rewrapped.kid, updated_at=now),
        )
    return len(stale)


async def add_key(
    engine: AsyncEngine,
    *,
    key_id: str,
    tenant_id: str,
    prefix: str,
    secret_hash: str,
    scopes: frozenset[str],
    label: str,
    now: datetime,
) -> None:
    """Store an API key's hash and scopes."""
    async with engine.begin() as conn:
        exists = (await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first()
        if exists is None:
            raise UnknownTenant(f"no tenant {tenant_id!r}")
        await conn.execute(
            api_keys.insert().values(
                id=key_id,
                tenant_id=tenant_id,
                prefix=prefix,
                secret_hash=secret_hash,
                scopes=sorted(scopes),
                label=label,
                created_at=now,
            )
        )


async def key_by_prefix(engine: AsyncEngine, prefix: str) -> StoredKey | None:
    """The key with this prefix (the caller verifies the secret against the hash)."""
    row = await read_first(engine, select(api_keys).where(api_keys.c.prefix == prefix))
    if row is None:
        return None
    return StoredKey(
        id=row.id,
        tenant_id=row.tenant_id,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        scopes=frozenset(row.scopes),
        label=row.label,
        revoked=row.revoked_at is not None,
    )


async def key_and_generation(engine: AsyncEngine, prefix: str) -> tuple[StoredKey, int] | None:
    """The key with this prefix and its tenant's key generation, read in one statement (one
    snapshot): a revocation committed after it bumps the generation past the one returned."""
    generation = (
        select(counters.c.value)
        .where(counters.c.tenant_id == api_keys.c.tenant_id, counters.c.name == GENERATION_KEYS)
        .scalar_subquery()
    )
    row = await read_first(
        engine, select(api_keys, generation.label("generation")).where(api_keys.c.prefix == prefix)
    )
    if row is None:
        return None
    key = StoredKey(
        id=row.id,
        tenant_id=row.tenant_id,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        scopes=frozenset(row.scopes),
        label=row.label,
        revoked=row.revoked_at is not None,
    )
    return key, int(row.generation or 0)


async def revoke_key(engine: AsyncEngine, tenant_id: str, key_id: str, *, now: datetime) -> bool:
    """Revoke a tenant's key; False when the tenant has no such key. The same transaction bumps
    the tenant's key generation (a trigger, migration 0008), so every process's key cache drops
    the key at its next request."""
    result = await commit_one(
        engine,
        update(api_keys)
        .where(
            api_keys.c.tenant_id == tenant_id,
            api_keys.c.id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now),
    )
    return bool(result.rowcount)


# --- behind the administration ports ------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    """SQLite hands instants back naive; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SqlTenants:
    """``TenantStore`` over the tenants and vault_secrets tables.

    Args:
        engine: the store.
        vault: seals onboarded secrets; None when no key ring is configured (onboarding then
            raises :class:`ConfigError`; listing still works).
    """

    def __init__(self, engine: AsyncEngine, vault: Vault | None) -> None:
        self.engine = engine
        self.vault = vault

    async def add_tenant(
        self,
        *,
        tenant_id: str,
        name: str,
        upstream: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        now: datetime,
    ) -> None:
        await add_tenant(
            self.engine,
            needs_vault(self.vault),
            tenant_id=tenant_id,
            name=name,
            upstream=upstream,
            settings=settings,
            secrets=secrets,
            now=now,
        )

    async def tenants(self) -> list[TenantRecord]:
        return await self._select(None)

    async def tenant(self, tenant_id: str) -> TenantRecord | None:
        found = await self._select(tenant_id)
        return found[0] if found else None

    async def _select(self, tenant_id: str | None) -> list[TenantRecord]:
        query = select(tenants).order_by(tenants.c.id)
        slots = select(vault_secrets.c.tenant_id, vault_secrets.c.name).order_by(
            vault_secrets.c.tenant_id, vault_secrets.c.name
        )
        if tenant_id is not None:
            query = query.where(tenants.c.id == tenant_id)
            slots = slots.where(vault_secrets.c.tenant_id == tenant_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            held: dict[str, list[str]] = {}
            for owner, slot in (await conn.execute(slots)).all():
                held.setdefault(str(owner), []).append(str(slot))
        return [
            TenantRecord(
                id=row.id,
                name=row.name,
                upstream=row.upstream,
                settings=dict(row.settings),
                created_at=_aware(row.created_at),
                disabled=row.disabled_at is not None,
                secret_names=tuple(held.get(row.id, ())),
            )
            for row in rows
        ]


class SqlKeyAdmin:
    """``KeyAdmin`` over the api_keys table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add_key(
        self,
        *,
        key_id: str,
        tenant_id: str,
        prefix: str,
        secret_hash: str,
        scopes: frozenset[str],
        label: str,
        now: datetime,
    ) -> None:
        await add_key(
            self.engine,
            key_id=key_id,
            tenant_id=tenant_id,
            prefix=prefix,
            secret_hash=secret_hash,
            scopes=scopes,
            label=label,
            now=now,
        )

    async def keys(self, tenant_id: str) -> list[KeyInfo]:
        rows = await read_all(
            self.engine,
            select(api_keys)
            .where(api_keys.c.tenant_id == tenant_id)
            .order_by(api_keys.c.created_at, api_keys.c.id),
        )
        return [
            KeyInfo(
                id=row.id,
                tenant_id=row.tenant_id,
                prefix=row.prefix,
                scopes=frozenset(row.scopes),
                label=row.label,
                created_at=_aware(row.created_at),
                revoked=row.revoked_at is not None,
            )
            for row in rows
        ]

    async def revoke_key(self, tenant_id: str, key_id: str, *, now: datetime) -> bool:
        return await revoke_key(self.engine, tenant_id, key_id, now=now)


class SqlVault:
    """``SecretVault`` over the vault_secrets table."""

    def __init__(self, engine: AsyncEngine, vault: Vault | None) -> None:
        self.engine = engine
        self.vault = vault

    @property
    def primary(self) -> str:
        return needs_vault(self.vault).ring.primary

    async def seal(self, tenant_id: str, slot: str, secret: str, *, now: datetime) -> None:
        await put_secret(self.engine, needs_vault(self.vault), tenant_id, slot, secret, now=now)

    async def rotate(self, *, now: datetime) -> int:
        return await rotate_vault(self.engine, needs_vault(self.vault), now=now)
