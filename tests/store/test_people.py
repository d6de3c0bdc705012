"""Users, challenges, sessions and the code outbox in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.people import SessionRecord, hash_password, verify_password
from carebridge.store.people import (
    InvalidUser,
    SqlPeople,
    UserExists,
    add_user,
    totp_seed,
    totp_slot,
)
from carebridge.store.schema import users, vault_secrets
from carebridge.store.tenants import UnknownTenant
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
VAULT = Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


async def _dee(engine: AsyncEngine, tenant: str = "ten_a", **overrides: object) -> str:
    fields: dict[str, object] = {
        "username": "dee",
        "password": "dee-pass-1",
        "scopes": {"patient.read", "claim.read"},
        "mfa_methods": ["totp", "email"],
        "email": "dee@example.org",
        "totp_seed": SEED,
        **overrides,
    }
    return await add_user(engine, VAULT, tenant_id=tenant, now=NOW, **fields)  # type: ignore[arg-type]


def test_password_hashes_are_salted_scrypt_with_their_parameters() -> None:
    first, second = hash_password("pw", n=2**10), hash_password("pw", n=2**10)
    assert first != second
    assert first.startswith("scrypt$1024$8$1$")
    assert verify_password("pw", first)
    assert not verify_password("pW", first)
    assert not verify_password("pw", "scrypt$1024$8$1$not-base64$x")
    assert not verify_password("pw", "md5$abc")


async def test_a_user_is_stored_with_a_password_hash_and_a_sealed_seed(
    seeded: AsyncEngine,
) -> None:
    user_id = await _dee(seeded)
    assert user_id.startswith("usr_")
    people = SqlPeople(seeded)
    user = await people.user_by_username("ten_a", "dee")
    assert user is not None
    assert user == await people.user("ten_a", user_id)
    assert user.scopes == {"patient.read", "claim.read"}
    assert user.mfa_methods == ("totp", "email")
    assert not user.disabled
    assert user.password_hash.startswith("scrypt$16384$8$1$")
    assert verify_password("dee-pass-1", user.password_hash)
    async with seeded.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(select(users))]
        rows += [tuple(r) for r in await conn.execute(select(vault_secrets))]
    assert not any("dee-pass-1" in str(v) or SEED in str(v) for row in rows for v in row)
    assert await totp_seed(seeded, VAULT, "ten_a", user_id) == SEED
    assert await totp_seed(seeded, VAULT, "ten_b", user_id) is None
    assert totp_slot(user_id) == f"user.{user_id}.totp"


async def test_users_are_per_tenant(seeded: AsyncEngine) -> None:
    await _dee(seeded)
    with pytest.raises(UserExists):
        await _dee(seeded, password="another")
    other = await _dee(seeded, "ten_b")
    people = SqlPeople(seeded)
    found = await people.user_by_username("ten_b", "dee")
    assert found is not None
    assert found.id == other
    assert await people.user("ten_a", other) is None
    with pytest.raises(UnknownTenant):
        await _dee(seeded, "ten_missing")


@pytest.mark.parametrize(
    "overrides",
    [
        {"mfa_methods": ["fax"]},
        {"mfa_methods": ["sms"]},  # no phone
        {"mfa_methods": ["email"], "email": None},
        {"mfa_methods": ["totp"], "totp_seed": None},
        {"password": ""},
    ],
)
async def test_a_user_that_cannot_sign_in_as_given_is_refused(
    seeded: AsyncEngine, overrides: dict[str, object]
) -> None:
    with pytest.raises(InvalidUser):
        await _dee(seeded, **overrides)
    assert await SqlPeople(seeded).user_by_username("ten_a", "dee") is None


async def test_failures_count_lock_and_reset(seeded: AsyncEngine) -> None:
    await _dee(seeded)
    people = SqlPeople(seeded)
    until = NOW + timedelta(minutes=15)

    async def reserve(tenant: str = "ten_a") -> tuple[bool, int, datetime | None]:
        got = await people.reserve_attempt(tenant, "dee", now=NOW, limit=3, lock_until=until)
        return got.granted, got.failures, got.locked_until

    assert [await reserve() for _ in range(2)] == [(True, 1, None), (True, 2, None)]
    assert await reserve("ten_b") == (True, 1, None)  # another tenant's name: its own count
    assert await reserve() == (True, 3, until)  # the last one allowed locks
    assert await reserve() == (False, 3, until)  # locked: refused, not counted
    await people.release_attempt("ten_a", "dee", unlock=True)
    assert await reserve() == (True, 3, until)
    await people.clear_attempts("ten_a", "dee")
    assert await reserve() == (True, 1, None)


async def test_a_challenge_is_chosen_counted_and_consumed_once(seeded: AsyncEngine) -> None:
    user_id = await _dee(seeded)
    people = SqlPeople(seeded)
    await people.create_challenge(
        "ten_a", user_id, "chl_1", now=NOW, expires_at=NOW + timedelta(minutes=5)
    )
    fresh = await people.challenge("chl_1")
    assert fresh is not None
    assert (fresh.tenant_id, fresh.user_id, fresh.method, fresh.attempts, fresh.used) == (
        "ten_a",
        user_id,
        None,
        0,
        False,
    )
    assert fresh.expires_at == NOW + timedelta(minutes=5)
    await people.choose_method("ten_b", "chl_1", "email", "h" * 64)  # wrong tenant: no effect
    await people.choose_method("ten_a", "chl_1", "email", "a" * 64)
    assert await people.reserve_code_attempt("ten_a", "chl_1", now=NOW, limit=5) == 1
    assert await people.reserve_code_attempt("ten_a", "chl_1", now=NOW, limit=5) == 2
    assert not await people.consume_challenge("ten_b", "chl_1", NOW)
    assert await people.consume_challenge("ten_a", "chl_1", NOW)
    assert not await people.consume_challenge("ten_a", "chl_1", NOW)
    spent = await people.challenge("chl_1")
    assert spent is not None
    assert (spent.method, spent.code_hash, spent.attempts, spent.used) == (
        "email",
        "a" * 64,
        2,
        True,
    )
    assert await people.challenge("chl_missing") is None


async def test_sessions_are_found_by_prefix_and_revoked_by_their_tenant(
    seeded: AsyncEngine,
) -> None:
    user_id = await _dee(seeded)
    people = SqlPeople(seeded)
    session = SessionRecord(
        id="ses_1",
        tenant_id="ten_a",
        user_id=user_id,
        prefix="abcdefghijkl",
        token_hash="f" * 64,
        scopes=frozenset({"patient.read"}),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=12),
        revoked=False,
    )
    await people.create_session(session)
    assert await people.session_by_prefix("abcdefghijkl") == session
    assert await people.session_by_prefix("zzzzzzzzzzzz") is None
    assert not await people.revoke_session("ten_b", "ses_1", NOW)
    assert await people.revoke_session("ten_a", "ses_1", NOW)
    assert not await people.revoke_session("ten_a", "ses_1", NOW)
    revoked = await people.session_by_prefix("abcdefghijkl")
    assert revoked is not None
    assert revoked.revoked


async def test_the_outbox_is_per_tenant_and_read_in_order(seeded: AsyncEngine) -> None:
    people = SqlPeople(seeded)
    await people.add_notification("ten_a", "sms", "555-0100", "Your carebridge code is 1", NOW)
    await people.add_notification("ten_b", "email", "b@example.org", "code 2", NOW)
    await people.add_notification("ten_a", "email", "a@example.org", "code 3", NOW)
    mine = await people.notifications("ten_a")
    assert [(n.channel, n.destination, n.body) for n in mine] == [
        ("sms", "555-0100", "Your carebridge code is 1"),
        ("email", "a@example.org", "code 3"),
    ]
    assert mine[0].created_at == NOW
    assert [n.body for n in await people.notifications("ten_a", after=mine[0].id)] == ["code 3"]
    assert [n.body for n in await people.notifications("ten_b")] == ["code 2"]
