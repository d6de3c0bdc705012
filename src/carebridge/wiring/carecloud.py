"""A CareCloud tenant's connection, assembled from its settings and vaulted secrets.

Settings (plain JSON in the tenants table)::

    {"base_url": "https://api.carecloud.com",          # v2 lives at {base_url}/v2
     "token_url": "https://api.carecloud.com/oauth2/access_token",
     "portal_api": "https://.../portal/api",
     "fhir_base": "https://.../api/fhir/R4/ABC",         # optional: the Connector
     "fhir_token_url": "https://.../token"}              # optional

Secrets (sealed by the vault): ``v2.client_id``, ``v2.client_secret``, ``v2.refresh_token``,
``portal.username``, ``portal.password``, and optionally ``portal.totp_seed`` and the
Connector's ``fhir.client_id``, ``fhir.private_key``, ``fhir.kid``, ``fhir.alg``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.connectors.carecloud.mfa import (
    MemoryMfaSteps,
    SignInGuard,
    TotpSource,
    account_key,
)
from carebridge.connectors.carecloud.surfaces import (
    PortalSecrets,
    SmartSecrets,
    V2Secrets,
    connect,
)
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.errors import ConfigError
from carebridge.ports.crosswalk import Crosswalk
from carebridge.ports.upstream import MfaSteps
from carebridge.store import tenants as repo
from carebridge.store import throttle_budgets
from carebridge.store.crosswalk import SqlCrosswalk
from carebridge.store.mfa_steps import SqlMfaSteps
from carebridge.store.vault import Vault

log = logging.getLogger(__name__)

LEARNED_MAX_AGE = timedelta(days=1)
"""How old a tenant's learned throttle budget may be and still be started from: an upstream's
limits and load change over days; a day old, the throttle's slow start finds them again within
seconds anyway."""

REQUIRED_SETTINGS = ("base_url", "token_url", "portal_api")
REQUIRED_SECRETS = (
    "v2.client_id",
    "v2.client_secret",
    "v2.refresh_token",
    "portal.username",
    "portal.password",
)
FHIR_SECRETS = ("fhir.client_id", "fhir.private_key")


def check_profile(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` naming whatever a CareCloud tenant lacks."""
    missing = [f"settings.{k}" for k in REQUIRED_SETTINGS if not settings.get(k)]
    missing += [f"secrets.{k}" for k in REQUIRED_SECRETS if not secrets.get(k)]
    if settings.get("fhir_base"):
        missing += [f"secrets.{k}" for k in FHIR_SECRETS if not secrets.get(k)]
        if not settings.get("fhir_token_url"):
            missing.append("settings.fhir_token_url")
    for key in ("base_url", "token_url", "portal_api", "fhir_base", "fhir_token_url"):
        value = settings.get(key)
        if value and not str(value).startswith(("http://", "https://")):
            raise ConfigError(f"settings.{key} must be an http(s) URL")
    if missing:
        raise ConfigError("a CareCloud tenant needs " + ", ".join(missing))


def from_sandbox(
    credentials: Mapping[str, Any], practice: int = 0
) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings and secrets of one practice of an emulated tenant, from the document its
    ``GET /_sandbox/credentials`` answers."""
    chosen = credentials["practices"][practice]
    user = chosen["users"][0]
    connector = credentials.get("connector") or {}
    settings: dict[str, Any] = {
        "base_url": credentials["base_url"],
        "token_url": credentials["token_url"],
        "portal_api": credentials["portal_url"],
        "practice": chosen["id"],
    }
    secrets = {
        "v2.client_id": credentials["client_id"],
        "v2.client_secret": credentials["client_secret"],
        "v2.refresh_token": chosen["refresh_token"],
        "portal.username": user["username"],
        "portal.password": user["password"],
        "portal.totp_seed": user["totp_seed"],
    }
    fhir_base = (connector.get("fhir_base") or {}).get(chosen.get("fhir_code"))
    if fhir_base:
        settings["fhir_base"] = fhir_base
        settings["fhir_token_url"] = connector["token_url"]
        secrets |= {
            "fhir.client_id": connector["client_id"],
            "fhir.private_key": connector["private_key_pem"],
            "fhir.kid": connector.get("kid") or "",
            "fhir.alg": connector.get("alg") or "ES384",
        }
    return settings, secrets


def open_tenant(
    tenant_id: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    *,
    clock: Callable[[], datetime],
    transport: httpx.AsyncBaseTransport | None = None,
    on_rotate: Callable[[str], None] | None = None,
    throttle: AimdThrottle | None = None,
    mfa_steps: MfaSteps | None = None,
    crosswalk: Crosswalk | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CareCloudTenant:
    """Connect one tenant's surfaces and wrap them in the facade.

    Args:
        mfa_steps: the portal accounts' MFA ledger, shared by every process (the store's);
            without one, a ledger in this process's memory (tests that have no store).
        crosswalk: the tenant's ids on every upstream surface, shared by every process (the
            store's); without one, a crosswalk in this process's memory.
        sleep: how a sign-in waits for the next TOTP step when the current one is used.
    """
    check_profile(settings, secrets)
    totp = secrets.get("portal.totp_seed")
    steps: MfaSteps = mfa_steps if mfa_steps is not None else MemoryMfaSteps()
    account = account_key(settings["portal_api"], secrets["portal.username"])
    fhir = None
    if settings.get("fhir_base"):
        fhir = SmartSecrets(
            settings["fhir_token_url"],
            secrets["fhir.client_id"],
            secrets["fhir.private_key"],
            secrets.get("fhir.kid") or None,
            secrets.get("fhir.alg") or "ES384",
        )
    connection = connect(
        clock=clock,
        transport=transport,
        on_rotate=on_rotate,
        throttle=throttle,
        v2=V2Secrets(
            settings["token_url"],
            secrets["v2.client_id"],
            secrets["v2.client_secret"],
            secrets["v2.refresh_token"],
        ),
        portal=PortalSecrets(
            api_url=settings["portal_api"],
            username=secrets["portal.username"],
            password=secrets["portal.password"],
            codes=[TotpSource(totp, clock, steps=steps, account=account, sleep=sleep)]
            if totp
            else [],
            methods=("totp",) if totp else ("totp", "sms", "email"),
            guard=SignInGuard(steps, account, clock),
        ),
        fhir=fhir,
    )
    return CareCloudTenant(
        connection,
        tenant=tenant_id,
        v2_base=settings["base_url"],
        portal_api=settings["portal_api"],
        fhir_base=settings.get("fhir_base"),
        clock=clock,
        crosswalk=crosswalk,
    )


def learned_against(config: ThrottleConfig, settings: Mapping[str, Any]) -> str:
    """What a throttle's budget is learned against: its configuration and the upstream's
    addresses. A budget learned under other bounds or gains, or of another upstream, is not
    started from."""
    upstream = {key: settings.get(key) for key in ("base_url", "portal_api", "fhir_base")}
    text = orjson.dumps(
        {"throttle": dataclasses.asdict(config), "upstream": upstream},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(text).hexdigest()[:32]


class TenantUpstreams:
    """``Upstreams`` over the store: each tenant's facade, connected on first use and kept.

    A rotated v2 refresh token is sealed back into the vault, so a restart keeps working; the
    portal's MFA steps and sign-in failures, and the crosswalk of upstream ids, are kept in the
    store, shared by every process. So is each tenant's **learned throttle budget**: kept when
    a sync ends (:meth:`keep_learned`) and when the connections close, and started from when
    a process connects the tenant, if it was learned against the same throttle configuration
    and upstream (:func:`learned_against`) less than :data:`LEARNED_MAX_AGE` ago; otherwise
    the throttle starts from its configured start.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        vault: Vault,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        throttle: Callable[[], AimdThrottle] | None = None,
    ) -> None:
        self.engine = engine
        self.throttle = throttle
        self.vault = vault
        self.clock = clock
        self.transport = transport
        self.mfa_steps = SqlMfaSteps(engine)
        self.crosswalk = SqlCrosswalk(engine)
        self._open: dict[str, CareCloudTenant] = {}
        self._against: dict[str, str] = {}
        self._lock = anyio.Lock()
        self._saving: set[asyncio.Task[None]] = set()

    async def of(self, tenant_id: str) -> CareCloudTenant:
        found = self._open.get(tenant_id)
        if found is not None:
            return found
        async with self._lock:
            found = self._open.get(tenant_id)
            if found is None:
                settings = await repo.tenant_settings(self.engine, tenant_id)
                secrets = await repo.secrets_of(self.engine, self.vault, tenant_id)
                found = open_tenant(
                    tenant_id,
                    settings,
                    secrets,
                    clock=self.clock,
                    transport=self.transport,
                    on_rotate=lambda token: self._keep_rotated(tenant_id, token),
                    throttle=self.throttle() if self.throttle else None,
                    mfa_steps=self.mfa_steps,
                    crosswalk=self.crosswalk,
                )
                throttle = found.connection.throttle
                against = learned_against(throttle.config, settings)
                await self._resume(tenant_id, throttle, against)
                self._against[tenant_id] = against
                self._open[tenant_id] = found
        return found

    async def _resume(self, tenant_id: str, throttle: AimdThrottle, against: str) -> None:
        kept = await throttle_budgets.learned(self.engine, tenant_id)
        if kept is None or not kept.usable(against, now=self.clock(), max_age=LEARNED_MAX_AGE):
            return
        throttle.resume(kept.rate, kept.concurrency, kept.ceiling)

    async def keep_learned(self, tenant_id: str) -> None:
        """Keep the connected tenant's learned throttle budget in the store, for the next
        process to start from (nothing before its first use, nor while its throttle has had
        no answer: it has learned nothing new)."""
        found = self._open.get(tenant_id)
        if found is None:
            return
        throttle = found.connection.throttle
        if math.isinf(throttle.fastest):
            return
        budget = throttle.learned()
        await throttle_budgets.keep(
            self.engine,
            tenant_id,
            throttle_budgets.LearnedBudget(
                rate=budget.rate,
                concurrency=budget.concurrency,
                ceiling=throttle.ceiling,
                against=self._against[tenant_id],
                learned_at=self.clock(),
            ),
        )

    def _keep_rotated(self, tenant_id: str, token: str) -> None:
        task = asyncio.get_running_loop().create_task(
            repo.put_secret(
                self.engine, self.vault, tenant_id, "v2.refresh_token", token, now=self.clock()
            )
        )
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    def health(self, tenant_id: str) -> dict[str, Any] | None:
        """The connected facade's health (None before its first use)."""
        found = self._open.get(tenant_id)
        return None if found is None else found.health()

    async def aclose(self) -> None:
        """Close every connection (after pending secret writes and crosswalk links)."""
        if self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)
        for tenant_id, tenant in self._open.items():
            await tenant.remember_pending()  # links a read left short of a page
            try:
                await self.keep_learned(tenant_id)
            except Exception:  # closing goes on: the next start is slow, not wrong
                log.warning("could not keep a tenant's learned throttle budget", exc_info=True)
            await tenant.connection.aclose()
        self._open.clear()
