"""Administration: tenants, API keys, users, the vault and the audit chain, as an operator.

Runs on the real store (SQLite in a temporary file) with an injected clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.errors import (
    BadRequest,
    ConfigError,
    InvalidScopes,
    NotFound,
    TenantExists,
    Unauthorized,
    UnknownTenant,
)
from carebridge.services.admin import (
    SHELL,
    Admin,
    KeySpec,
    Operator,
    OperatorGate,
    SecretSpec,
    TenantSpec,
    UserSpec,
)
from carebridge.services.records import authenticate
from carebridge.services.sessions import Issued, Locked, Sessions
from carebridge.store import migrate
from carebridge.store.adapters import SqlKeys
from carebridge.store.engine import create_engine
from carebridge.store.people import SqlPeople, totp_source
from carebridge.store.tenants import secrets_of
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault
from carebridge.wiring.admin import admin_over, using

pytestmark = pytest.mark.anyio
START = datetime(2026, 11, 25, 15, 0, 30, 250_000, tzinfo=UTC)
SETTINGS = {
    "base_url": "http://127.0.0.1:8701",
    "token_url": "http://127.0.0.1:8701/oauth2/access_token",
    "portal_api": "http://127.0.0.1:8701/portal/api",
}
SECRETS = {
    "v2.client_id": "ci-1",
    "v2.client_secret": "cs-1",
    "v2.refresh_token": "rt-1",
    "portal.username": "fd",
    "portal.password": "pw-1",
}
RING = KeyRing({"k1": bytes(KEY_BYTES)}, "k1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    admin: Admin
    sessions: Sessions
    engine: AsyncEngine
    clock: Clock


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    clock = Clock(START)
    vault = Vault(RING)
    admin = admin_over(engine, vault, clock=clock)
    for tenant in ("ten_a", "ten_b"):
        await admin.onboard(
            SHELL, TenantSpec(tenant, tenant.upper(), "carecloud", SETTINGS, SECRETS)
        )
    sessions = Sessions(SqlPeople(engine), totp_source(engine, vault), clock=clock)
    return World(admin, sessions, engine, clock)


async def _sign_in(world: World, tenant: str, username: str, password: str) -> Issued:
    issued = await world.sessions.start(tenant, username, password)
    assert isinstance(issued, Issued)
    return issued


# --- the operator -------------------------------------------------------------------------------


def test_the_operator_gate_admits_only_the_configured_token() -> None:
    gate = OperatorGate("op-token-1")
    assert gate.check("Bearer op-token-1") == Operator("token")
    assert gate.check("op-token-1") == Operator("token")
    for wrong in (None, "", "Bearer ", "Bearer op-token-2", "op-token-1x"):
        with pytest.raises(Unauthorized):
            gate.check(wrong)


def test_without_a_configured_token_nobody_is_an_operator() -> None:
    for given in (None, "", "Bearer anything"):
        with pytest.raises(Unauthorized):
            OperatorGate(None).check(given)
        with pytest.raises(Unauthorized):
            OperatorGate("").check(given)


# --- tenants ------------------------------------------------------------------------------------


async def test_onboarded_tenants_are_listed_and_shown_without_their_secrets(world: World) -> None:
    listed = await world.admin.list_tenants(SHELL)
    assert [t.id for t in listed] == ["ten_a", "ten_b"]
    shown = await world.admin.show_tenant(SHELL, "ten_a")
    assert (shown.name, shown.upstream, shown.disabled) == ("TEN_A", "carecloud", False)
    assert dict(shown.settings) == SETTINGS
    assert shown.secret_names == tuple(sorted(SECRETS))
    assert shown.created_at == START.replace(microsecond=0)
    assert not set(SECRETS.values()) & set(map(str, vars(shown).values()))


async def test_onboarding_answers_the_sealed_names_and_refuses_a_second_time(world: World) -> None:
    spec = TenantSpec("ten_c", "C", "carecloud", SETTINGS, SECRETS)
    done = await world.admin.onboard(SHELL, spec)
    assert done.sealed_secrets == tuple(sorted(SECRETS))
    assert "cs-1" not in repr(done) + repr(spec)
    with pytest.raises(TenantExists):
        await world.admin.onboard(SHELL, spec)


async def test_an_incomplete_profile_is_refused_before_anything_is_stored(world: World) -> None:
    with pytest.raises(ConfigError, match=r"settings\.base_url"):
        await world.admin.onboard(SHELL, TenantSpec("ten_c", "C", "carecloud", {}, SECRETS))
    with pytest.raises(ConfigError, match="unknown upstream"):
        await world.admin.onboard(SHELL, TenantSpec("ten_c", "C", "athena", SETTINGS, SECRETS))
    assert [t.id for t in await world.admin.list_tenants(SHELL)] == ["ten_a", "ten_b"]


async def test_an_unknown_tenant_is_named_as_such(world: World) -> None:
    with pytest.raises(UnknownTenant):
        await world.admin.show_tenant(SHELL, "ten_nobody")
    with pytest.raises(UnknownTenant):
        await world.admin.list_keys(SHELL, "ten_nobody")
    with pytest.raises(UnknownTenant):
        await world.admin.list_users(SHELL, "ten_nobody")
    with pytest.raises(UnknownTenant):
        await world.admin.mint_key(SHELL, KeySpec("ten_nobody", "patient.read"))


# --- API keys -----------------------------------------------------------------------------------


async def test_a_key_is_listed_by_prefix_and_stops_working_once_revoked(world: World) -> None:
    keys = SqlKeys(world.engine)
    made = await world.admin.mint_key(SHELL, KeySpec("ten_a", "patient.read,claim.write", "ci"))
    assert made.scopes == ("claim.write", "patient.read")
    assert made.key not in repr(made)
    principal = await authenticate(keys, f"Bearer {made.key}")
    assert (principal.id, principal.tenant_id) == (made.id, "ten_a")

    [listed] = await world.admin.list_keys(SHELL, "ten_a")
    assert (listed.id, listed.label, listed.revoked) == (made.id, "ci", False)
    assert made.key.startswith(f"cbk_{listed.prefix}_")
    assert listed.scopes == frozenset({"claim.write", "patient.read"})
    assert await world.admin.list_keys(SHELL, "ten_b") == []

    with pytest.raises(NotFound):  # another tenant's key looks absent
        await world.admin.revoke_key(SHELL, "ten_b", made.id)
    await world.admin.revoke_key(SHELL, "ten_a", made.id)
    with pytest.raises(NotFound):  # revoked already
        await world.admin.revoke_key(SHELL, "ten_a", made.id)
    [listed] = await world.admin.list_keys(SHELL, "ten_a")
    assert listed.revoked
    with pytest.raises(Unauthorized):
        await authenticate(keys, f"Bearer {made.key}")


async def test_unknown_scopes_mint_nothing(world: World) -> None:
    with pytest.raises(InvalidScopes):
        await world.admin.mint_key(SHELL, KeySpec("ten_a", "patient.delete"))
    with pytest.raises(InvalidScopes):
        await world.admin.mint_key(SHELL, KeySpec("ten_a", []))
    assert await world.admin.list_keys(SHELL, "ten_a") == []


# --- users --------------------------------------------------------------------------------------


async def test_an_added_user_gets_a_generated_password_and_a_totp_enrolment_once(
    world: World,
) -> None:
    added = await world.admin.add_user(
        SHELL, UserSpec("ten_a", "bo", "patient.read", ("totp", "totp"), email="bo@example.org")
    )
    assert added.mfa_methods == ("totp",)
    assert added.password is not None
    assert added.totp_uri is not None
    assert added.totp_uri.startswith("otpauth://totp/")
    assert added.password not in repr(added)
    [listed] = await world.admin.list_users(SHELL, "ten_a")
    assert (listed.id, listed.username, listed.scopes) == (added.id, "bo", ("patient.read",))
    assert listed.mfa_methods == ("totp",)
    assert "bo@example.org" not in repr(listed)
    assert await world.admin.list_users(SHELL, "ten_b") == []


async def test_a_chosen_password_is_not_answered_back(world: World) -> None:
    spec = UserSpec("ten_a", "ana", ["patient.read"], password="ana-Secret-1")
    added = await world.admin.add_user(SHELL, spec)
    assert (added.password, added.totp_uri) == (None, None)
    assert (await _sign_in(world, "ten_a", "ana", "ana-Secret-1")).tenant_id == "ten_a"


async def test_a_removed_user_cannot_sign_in_and_its_sessions_end(world: World) -> None:
    spec = UserSpec("ten_a", "ana", "patient.read", password="ana-Secret-1")
    await world.admin.add_user(SHELL, spec)
    issued = await _sign_in(world, "ten_a", "ana", "ana-Secret-1")
    assert await world.sessions.principal(issued.token) is not None
    with pytest.raises(NotFound):  # another tenant's user looks absent
        await world.admin.remove_user(SHELL, "ten_b", "ana")
    await world.admin.remove_user(SHELL, "ten_a", "ana")
    assert await world.sessions.principal(issued.token) is None
    with pytest.raises(Unauthorized):
        await world.sessions.start("ten_a", "ana", "ana-Secret-1")
    with pytest.raises(NotFound):
        await world.admin.remove_user(SHELL, "ten_a", "ana")
    # the name is free again
    await world.admin.add_user(SHELL, spec)


async def test_a_reset_sets_a_new_password_lifts_the_lockout_and_ends_sessions(
    world: World,
) -> None:
    await world.admin.add_user(
        SHELL, UserSpec("ten_a", "ana", "patient.read", password="ana-Secret-1")
    )
    issued = await _sign_in(world, "ten_a", "ana", "ana-Secret-1")
    for _ in range(4):
        with pytest.raises(Unauthorized):
            await world.sessions.start("ten_a", "ana", "wrong")
    with pytest.raises(Locked):
        await world.sessions.start("ten_a", "ana", "wrong")
    with pytest.raises(Locked):
        await world.sessions.start("ten_a", "ana", "ana-Secret-1")
    reset = await world.admin.reset_user(SHELL, "ten_a", "ana")
    assert reset.password is not None
    assert reset.password not in repr(reset)
    assert await world.sessions.principal(issued.token) is None
    with pytest.raises(Unauthorized):
        await world.sessions.start("ten_a", "ana", "ana-Secret-1")
    assert (await _sign_in(world, "ten_a", "ana", reset.password)).tenant_id == "ten_a"
    chosen = await world.admin.reset_user(SHELL, "ten_a", "ana", password="ana-Secret-2")
    assert chosen.password is None
    await _sign_in(world, "ten_a", "ana", "ana-Secret-2")
    with pytest.raises(NotFound):
        await world.admin.reset_user(SHELL, "ten_a", "nobody")


# --- the vault and the audit chain --------------------------------------------------------------


async def test_rotation_rewraps_under_the_new_primary_once(engine: AsyncEngine) -> None:
    old = admin_over(engine, Vault(RING))
    await old.onboard(SHELL, TenantSpec("ten_a", "A", "carecloud", SETTINGS, SECRETS))
    ring = RING.with_primary("k2", bytes(range(KEY_BYTES)))
    new = admin_over(engine, Vault(ring))
    first = await new.rotate_vault(SHELL)
    assert (first.rewrapped, first.primary) == (len(SECRETS), "k2")
    assert (await new.rotate_vault(SHELL)).rewrapped == 0


async def test_without_a_key_ring_what_needs_the_vault_is_a_config_error(
    engine: AsyncEngine,
) -> None:
    bare = admin_over(engine, None)
    with pytest.raises(ConfigError, match="CAREBRIDGE_VAULT_KEY"):
        await bare.onboard(SHELL, TenantSpec("ten_a", "A", "carecloud", SETTINGS, SECRETS))
    with pytest.raises(ConfigError, match="CAREBRIDGE_VAULT_KEY"):
        await bare.rotate_vault(SHELL)
    with pytest.raises(ConfigError, match="CAREBRIDGE_VAULT_KEY"):
        await bare.verify_audit(SHELL, "ten_a")
    assert await bare.list_tenants(SHELL) == []


async def test_one_command_opens_the_migrated_store_and_closes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    spec = TenantSpec("ten_a", "A", "carecloud", SETTINGS, SECRETS)
    await using(url, RING, lambda admin: admin.onboard(SHELL, spec))
    verified = await using(url, RING, lambda admin: admin.verify_audit(SHELL, "ten_a"))
    assert (verified.intact, verified.entries) == (True, 0)
    assert [t.id for t in await using(url, None, lambda admin: admin.list_tenants(SHELL))] == [
        "ten_a"
    ]


async def test_a_sealed_secret_replaces_the_slot_and_opens_only_for_its_tenant(
    world: World,
) -> None:
    spec = SecretSpec("ten_a", "portal.password", "pw-2")
    assert "pw-2" not in repr(spec)
    await world.admin.seal_secret(SHELL, spec)
    vault = Vault(RING)
    assert (await secrets_of(world.engine, vault, "ten_a"))["portal.password"] == "pw-2"
    assert (await secrets_of(world.engine, vault, "ten_b"))["portal.password"] == "pw-1"
    with pytest.raises(UnknownTenant):
        await world.admin.seal_secret(SHELL, SecretSpec("ten_nobody", "portal.password", "x"))
    with pytest.raises(BadRequest):
        await world.admin.seal_secret(SHELL, SecretSpec("ten_a", " ", "x"))
