"""The session broker: one live credential per surface of a tenant, renewed single-flight.

A :class:`Broker` holds the current credential (an OAuth token set, a portal session, a SMART
token). Callers ask :meth:`Broker.current`; when it is missing or about to expire, exactly one
caller renews it while the others wait for the result. A 401 reported through
:meth:`Broker.invalidate` with the credential the caller used marks it stale only if it is still
the current one, so fifty requests that fail together cause one renewal, not fifty.
:meth:`Broker.rotate` swaps the secrets a renewal uses (a new password, seed or key) without a
restart; the next call renews with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

C = TypeVar("C")
S = TypeVar("S")


@dataclass(frozen=True)
class BrokerState:
    """What ``/health/upstream`` shows of one broker (no secrets)."""

    surface: str
    has_credential: bool
    expires_at: datetime | None
    renewals: int
    last_error: str | None


class Broker(Generic[C, S]):
    """Single-flight holder of one surface's credential.

    Args:
        surface: ``v2``, ``portal`` or ``fhir`` (for reports).
        secrets: what a renewal needs (client secret and refresh token, password and MFA
            sources, a private key); replaced by :meth:`rotate`.
        renew: ``(secrets, current or None) -> new credential``; may update ``secrets`` through
            :meth:`remember` (a rotated refresh token).
        expires: the credential's expiry, or None when only a 401 tells.
        clock: now, aware UTC.
        margin: renew this long before expiry (proactive renewal).
    """

    def __init__(
        self,
        surface: str,
        secrets: S,
        renew: Callable[[S, C | None], Awaitable[C]],
        *,
        expires: Callable[[C], datetime | None],
        clock: Callable[[], datetime],
        margin: timedelta = timedelta(seconds=60),
    ) -> None:
        self.surface = surface
        self.secrets = secrets
        self._renew = renew
        self._expires = expires
        self._clock = clock
        self._margin = margin
        self._current: C | None = None
        self._lock = asyncio.Lock()
        self.renewals = 0
        self.last_error: str | None = None

    def _usable(self, credential: C | None) -> bool:
        if credential is None:
            return False
        expiry = self._expires(credential)
        return expiry is None or self._clock() + self._margin < expiry

    def ready(self) -> C | None:
        """The current credential when it is usable as it is (what :meth:`current` answers
        without renewing), else None: the caller then awaits :meth:`current`."""
        credential = self._current
        if credential is not None and self._usable(credential):
            return credential
        return None

    async def current(self) -> C:
        """A usable credential, renewing it (once, for every waiting caller) when needed."""
        credential = self._current
        if credential is not None and self._usable(credential):
            return credential
        async with self._lock:
            credential = self._current
            if credential is not None and self._usable(credential):
                return credential  # another caller renewed it while this one waited
            try:
                fresh = await self._renew(self.secrets, credential)
            except Exception as err:
                self.last_error = type(err).__name__
                raise
            self.renewals += 1
            self.last_error = None
            self._current = fresh
            return fresh

    def invalidate(self, used: C) -> None:
        """The upstream refused ``used``: drop it if it is still the current credential."""
        if self._current is used:
            self._current = None

    def remember(self, secrets: S) -> None:
        """Keep updated secrets (a rotated refresh token) for later renewals."""
        self.secrets = secrets

    def rotate(self, secrets: S) -> None:
        """Replace the secrets (new password, seed, key); the next call renews with them."""
        self.secrets = secrets
        self._current = None

    def state(self) -> BrokerState:
        """A report of the broker, without secrets."""
        credential = self._current
        return BrokerState(
            surface=self.surface,
            has_credential=credential is not None,
            expires_at=None if credential is None else self._expires(credential),
            renewals=self.renewals,
            last_error=self.last_error,
        )
