"""Administration of a deployment: its tenants, their API keys and users, the vault, the audit.

::

    Admin(tenants, keys, users, vault, audit, check_profile)
    ├── tenants  onboard(op, TenantSpec) -> Onboarded        list_tenants(op), show_tenant(op, id)
    ├── keys     mint_key(op, KeySpec) -> NewKey             list_keys(op, tenant), revoke_key(...)
    ├── users    add_user(op, UserSpec) -> AddedUser         list_users(op, tenant),
    │                                                        remove_user(...), reset_user(...)
    ├── vault    seal_secret(op, SecretSpec), rotate_vault(op) -> Rotated
    └── audit    verify_audit(op, tenant) -> Verification
    OperatorGate(token).check(authorization) -> Operator     the admin routes' operator token

Every use case takes an :class:`Operator`: operator commands act across tenants, so they are
never reached with a tenant's API key or session. The CLI acts as :data:`SHELL` (whoever runs
``carebridge`` on the host with the store's URL and the vault key); the admin routes as the
holder of the deployment's operator token (``CAREBRIDGE_ADMIN_TOKEN``).

Secrets go in and never come back: onboarding answers the names of the sealed secrets, a new key
or a generated password is in the result once and stored only hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import anyio.to_thread
import pyotp

from carebridge.errors import BadRequest, NotFound, Unauthorized, UnknownTenant
from carebridge.ports.keys import KeyAdmin, KeyInfo
from carebridge.ports.people import UserAdmin, hash_password
from carebridge.ports.tenants import TenantRecord, TenantStore
from carebridge.ports.vault import AuditChain, SecretVault, Verification
from carebridge.services import keys
from carebridge.services.records import bearer

ProfileCheck = Callable[[str, Mapping[str, Any], Mapping[str, str]], None]
"""Raises :class:`carebridge.errors.ConfigError` unless an upstream's profile is complete."""


@dataclass(frozen=True)
class Operator:
    """Who administers the deployment: ``shell`` (a ``carebridge`` command on the host) or
    ``token`` (a holder of the operator token, through the admin routes)."""

    via: Literal["shell", "token"]


SHELL = Operator("shell")
"""The operator of the CLI: whoever holds the store's URL and the vault key."""


class OperatorGate:
    """Checks the deployment's operator token; with none configured, nobody passes.

    Args:
        token: ``CAREBRIDGE_ADMIN_TOKEN``, or None.
    """

    def __init__(self, token: str | None) -> None:
        self._expected = hashlib.sha256(token.encode()).digest() if token else None

    def check(self, authorization: str | None) -> Operator:
        """The operator of an ``Authorization: Bearer <token>`` header (or the bare token).

        Raises:
            Unauthorized: no operator token is configured, or this is not it.
        """
        token = bearer(authorization)
        given = hashlib.sha256(token.encode()).digest()
        if self._expected is None or not token or not hmac.compare_digest(given, self._expected):
            raise Unauthorized("the operator token is required (CAREBRIDGE_ADMIN_TOKEN)")
        return Operator("token")


# --- inputs and results --------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantSpec:
    """A tenant to onboard: its upstream profile (settings) and credentials (secrets)."""

    id: str
    name: str
    upstream: str
    settings: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class Onboarded:
    """The tenant as stored: the names of its sealed secrets, never their values."""

    id: str
    name: str
    upstream: str
    sealed_secrets: tuple[str, ...]


@dataclass(frozen=True)
class KeySpec:
    """An API key to mint: its tenant, scopes (``a.read,b.write`` or a list) and a label."""

    tenant_id: str
    scopes: str | Sequence[str]
    label: str = ""


@dataclass(frozen=True)
class NewKey:
    """A key as shown once to whoever created it."""

    id: str
    tenant_id: str
    key: str = field(repr=False)
    scopes: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class UserSpec:
    """A user to add. ``password`` None has one generated (and returned once)."""

    tenant_id: str
    username: str
    scopes: str | Sequence[str]
    mfa_methods: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AddedUser:
    """A user as added: the generated password and the TOTP enrolment URI, shown once."""

    id: str
    tenant_id: str
    username: str
    scopes: tuple[str, ...]
    mfa_methods: tuple[str, ...]
    password: str | None = field(repr=False)  # None when the operator chose it
    totp_uri: str | None = field(repr=False)


@dataclass(frozen=True)
class UserInfo:
    """A user as an operator sees it: never the password hash, the seed or the contacts."""

    id: str
    tenant_id: str
    username: str
    scopes: tuple[str, ...]
    mfa_methods: tuple[str, ...]
    disabled: bool


@dataclass(frozen=True)
class PasswordReset:
    """A user's new password (None when the operator chose it), shown once; its sessions ended
    and its lockout lifted."""

    user_id: str
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class SecretSpec:
    """One credential of a tenant to seal, e.g. a portal password changed upstream."""

    tenant_id: str
    slot: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Rotated:
    """How many secrets a vault rotation re-wrapped, and under which key."""

    rewrapped: int
    primary: str


def _now() -> datetime:
    return datetime.now(UTC)


def new_password() -> str:
    """A random password for a user who did not choose one."""
    return random.token_urlsafe(18)


class Admin:
    """The administration use cases over the store's administration ports.

    Args:
        tenants: the tenants and their sealed secrets.
        keys: the tenants' API keys.
        users: the tenants' users.
        vault: the sealed secrets, for rotation.
        audit: the tenants' audit chains, for verification.
        check_profile: refuses an upstream profile that lacks what the upstream needs.
        clock: the current instant (aware); stored instants are kept to the second.
    """

    def __init__(
        self,
        *,
        tenants: TenantStore,
        keys: KeyAdmin,
        users: UserAdmin,
        vault: SecretVault,
        audit: AuditChain,
        check_profile: ProfileCheck,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.tenants = tenants
        self.keys = keys
        self.users = users
        self.vault = vault
        self.audit = audit
        self.check_profile = check_profile
        self.clock = clock

    def _stamp(self) -> datetime:
        return self.clock().replace(microsecond=0)

    # --- tenants -----------------------------------------------------------------------------

    async def onboard(self, operator: Operator, spec: TenantSpec) -> Onboarded:
        """Add a tenant whose profile is complete; its secrets are sealed before they are stored.

        Raises:
            carebridge.errors.ConfigError: an unknown upstream, or a profile that lacks a
                setting or secret (each named).
            carebridge.errors.TenantExists: the id is onboarded already.
        """
        del operator
        self.check_profile(spec.upstream, spec.settings, spec.secrets)
        await self.tenants.add_tenant(
            tenant_id=spec.id,
            name=spec.name,
            upstream=spec.upstream,
            settings=spec.settings,
            secrets=spec.secrets,
            now=self._stamp(),
        )
        return Onboarded(spec.id, spec.name, spec.upstream, tuple(sorted(spec.secrets)))

    async def list_tenants(self, operator: Operator) -> list[TenantRecord]:
        """Every tenant, in id order."""
        del operator
        return await self.tenants.tenants()

    async def show_tenant(self, operator: Operator, tenant_id: str) -> TenantRecord:
        """One tenant: its settings and the names of its sealed secrets.

        Raises:
            carebridge.errors.UnknownTenant: no tenant has that id.
        """
        del operator
        return await self._tenant(tenant_id)

    async def _tenant(self, tenant_id: str) -> TenantRecord:
        found = await self.tenants.tenant(tenant_id)
        if found is None:
            raise UnknownTenant(f"no tenant {tenant_id!r}")
        return found

    # --- API keys ----------------------------------------------------------------------------

    async def mint_key(self, operator: Operator, spec: KeySpec) -> NewKey:
        """Mint an API key for a tenant; the key is in the result and nowhere else.

        Raises:
            carebridge.errors.InvalidScopes: unknown or no scopes.
            carebridge.errors.UnknownTenant: no such tenant.
        """
        del operator
        granted = keys.parse_scopes(
            spec.scopes if isinstance(spec.scopes, str) else list(spec.scopes)
        )
        minted = keys.mint()
        key_id = f"key_{random.token_hex(8)}"
        await self.keys.add_key(
            key_id=key_id,
            tenant_id=spec.tenant_id,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=granted,
            label=spec.label,
            now=self._stamp(),
        )
        return NewKey(key_id, spec.tenant_id, minted.display, tuple(sorted(granted)), spec.label)

    async def list_keys(self, operator: Operator, tenant_id: str) -> list[KeyInfo]:
        """A tenant's keys (prefix, scopes, label; revoked ones too), oldest first.

        Raises:
            carebridge.errors.UnknownTenant: no such tenant.
        """
        del operator
        await self._tenant(tenant_id)
        return await self.keys.keys(tenant_id)

    async def revoke_key(self, operator: Operator, tenant_id: str, key_id: str) -> None:
        """Revoke a tenant's key: it authenticates nothing from now on.

        Raises:
            carebridge.errors.NotFound: the tenant has no such live key.
        """
        del operator
        if not await self.keys.revoke_key(tenant_id, key_id, now=self._stamp()):
            raise NotFound(f"tenant {tenant_id!r} has no live key {key_id!r}")

    # --- users -------------------------------------------------------------------------------

    async def add_user(self, operator: Operator, spec: UserSpec) -> AddedUser:
        """Add a user who signs in with ``POST /authenticate``. A password is generated unless
        given, and a TOTP seed when ``totp`` is among the methods; both are shown once.

        Raises:
            carebridge.errors.InvalidScopes: unknown or no scopes.
            carebridge.errors.InvalidUser: an unknown MFA method, or one without its contact.
            carebridge.errors.UnknownTenant: no such tenant.
            carebridge.errors.UserExists: the tenant already has that username.
        """
        del operator
        granted = keys.parse_scopes(
            spec.scopes if isinstance(spec.scopes, str) else list(spec.scopes)
        )
        methods = tuple(dict.fromkeys(spec.mfa_methods))
        password = spec.password if spec.password is not None else new_password()
        seed = pyotp.random_base32() if "totp" in methods else None
        user_id = await self.users.add_user(
            tenant_id=spec.tenant_id,
            username=spec.username,
            password=password,
            scopes=granted,
            mfa_methods=methods,
            email=spec.email,
            phone=spec.phone,
            totp_seed=seed,
            now=self._stamp(),
        )
        uri = None
        if seed is not None:
            issuer = f"carebridge {spec.tenant_id}"
            uri = pyotp.TOTP(seed).provisioning_uri(name=spec.username, issuer_name=issuer)
        return AddedUser(
            id=user_id,
            tenant_id=spec.tenant_id,
            username=spec.username,
            scopes=tuple(sorted(granted)),
            mfa_methods=methods,
            password=None if spec.password is not None else password,
            totp_uri=uri,
        )

    async def list_users(self, operator: Operator, tenant_id: str) -> list[UserInfo]:
        """A tenant's users, by username.

        Raises:
            carebridge.errors.UnknownTenant: no such tenant.
        """
        del operator
        await self._tenant(tenant_id)
        return [
            UserInfo(
                id=u.id,
                tenant_id=u.tenant_id,
                username=u.username,
                scopes=tuple(sorted(u.scopes)),
                mfa_methods=u.mfa_methods,
                disabled=u.disabled,
            )
            for u in await self.users.users(tenant_id)
        ]

    async def remove_user(self, operator: Operator, tenant_id: str, username: str) -> str:
        """Remove a user with its sessions, challenges and TOTP seed; returns its id.

        Raises:
            carebridge.errors.NotFound: the tenant has no such user.
        """
        del operator
        user_id = await self._user_id(tenant_id, username)
        if not await self.users.remove_user(tenant_id, user_id):
            raise NotFound(f"tenant {tenant_id!r} has no such user")
        return user_id

    async def reset_user(
        self, operator: Operator, tenant_id: str, username: str, *, password: str | None = None
    ) -> PasswordReset:
        """Give a user a new password (generated unless given), lift its lockout and end its
        sessions.

        Raises:
            carebridge.errors.NotFound: the tenant has no such user.
        """
        del operator
        user_id = await self._user_id(tenant_id, username)
        chosen = password if password is not None else new_password()
        hashed = await anyio.to_thread.run_sync(hash_password, chosen)
        if not await self.users.reset_user(
            tenant_id, user_id, password_hash=hashed, now=self._stamp()
        ):
            raise NotFound(f"tenant {tenant_id!r} has no such user")
        return PasswordReset(user_id, None if password is not None else chosen)

    async def _user_id(self, tenant_id: str, username: str) -> str:
        for user in await self.users.users(tenant_id):
            if user.username == username:
                return user.id
        raise NotFound(f"tenant {tenant_id!r} has no such user")

    # --- the vault and the audit chain -------------------------------------------------------

    async def seal_secret(self, operator: Operator, spec: SecretSpec) -> None:
        """Seal and store (or replace) one secret of a tenant; its value never comes back.

        Raises:
            carebridge.errors.UnknownTenant: no such tenant.
            carebridge.errors.BadRequest: an empty slot name or secret.
        """
        del operator
        if not spec.slot.strip() or not spec.secret:
            raise BadRequest("a secret needs a slot name and a value", field="slot")
        await self._tenant(spec.tenant_id)
        await self.vault.seal(spec.tenant_id, spec.slot, spec.secret, now=self._stamp())

    async def rotate_vault(self, operator: Operator) -> Rotated:
        """Re-wrap every secret under the key ring's primary key (list the new key first, keep
        the old one after it until this has run).

        Raises:
            carebridge.errors.VaultError: a secret's key is not in the ring.
        """
        del operator
        changed = await self.vault.rotate(now=self._stamp())
        return Rotated(changed, self.vault.primary)

    async def verify_audit(self, operator: Operator, tenant_id: str) -> Verification:
        """Walk a tenant's audit chain under its key from the vault.

        Raises:
            carebridge.errors.VaultError: the audit key does not open with this vault.
        """
        del operator
        return await self.audit.verify(tenant_id)
