"""Ports of the people who sign in (``POST /authenticate``): users, MFA challenges, session
tokens and the outbox of one-time codes.

::

    UserStore
    ├── users          by (tenant, username) or (tenant, id); the last TOTP step used
    ├── attempts       per (tenant, username), known or not: reserved before the password is
    │                  checked, so concurrent guesses cannot outrun the lockout
    ├── challenges     created after the password; method chosen; attempts reserved; consumed once
    ├── sessions       created after the last factor; looked up by their public prefix
    └── notifications  texted and e-mailed codes waiting for delivery

    UserAdmin          the operator's side: add, list, remove, reset a tenant's users

The stored password hash format is part of this port's contract, shared by the store that writes
it and the use case that checks it: ``scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

METHODS: tuple[str, ...] = ("totp", "sms", "email")
"""The second factors a user can enrol, in the order they are offered."""

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_LEN = 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of ``password``, with its parameters (CPU-bound: run it in a thread)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=_SCRYPT_LEN, maxmem=_SCRYPT_MAXMEM
    )
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` hash (constant-time comparison).

    A malformed stored hash never matches.
    """
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=_SCRYPT_MAXMEM
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class UserRecord:
    """A user as stored: the password only as its hash; the TOTP seed lives in the vault."""

    id: str
    tenant_id: str
    username: str
    password_hash: str
    scopes: frozenset[str]
    mfa_methods: tuple[str, ...]
    email: str | None
    phone: str | None
    disabled: bool


@dataclass(frozen=True)
class Attempt:
    """The outcome of reserving one sign-in attempt for a (tenant, username).

    ``granted`` is False when the name is locked (``locked_until``) and nothing may be checked.
    A granted attempt is already counted as a failure; ``locks`` says it was the last one
    allowed, so the name is locked from now on unless the attempt succeeds.
    """

    granted: bool
    failures: int
    locked_until: datetime | None

    @property
    def locks(self) -> bool:
        """This attempt spent the last one allowed and locked the name."""
        return self.granted and self.locked_until is not None


@dataclass(frozen=True)
class ChallengeRecord:
    """An MFA challenge between the password step and the code step."""

    id: str
    tenant_id: str
    user_id: str
    method: str | None
    code_hash: str | None
    attempts: int
    created_at: datetime
    expires_at: datetime
    used: bool


@dataclass(frozen=True)
class SessionRecord:
    """A session token as stored: its public prefix and the hash of its secret."""

    id: str
    tenant_id: str
    user_id: str
    prefix: str
    token_hash: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    revoked: bool


@dataclass(frozen=True)
class NotificationRecord:
    """A one-time code waiting for delivery by text or e-mail."""

    id: int
    tenant_id: str
    channel: str
    destination: str
    body: str
    created_at: datetime


class UserStore(Protocol):
    """Users, challenges, sessions and the code outbox.

    Every method but :meth:`challenge` and :meth:`session_by_prefix` takes the tenant and
    filters by it. Those two look up an unguessable, globally unique handle that the caller
    holds, and the record they return names its tenant.
    """

    async def user_by_username(self, tenant_id: str, username: str) -> UserRecord | None: ...

    async def user(self, tenant_id: str, user_id: str) -> UserRecord | None: ...

    async def reserve_attempt(
        self, tenant_id: str, username: str, *, now: datetime, limit: int, lock_until: datetime
    ) -> Attempt:
        """Count one sign-in attempt as failed before it is checked, in one atomic step.

        Granted while the name is not locked and fewer than ``limit`` failures are counted (an
        expired lock restarts the count); the attempt that reaches ``limit`` also locks the name
        until ``lock_until``. Refused otherwise, counting nothing. Unknown usernames and
        tenants are counted alike.
        """
        ...

    async def release_attempt(self, tenant_id: str, username: str, *, unlock: bool) -> None:
        """Uncount a reserved attempt that did not fail (a right password, second factor
        pending); ``unlock`` lifts the lock that attempt set."""
        ...

    async def clear_attempts(self, tenant_id: str, username: str) -> None:
        """Forget the failures and any lock of a name (after a successful sign-in)."""
        ...

    async def claim_totp_step(self, tenant_id: str, user_id: str, step: int) -> bool:
        """Record ``step`` as the user's last TOTP step used, only if it is later than the
        recorded one (atomically); False when it is not, so a code never signs in twice."""
        ...

    async def create_challenge(
        self,
        tenant_id: str,
        user_id: str,
        challenge_id: str,
        *,
        now: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def challenge(self, challenge_id: str) -> ChallengeRecord | None: ...

    async def choose_method(
        self, tenant_id: str, challenge_id: str, method: str, code_hash: str | None
    ) -> None:
        """Set (or change) the challenge's method and the hash of the code sent, if any."""
        ...

    async def reserve_code_attempt(
        self, tenant_id: str, challenge_id: str, *, now: datetime, limit: int
    ) -> int | None:
        """Count one code attempt atomically, only on a live, unused challenge with fewer than
        ``limit`` attempts; returns the count after it, or None when none is left."""
        ...

    async def consume_challenge(self, tenant_id: str, challenge_id: str, now: datetime) -> bool:
        """Mark the challenge used; False when it already was (a concurrent use won)."""
        ...

    async def create_session(self, session: SessionRecord) -> None: ...

    async def session_by_prefix(self, prefix: str) -> SessionRecord | None: ...

    async def revoke_session(self, tenant_id: str, session_id: str, now: datetime) -> bool:
        """Revoke a session; False when it was unknown or already revoked."""
        ...

    async def add_notification(
        self, tenant_id: str, channel: str, destination: str, body: str, now: datetime
    ) -> None: ...

    async def notifications(
        self, tenant_id: str, *, after: int = 0, limit: int = 100
    ) -> list[NotificationRecord]:
        """The tenant's outgoing codes with ids above ``after``, oldest first."""
        ...


class UserAdmin(Protocol):
    """A tenant's users as the operator manages them. Every method takes the tenant and
    filters by it."""

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
        """Add a user (the password stored hashed, the TOTP seed sealed); returns its id.

        Raises:
            carebridge.errors.InvalidUser: an unknown MFA method, or one without its contact.
            carebridge.errors.UnknownTenant: no such tenant.
            carebridge.errors.UserExists: the tenant already has that username.
        """
        ...

    async def users(self, tenant_id: str) -> list[UserRecord]:
        """The tenant's users, by username."""
        ...

    async def remove_user(self, tenant_id: str, user_id: str) -> bool:
        """Delete a user with its sessions, challenges and TOTP seed; False when unknown."""
        ...

    async def reset_user(
        self, tenant_id: str, user_id: str, *, password_hash: str, now: datetime
    ) -> bool:
        """Set a new password hash, lift the name's lockout and end the user's sessions, in one
        transaction; False when the user is unknown."""
        ...
