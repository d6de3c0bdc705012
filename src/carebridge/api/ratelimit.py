"""The caller's own rate limit: a fixed window of requests per API key (or session), kept in
the API process.

``CAREBRIDGE_RATE_LIMIT=<requests>/<seconds>`` sets the quota (default ``600/60``). Each
authenticated request takes one from its key's window; the answer carries the IETF draft's
``RateLimit-Policy`` and ``RateLimit`` headers, and a request over the quota is a 429
(:class:`~carebridge.errors.TooManyRequests`) with ``Retry-After``. The upstream's budget is a
different thing, answered in ``X-Upstream-RateLimit-*``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from carebridge.errors import ConfigError, TooManyRequests

DEFAULT_QUOTA = 600
DEFAULT_WINDOW = 60
_PRUNE_AT = 10_000
"""Windows kept before the expired ones are dropped."""


@dataclass(frozen=True)
class Decision:
    """One request's place in its key's window."""

    quota: int
    window: int
    remaining: int
    reset: int
    """Seconds until the window starts again."""
    allowed: bool

    def headers(self) -> dict[str, str]:
        """The IETF draft's headers (``draft-ietf-httpapi-ratelimit-headers``)."""
        return {
            "RateLimit-Policy": f'"key";q={self.quota};w={self.window}',
            "RateLimit": f'"key";r={self.remaining};t={self.reset}',
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as an ASGI answer carries them (lower-case names, bytes)."""
        return [
            (b"ratelimit-policy", _policy(self.quota, self.window)),
            (b"ratelimit", b'"key";r=%d;t=%d' % (self.remaining, self.reset)),
        ]


@lru_cache(maxsize=64)
def _policy(quota: int, window: int) -> bytes:
    return f'"key";q={quota};w={window}'.encode()


class Limiter:
    """A fixed window of ``quota`` requests per ``window`` seconds for each key."""

    def __init__(
        self,
        quota: int = DEFAULT_QUOTA,
        window: int = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if quota < 1 or window < 1:
            raise ConfigError("the rate limit needs at least 1 request per at least 1 second")
        self.quota = quota
        self.window = window
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def take(self, key: str) -> Decision:
        """Count one request of ``key``."""
        now = self.clock()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, used = now, 0
        reset = max(1, math.ceil(start + self.window - now))
        if used >= self.quota:
            return Decision(self.quota, self.window, 0, reset, allowed=False)
        used += 1
        if len(self._windows) >= _PRUNE_AT and key not in self._windows:
            self._prune(now)
        self._windows[key] = (start, used)
        return Decision(self.quota, self.window, self.quota - used, reset, allowed=True)

    def refuse(self, decision: Decision) -> None:
        """Raise :class:`TooManyRequests` for a request ``decision`` did not allow."""
        if not decision.allowed:
            raise TooManyRequests(
                f"this key's rate limit of {self.quota} requests per {self.window} s is spent",
                retry_after=decision.reset,
            )

    def _prune(self, now: float) -> None:
        for key, (start, _) in list(self._windows.items()):
            if now - start >= self.window:
                del self._windows[key]


def from_environment() -> Limiter:
    """The limiter ``CAREBRIDGE_RATE_LIMIT`` (``<requests>/<seconds>``) asks for."""
    text = os.environ.get("CAREBRIDGE_RATE_LIMIT", "").strip()
    if not text:
        return Limiter()
    count, _, seconds = text.partition("/")
    if not count.isdigit() or not seconds.isdigit():
        raise ConfigError("CAREBRIDGE_RATE_LIMIT must be <requests>/<seconds>, e.g. 600/60")
    return Limiter(int(count), int(seconds))
