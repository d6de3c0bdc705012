"""Users, MFA challenges, session tokens and the code outbox in the store.

Passwords are stored as salted scrypt hashes, codes and session tokens as SHA-256 hashes, TOTP
seeds sealed in the vault (``user.<id>.totp``). Every query filters by the tenant, except the
two look-ups by an unguessable handle (a challenge id, a session prefix) whose record names it.

:class:`SqlPeople` is the sign-in use case's ``UserStore``; :class:`SqlUsers` the operator's
``UserAdmin`` (add, list, remove, reset).

Counters that guard against guessing (sign-in failures, code attempts, the last TOTP step) change
only by one conditional statement each, so that concurrent requests, in one process or many,
cannot both pass the same check.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from sqlalchemy import and_, case, delete, literal, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Update

from carebridge.errors import InvalidUser as InvalidUser
from carebridge.errors import UserExists as UserExists
from carebridge.ports.people import (
    METHODS,
    Attempt,
    ChallengeRecord,
    NotificationRecord,
    SessionRecord,
    UserRecord,
    hash_password,
)
from carebridge.store.engine import commit_one, read_all, read_first
from carebridge.store.schema import (
    Instant,
    auth_challenges,
    notifications,
    sign_in_attempts,
    tenants,
    user_sessions,
    users,
    vault_secrets,
)
from carebridge.store.tenants import UnknownTenant, put_secret
from carebridge.store.vault import Sealed, Vault, needs_vault


def totp_slot(user_id: str) -> str:
    """The vault slot of a user's TOTP seed."""
    return f"user.{user_id}.totp"


def _aware(value: datetime) -> datetime:
    """SQLite hands instants back naive; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _maybe(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _utc(value: datetime) -> datetime:
    """Instants are compared in SQL: SQLite compares their text, so always write UTC."""
    return value.astimezone(UTC)


def username_key(username: str) -> str:
    """The key of a username's attempts: a hash, so arbitrary input (a password typed into the
    username field) is not stored as it was sent."""
    return hashlib.sha256(username.encode()).hexdigest()


def _user(row: Row[tuple[object, ...]]) -> UserRecord:
    m = row._mapping
    return UserRecord(
        id=m["id"],
        tenant_id=m["tenant_id"],
        username=m["username"],
        password_hash=m["password_hash"],
        scopes=frozenset(m["scopes"]),
        mfa_methods=tuple(m["mfa_methods"]),
        email=m["email"],
        phone=m["phone"],
        disabled=m["disabled_at"] is not None,
    )


async def add_user(
    engine: AsyncEngine,
    vault: Vault,
    *,
    tenant_id: str,
    username: str,
    password: str,
    scopes: Iterable[str],
    mfa_methods: Iterable[str] = (),
    email: str | None = None,
    phone: str | None = None,
    totp_seed: str | None = None,
    now: datetime,
) -> str:
    """Add a tenant's user; returns its id (``usr_...``).

    The password is stored as a salted scrypt hash and the TOTP seed sealed in the vault, so
    neither is readable from the database.

    Raises:
        InvalidUser: an unknown MFA method, or one enrolled without its email, phone or seed.
        UnknownTenant: no such tenant.
        UserExists: the tenant already has that username.
    """
    methods = tuple(dict.fromkeys(mfa_methods))
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise InvalidUser("unknown MFA methods: " + ", ".join(unknown))
    for method, contact in (("totp", totp_seed), ("sms", phone), ("email", email)):
        if method in methods and not contact:
            needed = {"totp": "a TOTP seed", "sms": "a phone number", "email": "an e-mail address"}
            raise InvalidUser(f"MFA method {method} needs {needed[method]}")
    if not username or not password:
        raise InvalidUser("a user needs a username and a password")
    password_hash = await anyio.to_thread.run_sync(hash_password, password)
    user_id = f"usr_{secrets.token_hex(8)}"
    try:
        async with engine.begin() as conn:
            known = (
                await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
            ).first()
            if known is None:
                raise UnknownTenant(f"no tenant {tenant_id!r}")
            await conn.execute(
                users.insert().values(
                    id=user_id,
                    tenant_id=tenant_id,
                    username=username,
                    password_hash=password_hash,
                    scopes=sorted(set(scopes)),
                    mfa_methods=list(methods),
                    email=email,
                    phone=phone,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise UserExists(f"tenant {tenant_id!r} already has that username") from None
    if "totp" in methods and totp_seed:
        try:
            await put_secret(engine, vault, tenant_id, totp_slot(user_id), totp_seed, now=now)
        except BaseException:
            await commit_one(
                engine, delete(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
            )
            raise
    return user_id


async def totp_seed(engine: AsyncEngine, vault: Vault, tenant_id: str, user_id: str) -> str | None:
    """A user's TOTP seed, opened; None when the user has none."""
    slot = totp_slot(user_id)
    row = await read_first(
        engine,
        select(vault_secrets.c.sealed).where(
            vault_secrets.c.tenant_id == tenant_id, vault_secrets.c.name == slot
        ),
    )
    return None if row is None else vault.open_text(tenant_id, slot, Sealed.from_text(row[0]))


def totp_source(engine: AsyncEngine, vault: Vault) -> Callable[[str, str], Awaitable[str | None]]:
    """The ``totp_secret`` callable of :class:`carebridge.services.sessions.Sessions`."""

    async def seed(tenant_id: str, user_id: str) -> str | None:
        return await totp_seed(engine, vault, tenant_id, user_id)

    return seed


class SqlPeople:
    """``UserStore`` over the users, auth_challenges, user_sessions and notifications tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # --- users ---------------------------------------------------------------------------------

    async def user_by_username(self, tenant_id: str, username: str) -> UserRecord | None:
        row = await read_first(
            self.engine,
            select(users).where(users.c.tenant_id == tenant_id, users.c.username == username),
        )
        return None if row is None else _user(row)

    async def user(self, tenant_id: str, user_id: str) -> UserRecord | None:
        row = await read_first(
            self.engine, select(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
        )
        return None if row is None else _user(row)

    async def claim_totp_step(self, tenant_id: str, user_id: str, step: int) -> bool:
        result = await commit_one(
            self.engine,
            update(users)
            .where(
                users.c.tenant_id == tenant_id,
                users.c.id == user_id,
                or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
            )
            .values(totp_last_step=step),
        )
        return bool(result.rowcount)

    # --- sign-in attempts, by (tenant, username) -----------------------------------------------

    async def reserve_attempt(
        self, tenant_id: str, username: str, *, now: datetime, limit: int, lock_until: datetime
    ) -> Attempt:
        now, lock_until = _utc(now), _utc(lock_until)
        t = sign_in_attempts.c
        expired = and_(t.locked_until.is_not(None), t.locked_until <= now)
        failures = case((expired, 1), else_=t.failures + 1)
        until = literal(lock_until, Instant)
        first = until if limit <= 1 else null()
        insert = _insert(self.engine).values(
            tenant_id=tenant_id,
            username_key=username_key(username),
            failures=1,
            locked_until=first,
            updated_at=now,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[t.tenant_id, t.username_key],
            set_={
                "failures": failures,
                "locked_until": case((failures >= limit, until), else_=null()),
                "updated_at": now,
            },
            where=or_(and_(t.locked_until.is_(None), t.failures < limit), expired),
        ).returning(t.failures, t.locked_until)
        async with self.engine.begin() as conn:
            row = (await conn.execute(upsert)).first()
            if row is not None:
                return Attempt(True, int(row[0]), _maybe(row[1]))
            held = (
                await conn.execute(
                    select(t.failures, t.locked_until).where(
                        t.tenant_id == tenant_id, t.username_key == username_key(username)
                    )
                )
            ).first()
        if held is None:  # cleared between the two statements: nothing holds the name
            return Attempt(False, 0, None)
        return Attempt(False, int(held[0]), _maybe(held[1]))

    async def release_attempt(self, tenant_id: str, username: str, *, unlock: bool) -> None:
        t = sign_in_attempts.c
        values: dict[str, Any] = {"failures": t.failures - 1}
        if unlock:
            values["locked_until"] = None
        await commit_one(
            self.engine,
            update(sign_in_attempts)
            .where(
                t.tenant_id == tenant_id,
                t.username_key == username_key(username),
                t.failures > 0,
            )
            .values(values),
        )

    async def clear_attempts(self, tenant_id: str, username: str) -> None:
        await commit_one(
            self.engine,
            delete(sign_in_attempts).where(
                sign_in_attempts.c.tenant_id == tenant_id,
                sign_in_attempts.c.username_key == username_key(username),
            ),
        )

    # --- challenges ----------------------------------------------------------------------------

    async def create_challenge(
        self,
        tenant_id: str,
        user_id: str,
        challenge_id: str,
        *,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await commit_one(
            self.engine,
            auth_challenges.insert().values(
                id=challenge_id,
                tenant_id=tenant_id,
                user_id=user_id,
                attempts=0,
                created_at=_utc(now),
                expires_at=_utc(expires_at),
            ),
        )

    async def challenge(self, challenge_id: str) -> ChallengeRecord | None:
        row = await read_first(
            self.engine, select(auth_challenges).where(auth_challenges.c.id == challenge_id)
        )
        if row is None:
            return None
        return ChallengeRecord(
            id=row.id,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            method=row.method,
            code_hash=row.code_hash,
            attempts=int(row.attempts),
            created_at=_aware(row.created_at),
            expires_at=_aware(row.expires_at),
            used=row.used_at is not None,
        )

    async def choose_method(
        self, tenant_id: str, challenge_id: str, method: str, code_hash: str | None
    ) -> None:
        await commit_one(
            self.engine,
            _open_challenge(tenant_id, challenge_id).values(method=method, code_hash=code_hash),
        )

    async def reserve_code_attempt(
        self, tenant_id: str, challenge_id: str, *, now: datetime, limit: int
    ) -> int | None:
        c = auth_challenges.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    _open_challenge(tenant_id, challenge_id)
                    .where(c.expires_at > _utc(now), c.attempts < limit)
                    .values(attempts=c.attempts + 1)
                    .returning(c.attempts)
                )
            ).first()
        return None if row is None else int(row[0])

    async def consume_challenge(self, tenant_id: str, challenge_id: str, now: datetime) -> bool:
        result = await commit_one(
            self.engine,
            _open_challenge(tenant_id, challenge_id).values(used_at=now),
        )
        return bool(result.rowcount)

    # --- sessions ------------------------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None:
        await commit_one(
            self.engine,
            user_sessions.insert().values(
                id=session.id,
                tenant_id=session.tenant_id,
                user_id=session.user_id,
                prefix=session.prefix,
                token_hash=session.token_hash,
                scopes=sorted(session.scopes),
                created_at=session.created_at,
                expires_at=session.expires_at,
            ),
        )

    async def session_by_prefix(self, prefix: str) -> SessionRecord | None:
        row = await read_first(
            self.engine, select(user_sessions).where(user_sessions.c.prefix == prefix)
        )
        if row is None:
            return None
        return SessionRecord(
            id=row.id,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            prefix=row.prefix,
            token_hash=row.token_hash,
            scopes=frozenset(row.scopes),
            created_at=_aware(row.created_at),
            expires_at=_aware(row.expires_at),
            revoked=row.revoked_at is not None,
        )

    async def revoke_session(self, tenant_id: str, session_id: str, now: datetime) -> bool:
        result = await commit_one(
            self.engine,
            update(user_sessions)
            .where(
                user_sessions.c.tenant_id == tenant_id,
                user_sessions.c.id == session_id,
                user_sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=now),
        )
        return bool(result.rowcount)

    # --- the code outbox -----------------------------------------------------------------------

    async def add_notification(
        self, tenant_id: str, channel: str, destination: str, body: str, now: datetime
    ) -> None:
        await commit_one(
            self.engine,
            notifications.insert().values(
                tenant_id=tenant_id,
                channel=channel,
                destination=destination,
                body=body,
                created_at=now,
            ),
        )

    async def notifications(
        self, tenant_id: str, *, after: int = 0, limit: int = 100
    ) -> list[NotificationRecord]:
        rows = await read_all(
            self.engine,
            select(notifications)
            .where(notifications.c.tenant_id == tenant_id, notifications.c.id > after)
            .order_by(notifications.c.id)
            .limit(limit),
        )
        return [
            NotificationRecord(
                id=int(r.id),
                tenant_id=r.tenant_id,
                channel=r.channel,
                destination=r.destination,
                body=r.body,
                created_at=_aware(r.created_at),
            )
            for r in rows
        ]


class SqlUsers:
    """``UserAdmin`` over the users table, with the sessions, challenges, sign-in attempts and
    TOTP seeds that hang from a user.

    Args:
        engine: the store.
        vault: seals TOTP seeds; None when no key ring is configured (adding a TOTP user then
            raises :class:`carebridge.errors.ConfigError`).
    """

    def __init__(self, engine: AsyncEngine, vault: Vault | None) -> None:
        self.engine = engine
        self.vault = vault

    async def add_user(
        self,
        *,
        tenant_id: str,
        username: str,
        password: str,
        scopes: frozenset[str],
        mfa_methods: tuple[str, ...],
        email: str | None,
        phone: str | None,
        totp_seed: str | None,
        now: datetime,
    ) -> str:
        return await add_user(
            self.engine,
            needs_vault(self.vault),
            tenant_id=tenant_id,
            username=username,
            password=password,
            scopes=scopes,
            mfa_methods=mfa_methods,
            email=email,
            phone=phone,
            totp_seed=totp_seed,
            now=now,
        )

    async def users(self, tenant_id: str) -> list[UserRecord]:
        rows = await read_all(
            self.engine,
            select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.username),
        )
        return [_user(row) for row in rows]

    async def remove_user(self, tenant_id: str, user_id: str) -> bool:
        async with self.engine.begin() as conn:
            for table in (user_sessions, auth_challenges):
                await conn.execute(
                    delete(table).where(table.c.tenant_id == tenant_id, table.c.user_id == user_id)
                )
            await conn.execute(
                delete(vault_secrets).where(
                    vault_secrets.c.tenant_id == tenant_id,
                    vault_secrets.c.name == totp_slot(user_id),
                )
            )
            result = await conn.execute(
                delete(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
            )
        return bool(result.rowcount)

    async def reset_user(
        self, tenant_id: str, user_id: str, *, password_hash: str, now: datetime
    ) -> bool:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(users)
                    .where(users.c.tenant_id == tenant_id, users.c.id == user_id)
                    .values(password_hash=password_hash)
                    .returning(users.c.username)
                )
            ).first()
            if row is None:
                return False
            await conn.execute(
                delete(sign_in_attempts).where(
                    sign_in_attempts.c.tenant_id == tenant_id,
                    sign_in_attempts.c.username_key == username_key(row[0]),
                )
            )
            await conn.execute(
                update(user_sessions)
                .where(
                    user_sessions.c.tenant_id == tenant_id,
                    user_sessions.c.user_id == user_id,
                    user_sessions.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        return True


def _open_challenge(tenant_id: str, challenge_id: str) -> Update:
    """An UPDATE of one of a tenant's challenges that is not used yet."""
    c = auth_challenges.c
    return update(auth_challenges).where(
        c.tenant_id == tenant_id, c.id == challenge_id, c.used_at.is_(None)
    )


def _insert(engine: AsyncEngine) -> Any:
    """The dialect's INSERT into sign_in_attempts, which has ``on_conflict_do_update``."""
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(
        sign_in_attempts
    )
