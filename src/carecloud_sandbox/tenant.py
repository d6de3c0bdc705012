"""One emulated tenant: its database, config, clock and run-time controls."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from carecloud_sandbox.clock import Clock, SystemClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.db import TenantDB
from carecloud_sandbox.v2.common import ApiError, loads, to_db_instant, zone

# Privileges CareCloud assigns an application (names are ours: the real ones are not public).
ALL_PRIVILEGES = (
    "patients.read",
    "patients.write",
    "appointments.read",
    "appointments.write",
    "scheduling.read",
    "billing.read",
    "billing.write",
    "eligibility.write",
    "documents.read",
    "practice.read",
)


MAX_CACHED_TOKENS = 4096


@dataclass(frozen=True)
class Grant:
    """What a valid access token stands for."""

    access_token: str
    client_id: str
    practice_id: int
    user_id: int
    scopes: tuple[str, ...]
    expires_at: str


@dataclass(frozen=True)
class _Token:
    """An ``oauth_tokens`` row as authentication reads it."""

    grant: Grant
    revoked: bool


class Tenant:
    """The emulated tenant, shared by every route."""

    def __init__(self, config: SandboxConfig, db: TenantDB, clock: Clock) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self._zones: dict[int, ZoneInfo] = {}
        # Access tokens already read, while the database is unchanged (see ``_token``).
        self._tokens: dict[str, _Token] = {}
        self._tokens_changes = -1

    @classmethod
    def open(
        cls,
        config: SandboxConfig,
        *,
        clock: Clock | None = None,
        state: str | Path | None = None,
        progress: Any = None,
    ) -> Tenant:
        """Open a tenant, generating the synthetic practice unless ``state`` already holds one.

        Args:
            config: the tenant's settings (the seed decides the data).
            clock: the tenant's clock; wall-clock time when omitted.
            state: a SQLite file that keeps the tenant across restarts; memory when omitted.
            progress: an optional callback ``(stage, done, total)`` for long generations.
        """
        from carecloud_sandbox.generator import generate  # the generator is heavy to import

        clock = clock or SystemClock()
        db = TenantDB(state)
        if db.get_meta("generated") is None:
            anchor = config.anchor or clock.now().date()
            generate(db, config, anchor, progress=progress, now=clock.now())
            db.set_meta("generated", to_db_instant(clock.now()))
            db.set_meta("seed", str(config.seed))
            db.set_meta("anchor", anchor.isoformat())
        return cls(config, db, clock)

    @property
    def anchor(self) -> date:
        """The generator's 'today'."""
        stored = self.db.get_meta("anchor")
        return date.fromisoformat(stored) if stored else self.clock.now().date()

    def now(self) -> datetime:
        """The tenant's current instant (aware UTC)."""
        return self.clock.now()

    def now_db(self) -> str:
        """The current instant in the database's text form."""
        return to_db_instant(self.clock.now())

    def tz(self, practice_id: int) -> ZoneInfo:
        """The practice's time zone."""
        if practice_id not in self._zones:
            name = self.db.scalar("SELECT timezone FROM practices WHERE id = ?", (practice_id,))
            self._zones[practice_id] = zone(str(name or "America/Chicago"))
        return self._zones[practice_id]

    def today(self, practice_id: int) -> date:
        """The practice-local date now."""
        return self.clock.now().astimezone(self.tz(practice_id)).date()

    @staticmethod
    def new_token() -> str:
        """A fresh opaque token."""
        return secrets.token_urlsafe(32)

    def authenticate(self, authorization: str | None, privilege: str | None) -> Grant:
        """Resolve the ``Authorization`` header to a grant, as the upstream does.

        The upstream strips ``Bearer`` and spaces, so a bare token works too.

        Raises:
            ApiError: 401 without a usable token, 403 without the privilege.
        """
        token = (authorization or "").strip()
        if token.lower().startswith("bearer"):
            token = token[6:].strip()
        if not token:
            raise ApiError(401, "Access token is required")
        known = self._token(token)
        if known is None or known.revoked:
            raise ApiError(401, "Access token is invalid")
        grant = known.grant
        if grant.expires_at <= self.now_db():
            raise ApiError(401, "Access token has expired")
        if privilege is not None and privilege not in grant.scopes:
            raise ApiError(403, "This token does not have privileges for the requested endpoint")
        return grant

    def token_client(self, token: str) -> str | None:
        """The client an access token was issued to (revoked or expired alike), if it exists."""
        known = self._token(token)
        return None if known is None else known.grant.client_id

    def _token(self, token: str) -> _Token | None:
        """The access token's row, read once while the database stays unchanged.

        Every write of the tenant goes through its one connection, so the connection's
        ``total_changes`` moving on (a token issued, revoked, anything written) empties the
        cache; a token that does not exist is never cached.
        """
        changes = self.db.conn.total_changes
        if changes != self._tokens_changes:
            self._tokens.clear()
            self._tokens_changes = changes
        known = self._tokens.get(token)
        if known is not None:
            return known
        row = self.db.one("SELECT * FROM oauth_tokens WHERE access_token = ?", (token,))
        if row is None:
            return None
        known = _Token(
            grant=Grant(
                access_token=token,
                client_id=row["client_id"],
                practice_id=int(row["practice_id"]),
                user_id=int(row["user_id"]),
                scopes=tuple(loads(row["scopes_json"])),
                expires_at=row["expires_at"],
            ),
            revoked=bool(row["revoked"]),
        )
        if len(self._tokens) >= MAX_CACHED_TOKENS:
            self._tokens.clear()
        self._tokens[token] = known
        return known
