"""Sign-in: password, lockout, the second factor (TOTP, text, e-mail), and session tokens.

Runs on the real store (SQLite in a temporary file) with an injected clock and injected codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.services.records import Unauthorized
from carebridge.services.sessions import (
    Challenge,
    InvalidMfaStep,
    Issued,
    Locked,
    Sessions,
    mask_email,
    mask_phone,
)
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.people import SqlPeople, add_user, totp_source
from carebridge.store.schema import tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
START = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PHONE = "+1 (555) 010-1234"
EMAIL = "bo@example.org"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    sessions: Sessions
    people: SqlPeople
    clock: Clock
    codes: Iterator[str]


def _codes() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"{n * 111111 % 1_000_000:06d}"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        for tenant in ("ten_a", "ten_b"):
            await conn.execute(
                tenants.insert().values(
                    id=tenant, name=tenant, upstream="carecloud", settings={}, created_at=START
                )
            )
    yield engine
    await engine.dispose()


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    vault = Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))
    # ana: password only; bo: every factor; cy: texts only, in the other tenant too
    await add_user(
        engine,
        vault,
        tenant_id="ten_a",
        username="ana",
        password="ana-pass-1",
        scopes={"patient.read", "appointment.read"},
        now=START,
    )
    await add_user(
        engine,
        vault,
        tenant_id="ten_a",
        username="bo",
        password="bo-pass-1",
        scopes={"patient.read"},
        mfa_methods=["sms", "totp", "email"],
        email=EMAIL,
        phone=PHONE,
        totp_seed=SEED,
        now=START,
    )
    for tenant in ("ten_a", "ten_b"):
        await add_user(
            engine,
            vault,
            tenant_id=tenant,
            username="cy",
            password=f"cy-pass-{tenant}",
            scopes={"claim.read"},
            mfa_methods=["sms"],
            phone="555-010-9876",
            now=START,
        )
    clock = Clock(START)
    codes = _codes()
    people = SqlPeople(engine)
    sessions = Sessions(
        people, totp_source(engine, vault), clock=clock, new_code=lambda: next(codes)
    )
    return World(sessions, people, clock, codes)


async def _challenge(world: World) -> str:
    started = await world.sessions.start("ten_a", "bo", "bo-pass-1")
    assert isinstance(started, Challenge)
    return started.challenge_id


async def _last_code(world: World, tenant: str = "ten_a") -> str:
    sent = await world.people.notifications(tenant)
    return sent[-1].body.rsplit(" ", 1)[-1]


async def test_a_user_without_mfa_gets_a_session_token_for_its_tenant_and_scopes(
    world: World,
) -> None:
    issued = await world.sessions.start("ten_a", "ana", "ana-pass-1")
    assert isinstance(issued, Issued)
    assert issued.token.startswith("cbs_")
    assert issued.expires_at == START + timedelta(hours=12)
    assert issued.scopes == {"patient.read", "appointment.read"}
    principal = await world.sessions.principal(issued.token)
    assert principal is not None
    assert principal.tenant_id == "ten_a"
    assert principal.id.startswith("ses_")
    assert principal.scopes == {"patient.read", "appointment.read"}


async def test_unknown_user_and_wrong_password_fail_alike(world: World) -> None:
    with pytest.raises(Unauthorized) as unknown:
        await world.sessions.start("ten_a", "nobody", "ana-pass-1")
    with pytest.raises(Unauthorized) as wrong:
        await world.sessions.start("ten_a", "ana", "not-it")
    with pytest.raises(Unauthorized) as other_tenant:
        await world.sessions.start("ten_b", "ana", "ana-pass-1")
    assert type(unknown.value) is type(wrong.value) is type(other_tenant.value) is Unauthorized
    assert str(unknown.value) == str(wrong.value) == str(other_tenant.value)
    assert "not-it" not in str(wrong.value)


async def test_the_fifth_failure_locks_the_user_for_fifteen_minutes(world: World) -> None:
    for _ in range(4):
        with pytest.raises(Unauthorized):
            await world.sessions.start("ten_a", "ana", "wrong")
    with pytest.raises(Locked) as locked:
        await world.sessions.start("ten_a", "ana", "wrong")
    assert locked.value.retry_after == 15 * 60
    world.clock.advance(minutes=10)
    with pytest.raises(Locked) as still:
        await world.sessions.start("ten_a", "ana", "ana-pass-1")
    assert still.value.retry_after == 5 * 60
    world.clock.advance(minutes=5)
    assert isinstance(await world.sessions.start("ten_a", "ana", "ana-pass-1"), Issued)


async def test_a_sign_in_restarts_the_failure_count(world: World) -> None:
    for _ in range(4):
        with pytest.raises(Unauthorized):
            await world.sessions.start("ten_a", "ana", "wrong")
    assert isinstance(await world.sessions.start("ten_a", "ana", "ana-pass-1"), Issued)
    for _ in range(4):
        with pytest.raises(Unauthorized):
            await world.sessions.start("ten_a", "ana", "wrong")
    assert isinstance(await world.sessions.start("ten_a", "ana", "ana-pass-1"), Issued)


async def test_mfa_users_get_a_five_minute_challenge_listing_their_methods(world: World) -> None:
    started = await world.sessions.start("ten_a", "bo", "bo-pass-1")
    assert isinstance(started, Challenge)
    assert started.methods == ("totp", "sms", "email")
    assert started.expires_at == START + timedelta(minutes=5)
    assert started.challenge_id.startswith("chl_")


async def test_totp_sends_nothing_and_accepts_the_current_and_previous_code(
    world: World,
) -> None:
    challenge = await _challenge(world)
    sent = await world.sessions.choose(challenge, "totp")
    assert sent.destination is None
    assert await world.people.notifications("ten_a") == []
    world.clock.advance(seconds=30)
    issued = await world.sessions.verify(challenge, pyotp.TOTP(SEED).at(START))
    assert issued.scopes == {"patient.read"}
    assert await world.sessions.principal(issued.token) is not None


async def test_a_totp_code_two_windows_old_is_refused(world: World) -> None:
    challenge = await _challenge(world)
    await world.sessions.choose(challenge, "totp")
    world.clock.advance(seconds=90)
    with pytest.raises(Unauthorized):
        await world.sessions.verify(challenge, pyotp.TOTP(SEED).at(START))


async def test_a_texted_code_goes_to_the_outbox_and_only_its_hash_is_kept(world: World) -> None:
    challenge = await _challenge(world)
    sent = await world.sessions.choose(challenge, "sms")
    assert sent.destination == "***-***-1234"
    [note] = await world.people.notifications("ten_a")
    assert (note.channel, note.destination) == ("sms", PHONE)
    assert note.body == "Your carebridge code is 111111"
    stored = await world.people.challenge(challenge)
    assert stored is not None
    assert stored.code_hash is not None
    assert "111111" not in stored.code_hash
    assert isinstance(await world.sessions.verify(challenge, "111111"), Issued)


async def test_an_emailed_code_signs_in(world: World) -> None:
    challenge = await _challenge(world)
    sent = await world.sessions.choose(challenge, "email")
    assert sent.destination == "b***@example.org"
    [note] = await world.people.notifications("ten_a")
    assert (note.channel, note.destination) == ("email", EMAIL)
    assert isinstance(await world.sessions.verify(challenge, await _last_code(world)), Issued)


async def test_choosing_again_replaces_the_code(world: World) -> None:
    challenge = await _challenge(world)
    await world.sessions.choose(challenge, "sms")
    first = await _last_code(world)
    await world.sessions.choose(challenge, "email")
    with pytest.raises(Unauthorized):
        await world.sessions.verify(challenge, first)
    assert isinstance(await world.sessions.verify(challenge, await _last_code(world)), Issued)


async def test_a_method_not_enrolled_or_not_chosen_is_invalid(world: World) -> None:
    started = await world.sessions.start("ten_a", "cy", "cy-pass-ten_a")
    assert isinstance(started, Challenge)
    assert started.methods == ("sms",)
    with pytest.raises(InvalidMfaStep):
        await world.sessions.choose(started.challenge_id, "totp")
    with pytest.raises(InvalidMfaStep):
        await world.sessions.choose(started.challenge_id, "carrier-pigeon")
    with pytest.raises(InvalidMfaStep):
        await world.sessions.verify(started.challenge_id, "123456")


async def test_five_wrong_codes_spend_the_challenge(world: World) -> None:
    challenge = await _challenge(world)
    await world.sessions.choose(challenge, "sms")
    code = await _last_code(world)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await world.sessions.verify(challenge, "000000")
    with pytest.raises(Unauthorized):
        await world.sessions.verify(challenge, code)
    with pytest.raises(Unauthorized):
        await world.sessions.choose(challenge, "sms")


async def test_spent_challenges_count_toward_the_lockout(world: World) -> None:
    for _ in range(5):
        challenge = await _challenge(world)
        await world.sessions.choose(challenge, "totp")
        for _ in range(4):
            with pytest.raises(Unauthorized):
                await world.sessions.verify(challenge, "000000")
        with pytest.raises(Unauthorized):
            await world.sessions.verify(challenge, "000000")
    with pytest.raises(Locked):
        await world.sessions.start("ten_a", "bo", "bo-pass-1")


async def test_an_expired_challenge_is_refused(world: World) -> None:
    challenge = await _challenge(world)
    await world.sessions.choose(challenge, "sms")
    code = await _last_code(world)
    world.clock.advance(minutes=5)
    with pytest.raises(Unauthorized):
        await world.sessions.verify(challenge, code)
    with pytest.raises(Unauthorized):
        await world.sessions.choose(challenge, "email")


async def test_a_challenge_signs_in_once(world: World) -> None:
    challenge = await _challenge(world)
    await world.sessions.choose(challenge, "sms")
    code = await _last_code(world)
    await world.sessions.verify(challenge, code)
    with pytest.raises(Unauthorized):
        await world.sessions.verify(challenge, code)
    with pytest.raises(Unauthorized):
        await world.sessions.verify("chl_unknown", code)


async def test_each_tenant_codes_go_to_its_own_outbox(world: World) -> None:
    started = await world.sessions.start("ten_b", "cy", "cy-pass-ten_b")
    assert isinstance(started, Challenge)
    await world.sessions.choose(started.challenge_id, "sms")
    assert await world.people.notifications("ten_a") == []
    issued = await world.sessions.verify(started.challenge_id, await _last_code(world, "ten_b"))
    assert issued.tenant_id == "ten_b"
    principal = await world.sessions.principal(issued.token)
    assert principal is not None
    assert principal.tenant_id == "ten_b"


async def test_a_session_ends_at_expiry_or_revocation(world: World) -> None:
    issued = await world.sessions.start("ten_a", "ana", "ana-pass-1")
    assert isinstance(issued, Issued)
    world.clock.advance(hours=11, minutes=59)
    assert await world.sessions.principal(issued.token) is not None
    world.clock.advance(minutes=1)
    assert await world.sessions.principal(issued.token) is None

    world.clock.now = START
    other = await world.sessions.start("ten_a", "ana", "ana-pass-1")
    assert isinstance(other, Issued)
    assert await world.sessions.revoke(other.token)
    assert await world.sessions.principal(other.token) is None
    assert not await world.sessions.revoke(other.token)


async def test_forged_or_malformed_tokens_have_no_principal(world: World) -> None:
    issued = await world.sessions.start("ten_a", "ana", "ana-pass-1")
    assert isinstance(issued, Issued)
    forged = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    assert await world.sessions.principal(forged) is None
    assert await world.sessions.principal("cbs_short") is None
    assert await world.sessions.principal("") is None
    assert not await world.sessions.revoke(forged)


def test_destinations_are_masked() -> None:
    assert mask_phone("+1 (555) 010-1234") == "***-***-1234"
    assert mask_email("jane.doe@example.org") == "j***@example.org"
