"""An adaptive throttle per tenant: AIMD on both concurrency and request rate.

Successes with healthy latency grow the budget; a 429, a 5xx or a latency spike shrinks it
multiplicatively, at most once per cooldown so one burst of failures counts once. Growth has
three regimes (TCP's, for a request rate): **slow start** until the first congestion (one more
request/s per success: the rate doubles every second's worth of requests, so a tenant whose
budget is ten times the starting rate is reached in a few seconds, not minutes); **recovery**
after a decrease, as fast, back to ``recover`` of the rate congestion last struck at (the
learned ceiling, :attr:`AimdThrottle.ceiling`); then **probing**, additively, past it. A
throttle can also start from a budget learned earlier (``learned``).
The rate is enforced by a token bucket on an injected clock, so tests are exact and sleepless.
The current budget is published for the API's ``RateLimit`` headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleConfig:
    """Bounds and gains of the controller."""

    min_rate: float = 0.5  # requests/s
    max_rate: float = 200.0
    start_rate: float = 20.0
    min_concurrency: int = 1
    max_concurrency: int = 32
    start_concurrency: int = 8
    increase: float = 1.0  # added to the rate per healthy window
    decrease: float = 0.5  # rate and concurrency multiply by this on congestion
    slow_seconds: float = 2.0  # a response slower than this counts as congestion
    cooldown: float = 1.0  # seconds between two decreases
    burst: float = 1.0  # seconds of rate the bucket may hold
    recover: float = 0.85  # a decreased rate grows fast back to this share of the ceiling
    queueing: float = 0.005  # seconds over twice the fastest answer that mean answers queue


@dataclass(frozen=True)
class Budget:
    """What the throttle allows right now."""

    rate: float
    concurrency: int
    in_flight: int
    tokens: float

    @property
    def remaining(self) -> int:
        """Requests that could start now (for ``RateLimit: remaining``)."""
        return max(0, min(int(self.tokens), self.concurrency - self.in_flight))


class AimdThrottle:
    """The controller and its gate. ``clock`` returns seconds; ``sleep`` waits."""

    def __init__(
        self,
        config: ThrottleConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config or ThrottleConfig()
        self.clock = clock
        self.sleep = sleep
        self.rate = self.config.start_rate
        self.ceiling: float | None = None
        """The rate congestion last struck at (None: none yet, the throttle is in slow start)."""
        self.fastest = float("inf")
        """The lowest latency seen: the upstream's own time, without queueing."""
        self.concurrency = self.config.start_concurrency
        self.in_flight = 0
        self.tokens = self._capacity()
        self._stamp = clock()
        self._last_decrease = float("-inf")
        self._paused_until = 0.0
        self._slots = asyncio.Condition()

    # --- the controller -------------------------------------------------------------------------

    def budget(self) -> Budget:
        """The current budget."""
        self._refill()
        return Budget(self.rate, self.concurrency, self.in_flight, self.tokens)

    def on_success(self, latency: float) -> None:
        """A healthy (or slow) response came back."""
        if latency > self.config.slow_seconds:
            self.on_congestion()
            return
        cfg = self.config
        if self.clock() - self._last_decrease < cfg.cooldown:
            return  # answers to requests sent before the decrease say nothing of the new rate
        if self.ceiling is None or self.rate < cfg.recover * self.ceiling:
            step = cfg.increase  # slow start, or recovery towards the learned ceiling
        else:
            step = cfg.increase / max(self.rate, 1.0) * 4  # probing past it
        self.rate = min(cfg.max_rate, self.rate + step)
        self.fastest = min(self.fastest, latency)
        queued = latency > 2 * self.fastest + cfg.queueing
        if self.in_flight >= self.concurrency - 1 and not queued:
            # one more in flight only while answers come as fast as the upstream can answer
            # one: once they wait in its queue, more at once only lengthens the queue
            self.concurrency = min(cfg.max_concurrency, self.concurrency + 1)

    def on_congestion(self, retry_after: float | None = None) -> None:
        """A 429, a 5xx or a timeout: shrink once per cooldown; honour Retry-After."""
        now = self.clock()
        if retry_after:
            self._paused_until = max(self._paused_until, now + retry_after)
        if now - self._last_decrease < self.config.cooldown:
            return
        self._last_decrease = now
        cfg = self.config
        self.ceiling = self.rate
        self.rate = max(cfg.min_rate, self.rate * cfg.decrease)
        self.concurrency = max(cfg.min_concurrency, int(self.concurrency * cfg.decrease))
        self.tokens = min(self.tokens, self._capacity())

    def learned(self) -> Budget:
        """The budget worth starting from next time (the current one; see :meth:`resume`)."""
        return self.budget()

    def resume(self, rate: float, concurrency: int, ceiling: float | None = None) -> None:
        """Start from a budget learned earlier (a previous run's :meth:`learned`), within the
        configured bounds, instead of the configured start."""
        cfg = self.config
        self.rate = min(cfg.max_rate, max(cfg.min_rate, rate))
        self.concurrency = min(cfg.max_concurrency, max(cfg.min_concurrency, concurrency))
        self.ceiling = None if ceiling is None else min(cfg.max_rate, ceiling)
        self.tokens = min(self.tokens, self._capacity())

    # --- the gate -------------------------------------------------------------------------------

    def _capacity(self) -> float:
        # At least one whole token, or a slow rate could never admit a request.
        return max(1.0, self.rate * self.config.burst)

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self.tokens = min(self._capacity(), self.tokens + elapsed * self.rate)

    def delay(self) -> float:
        """Seconds until one request may start by rate (0 when it may start now)."""
        self._refill()
        pause = max(0.0, self._paused_until - self.clock())
        # A token short by a rounding error counts as whole: waiting 1e-12 s would not move a
        # float clock, and the gate would spin.
        missing = 0.0 if self.tokens >= 1 - 1e-6 else (1 - self.tokens) / self.rate
        wait = max(pause, missing)
        return wait if wait > 1e-6 else 0.0  # a rounding residue is no reason to wait

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request's place: waits for concurrency, then for a rate token."""
        async with self._slots:
            await self._slots.wait_for(lambda: self.in_flight < self.concurrency)
            self.in_flight += 1
        try:
            while (wait := self.delay()) > 0:
                await self.sleep(wait)
            self.tokens -= 1
            yield
        finally:
            async with self._slots:
                self.in_flight -= 1
                # One place freed: wake one waiter (waking all is quadratic with many waiters).
                self._slots.notify(1)
