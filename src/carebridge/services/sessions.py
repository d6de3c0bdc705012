"""Sign-in of a tenant's users (``POST /authenticate``): password, an optional second factor,
then a session token.

::

    step(SignIn | ChooseMethod | EnterCode) runs the step its input names:

    start(tenant, username, password)
    ├── name locked                Locked      (nothing is checked; retry_after seconds)
    ├── bad credentials            Unauthorized (one message for unknown user and wrong password)
    │   └── 5th failure in a row   Locked for 15 minutes (retry_after seconds)
    ├── no MFA enrolled            Issued      (a session token)
    └── MFA enrolled               Challenge   (lives 5 minutes)
        choose(challenge, method)
        ├── sms / email            CodeSent    (a 6-digit code in the outbox, the destination masked)
        └── totp                   CodeSent    (nothing sent, destination None)
            verify(challenge, code)
            ├── wrong code         Unauthorized; the 5th wrong code spends the challenge
            ├── TOTP code reused   Unauthorized (a step already used never signs in again)
            └── right code         Issued      (a session token, 12 hours)

A session token reads ``cbs_<prefix>_<secret>`` like an API key: the prefix is the look-up
key, only a SHA-256 hash of the secret is stored. The failure count restarts when a session is
issued (so an exhausted challenge counts as a failure, too). Passwords, codes and full destinations never
appear in logs or error messages.

Guessing is bounded under concurrency: each password attempt is reserved (counted as a failure)
in one atomic store step before the password is checked, and refused unreserved once the name is
locked, so however many guesses arrive at once, at most ``MAX_FAILURES`` are checked. Failures
are counted per (tenant, username) whether or not the user exists, and an unknown user's
password is checked against a dummy hash: a stranger cannot tell a real username by its lockout,
its answer or its timing. Code attempts on a challenge are reserved the same way, and a TOTP
code is accepted only for a time step later than the user's last one (claimed atomically).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import pyotp

from carebridge.errors import InvalidMfaStep as InvalidMfaStep
from carebridge.errors import Locked as Locked
from carebridge.ports.people import (
    METHODS,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    ChallengeRecord,
    SessionRecord,
    UserRecord,
    UserStore,
    verify_password,
)
from carebridge.services.records import Principal, Unauthorized

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
CHALLENGE_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
SESSION_TTL = timedelta(hours=12)
CODE_BODY = "Your carebridge code is {code}"

_TOKEN = re.compile(r"^cbs_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_BAD_CREDENTIALS = "invalid username or password"
_BAD_CHALLENGE = "the challenge is not valid or has expired"


@dataclass(frozen=True)
class Issued:
    """A session token, shown once."""

    token: str
    expires_at: datetime
    scopes: frozenset[str]
    tenant_id: str


@dataclass(frozen=True)
class Challenge:
    """The password was right; a second factor is needed, by one of ``methods``."""

    challenge_id: str
    methods: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True)
class CodeSent:
    """A method was chosen: the code went to ``destination`` (masked), or None for TOTP."""

    challenge_id: str
    method: str
    destination: str | None


@dataclass(frozen=True)
class SignIn:
    """Step 1: the tenant, the username and the password."""

    tenant_id: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ChooseMethod:
    """Step 2: the second factor to use on a challenge."""

    challenge_id: str
    method: str


@dataclass(frozen=True)
class EnterCode:
    """Step 3: the code of the chosen second factor."""

    challenge_id: str
    code: str = field(repr=False)


Step = SignIn | ChooseMethod | EnterCode
"""One step of a sign-in."""


_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'A' * 22}==${'A' * 43}="
"""Checked when the username is unknown (or disabled), with the parameters of a real hash, so
that both failures take as long; no password matches it."""


def _password_ok(password: str, stored: str | None) -> bool:
    """Check a password (in a worker thread); ``stored`` None runs the dummy check, False."""
    if stored is None:
        verify_password(password, _DUMMY_HASH)
        return False
    return verify_password(password, stored)


def totp_step(seed: str, code: str, now: datetime) -> int | None:
    """The TOTP time step ``code`` belongs to: the current one, or one either side (clock
    drift); None when it matches none."""
    totp = pyotp.TOTP(seed)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_code() -> str:
    """A random 6-digit code."""
    return f"{secrets.randbelow(10**6):06d}"


def mask_phone(phone: str) -> str:
    """``***-***-1234``: only the last four digits."""
    digits = "".join(c for c in phone if c.isdigit())
    return f"***-***-{digits[-4:]}"


def mask_email(email: str) -> str:
    """``j***@example.org``: the first letter of the mailbox and the domain."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed session token, else None."""
    match = _TOKEN.match(token.strip())
    return (match.group(1), match.group(2)) if match else None


class Sessions:
    """The sign-in use case, over a :class:`UserStore` and the users' TOTP seeds.

    Args:
        store: users, challenges, sessions and the code outbox.
        totp_secret: a user's TOTP seed by (tenant id, user id), None when the user has none.
        clock: the current instant (aware).
        new_code: a fresh 6-digit code for texts and e-mails.
    """

    def __init__(
        self,
        store: UserStore,
        totp_secret: Callable[[str, str], Awaitable[str | None]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_code: Callable[[], str] = new_code,
    ) -> None:
        self.store = store
        self.totp_secret = totp_secret
        self.clock = clock
        self.new_code = new_code

    async def step(self, step: Step) -> Issued | Challenge | CodeSent:
        """Run one sign-in step: :meth:`start`, :meth:`choose` or :meth:`verify`.

        Raises:
            Unauthorized: as the step's method; Locked and InvalidMfaStep likewise.
        """
        if isinstance(step, SignIn):
            return await self.start(step.tenant_id, step.username, step.password)
        if isinstance(step, ChooseMethod):
            return await self.choose(step.challenge_id, step.method)
        return await self.verify(step.challenge_id, step.code)

    async def start(self, tenant_id: str, username: str, password: str) -> Issued | Challenge:
        """Check the password: a token when no second factor is enrolled, else a challenge.

        Raises:
            Unauthorized: unknown user, wrong password, or a disabled user (one message).
            Locked: too many failures; also for the failure that locks. An unknown username
                locks alike.
        """
        now = self.clock()
        attempt = await self.store.reserve_attempt(
            tenant_id, username, now=now, limit=MAX_FAILURES, lock_until=now + LOCK_FOR
        )
        if not attempt.granted:
            until = attempt.locked_until or now
            raise Locked("too many failed sign-ins", retry_after=_seconds(until - now))
        user = await self.store.user_by_username(tenant_id, username)
        if user is not None and user.disabled:
            user = None
        stored = None if user is None else user.password_hash
        right = await anyio.to_thread.run_sync(_password_ok, password, stored)
        if user is None or not right:
            if attempt.locks:
                raise Locked("too many failed sign-ins", retry_after=_seconds(LOCK_FOR))
            raise Unauthorized(_BAD_CREDENTIALS)
        if not user.mfa_methods:
            return await self._issue(user, now)
        # the password was right: not a failure (the second factor's outcome decides)
        await self.store.release_attempt(tenant_id, username, unlock=attempt.locks)
        challenge_id = f"chl_{secrets.token_hex(16)}"
        expires_at = now + CHALLENGE_TTL
        await self.store.create_challenge(
            tenant_id, user.id, challenge_id, now=now, expires_at=expires_at
        )
        methods = tuple(m for m in METHODS if m in user.mfa_methods)
        return Challenge(challenge_id, methods, expires_at)

    async def choose(self, challenge_id: str, method: str) -> CodeSent:
        """Pick the second factor; texts or e-mails a fresh code (replacing any earlier one).

        Raises:
            Unauthorized: unknown, expired, used or exhausted challenge.
            InvalidMfaStep: the method is unknown or not enrolled.
        """
        now = self.clock()
        challenge = await self._live(challenge_id, now)
        user = await self._user_of(challenge)
        if method not in METHODS or method not in user.mfa_methods:
            raise InvalidMfaStep(f"the MFA method {method!r} is not enrolled")
        if method == "totp":
            await self.store.choose_method(challenge.tenant_id, challenge.id, method, None)
            return CodeSent(challenge.id, method, None)
        destination = user.phone if method == "sms" else user.email
        if not destination:
            raise InvalidMfaStep(f"the MFA method {method!r} has no destination")
        code = self.new_code()
        await self.store.choose_method(challenge.tenant_id, challenge.id, method, _sha256(code))
        await self.store.add_notification(
            challenge.tenant_id, method, destination, CODE_BODY.format(code=code), now
        )
        masked = mask_phone(destination) if method == "sms" else mask_email(destination)
        return CodeSent(challenge.id, method, masked)

    async def verify(self, challenge_id: str, code: str) -> Issued:
        """Check the code of the chosen method; a session token when it is right.

        Raises:
            Unauthorized: unknown, expired, used or exhausted challenge, or a wrong code.
            InvalidMfaStep: no method was chosen yet.
        """
        now = self.clock()
        challenge = await self._live(challenge_id, now)
        if challenge.method is None:
            raise InvalidMfaStep("choose an MFA method first")
        user = await self._user_of(challenge)
        attempts = await self.store.reserve_code_attempt(
            challenge.tenant_id, challenge.id, now=now, limit=MAX_ATTEMPTS
        )
        if attempts is None:  # spent, used or expired meanwhile, by a concurrent attempt
            raise Unauthorized(_BAD_CHALLENGE)
        if not await self._code_matches(challenge, user, code, now):
            if attempts == MAX_ATTEMPTS:
                await self.store.consume_challenge(challenge.tenant_id, challenge.id, now)
                await self._fail(user, now)
            raise Unauthorized("the code is not valid")
        if not await self.store.consume_challenge(challenge.tenant_id, challenge.id, now):
            raise Unauthorized(_BAD_CHALLENGE)
        return await self._issue(user, now)

    async def principal(self, token: str) -> Principal | None:
        """The principal of a live session token, else None."""
        record = await self._session(token)
        if record is None or record.revoked or record.expires_at <= self.clock():
            return None
        return Principal(record.id, record.tenant_id, record.scopes)

    async def revoke(self, token: str) -> bool:
        """End a session; False when the token is not a known session."""
        record = await self._session(token)
        if record is None:
            return False
        return await self.store.revoke_session(record.tenant_id, record.id, self.clock())

    # --- helpers -------------------------------------------------------------------------------

    async def _fail(self, user: UserRecord, now: datetime) -> None:
        """Count a spent challenge as a failed sign-in of its user."""
        attempt = await self.store.reserve_attempt(
            user.tenant_id, user.username, now=now, limit=MAX_FAILURES, lock_until=now + LOCK_FOR
        )
        if attempt.locks or not attempt.granted:
            until = attempt.locked_until or now + LOCK_FOR
            raise Locked("too many failed sign-ins", retry_after=_seconds(until - now))

    async def _live(self, challenge_id: str, now: datetime) -> ChallengeRecord:
        challenge = await self.store.challenge(challenge_id)
        if (
            challenge is None
            or challenge.used
            or challenge.expires_at <= now
            or challenge.attempts >= MAX_ATTEMPTS
        ):
            raise Unauthorized(_BAD_CHALLENGE)
        return challenge

    async def _user_of(self, challenge: ChallengeRecord) -> UserRecord:
        user = await self.store.user(challenge.tenant_id, challenge.user_id)
        if user is None or user.disabled:
            raise Unauthorized(_BAD_CHALLENGE)
        return user

    async def _code_matches(
        self, challenge: ChallengeRecord, user: UserRecord, code: str, now: datetime
    ) -> bool:
        if challenge.method == "totp":
            seed = await self.totp_secret(user.tenant_id, user.id)
            step = None if seed is None else totp_step(seed, code, now)
            # a step at or before the last one used is a replay, even if the code is right
            return step is not None and await self.store.claim_totp_step(
                user.tenant_id, user.id, step
            )
        return challenge.code_hash is not None and hmac.compare_digest(
            _sha256(code), challenge.code_hash
        )

    async def _issue(self, user: UserRecord, now: datetime) -> Issued:
        prefix = "".join(secrets.choice(_ALPHABET) for _ in range(12))
        secret = secrets.token_urlsafe(32)
        expires_at = now + SESSION_TTL
        await self.store.create_session(
            SessionRecord(
                id=f"ses_{secrets.token_hex(8)}",
                tenant_id=user.tenant_id,
                user_id=user.id,
                prefix=prefix,
                token_hash=_sha256(secret),
                scopes=user.scopes,
                created_at=now,
                expires_at=expires_at,
                revoked=False,
            )
        )
        await self.store.clear_attempts(user.tenant_id, user.username)
        return Issued(f"cbs_{prefix}_{secret}", expires_at, user.scopes, user.tenant_id)

    async def _session(self, token: str) -> SessionRecord | None:
        parts = split_token(token)
        if parts is None:
            return None
        record = await self.store.session_by_prefix(parts[0])
        if record is None or not hmac.compare_digest(_sha256(parts[1]), record.token_hash):
            return None
        return record


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
