"""Tenants, sealed secrets, vault rotation and API keys in the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.services.keys import mint, parse_scopes, verify
from carebridge.store import migrate
from carebridge.store import tenants as repo
from carebridge.store.engine import create_engine
from carebridge.store.schema import vault_secrets
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault, VaultError

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SECRETS = {"v2.client_secret": "cs-123", "v2.refresh_token": "rt-456", "portal.password": "pw-789"}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
def vault() -> Vault:
    return Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


async def _onboard(engine: AsyncEngine, vault: Vault, tenant: str = "ten_a") -> None:
    await repo.add_tenant(
        engine,
        vault,
        tenant_id=tenant,
        name="Maple",
        upstream="carecloud",
        settings={"api_base": "http://127.0.0.1:8700"},
        secrets=SECRETS,
        now=NOW,
    )


async def test_secrets_are_sealed_at_rest_and_open_for_their_tenant(
    engine: AsyncEngine, vault: Vault
) -> None:
    await _onboard(engine, vault)
    async with engine.connect() as conn:
        stored = [r[0] for r in await conn.execute(select(vault_secrets.c.sealed))]
    assert len(stored) == 3
    assert not any(secret in text for text in stored for secret in SECRETS.values())
    assert await repo.secrets_of(engine, vault, "ten_a") == SECRETS
    assert await repo.tenant_settings(engine, "ten_a") == {"api_base": "http://127.0.0.1:8700"}


async def test_a_second_onboarding_is_refused_and_writes_nothing(
    engine: AsyncEngine, vault: Vault
) -> None:
    await _onboard(engine, vault)
    with pytest.raises(repo.TenantExists):
        await _onboard(engine, vault)
    assert await repo.secrets_of(engine, vault, "ten_a") == SECRETS
    with pytest.raises(repo.UnknownTenant):
        await repo.tenant_settings(engine, "ten_missing")


async def test_a_rotated_refresh_token_replaces_the_old_one(
    engine: AsyncEngine, vault: Vault
) -> None:
    await _onboard(engine, vault)
    await repo.put_secret(engine, vault, "ten_a", "v2.refresh_token", "rt-new", now=NOW)
    assert (await repo.secrets_of(engine, vault, "ten_a"))["v2.refresh_token"] == "rt-new"


async def test_vault_rotation_rewraps_every_secret_and_retires_the_old_key(
    engine: AsyncEngine, vault: Vault
) -> None:
    await _onboard(engine, vault, "ten_a")
    await _onboard(engine, vault, "ten_b")
    ring = vault.ring.with_primary("k2", bytes(range(KEY_BYTES)))
    rotated = Vault(ring)
    assert await repo.rotate_vault(engine, rotated, now=NOW) == 6
    assert await repo.rotate_vault(engine, rotated, now=NOW) == 0
    only_new = Vault(KeyRing({"k2": ring.keys["k2"]}, "k2"))
    assert await repo.secrets_of(engine, only_new, "ten_b") == SECRETS
    with pytest.raises(VaultError):
        await repo.secrets_of(engine, vault, "ten_a")  # the retired key opens nothing now


async def test_api_keys_are_stored_hashed_and_revocable(engine: AsyncEngine, vault: Vault) -> None:
    await _onboard(engine, vault)
    key = mint()
    await repo.add_key(
        engine,
        key_id="key_1",
        tenant_id="ten_a",
        prefix=key.prefix,
        secret_hash=key.secret_hash,
        scopes=parse_scopes("patient.read,appointment.write"),
        label="front desk",
        now=NOW,
    )
    stored = await repo.key_by_prefix(engine, key.prefix)
    assert stored is not None
    assert verify(key.display, stored.secret_hash)
    assert stored.scopes == {"patient.read", "appointment.write"}
    assert not stored.revoked
    assert not await repo.revoke_key(engine, "ten_other", "key_1", now=NOW)  # another tenant's id
    assert await repo.revoke_key(engine, "ten_a", "key_1", now=NOW)
    again = await repo.key_by_prefix(engine, key.prefix)
    assert again is not None
    assert again.revoked
    assert await repo.key_by_prefix(engine, "nosuchprefix") is None
    with pytest.raises(repo.UnknownTenant):
        await repo.add_key(
            engine,
            key_id="key_2",
            tenant_id="ten_missing",
            prefix="p" * 12,
            secret_hash="x",
            scopes=frozenset({"admin"}),
            label="",
            now=NOW,
        )
