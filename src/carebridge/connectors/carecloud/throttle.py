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
from collections.abc import Awaitable, Callable
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
        self._lock = asyncio.Lock()
        self._slots = asyncio.Condition(self._lock)

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

    def slot(self) -> _Slot:
        """Hold one request's place (``async with throttle.slot():``): waits for concurrency,
        then for a rate token."""
        return _Slot(self)

    def _lock_free(self) -> bool:
        """Whether ``async with self._slots`` would take the lock at once (asyncio's own test:
        not held, no one queued for it who is still waiting)."""
        lock = self._lock
        if lock.locked():
            return False
        waiters = lock._waiters
        return not waiters or all(waiter.cancelled() for waiter in waiters)

    def _place_now(self) -> float | None:
        """Take a place without waiting when the gate's steps would not wait for one (the lock
        free, a place free), and answer the rate's delay (0: the token is taken too); None when
        a wait is due (the awaited steps of :meth:`_Slot._enter` then take the place). The
        same steps as those, done without their coroutines."""
        if not self._lock_free() or self.in_flight >= self.concurrency:
            return None
        self.in_flight += 1
        wait = self.delay()
        if wait <= 0:
            self.tokens -= 1
        return wait

    def _release_now(self) -> bool:
        """Give a place back without waiting when the lock is free (as ``async with
        self._slots`` would take it at once): one place freed, one waiter woken."""
        if not self._lock_free():
            return False
        self._lock._locked = True  # type: ignore[attr-defined]  # what ``acquire`` sets
        try:
            self._freed()
        finally:
            self._lock.release()
        return True

    def _freed(self) -> None:
        self.in_flight -= 1
        # One place freed: wake one waiter (waking all is quadratic with many waiters).
        self._slots.notify(1)

    async def _release(self) -> None:
        async with self._slots:
            self._freed()


class _Slot:
    """One request's place in an :class:`AimdThrottle` (see :meth:`AimdThrottle.slot`).

    When neither wait waits (the usual case), the place and the token are taken and the
    place given back without a coroutine: the same steps in the same order as the awaited
    ones, none of which would have suspended.
    """

    __slots__ = ("_throttle",)

    def __init__(self, throttle: AimdThrottle) -> None:
        self._throttle = throttle

    async def __aenter__(self) -> None:
        throttle = self._throttle
        wait = throttle._place_now() if _QUICK else None
        if wait is None:
            await self._enter()
        elif wait > 0:
            await self._rate(wait)

    async def _enter(self) -> None:
        throttle = self._throttle
        async with throttle._slots:
            await throttle._slots.wait_for(lambda: throttle.in_flight < throttle.concurrency)
            throttle.in_flight += 1
        await self._rate(None)

    async def _rate(self, wait: float | None) -> None:
        """Wait for a rate token (``wait``: the delay already asked), then take it."""
        throttle = self._throttle
        try:
            if wait is None:
                wait = throttle.delay()
            while wait > 0:
                await throttle.sleep(wait)
                wait = throttle.delay()
            throttle.tokens -= 1
        except BaseException:
            await self._exit()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self._exit()

    async def _exit(self) -> None:
        throttle = self._throttle
        if not (_QUICK and throttle._release_now()):
            await throttle._release()


def _lock_state_known() -> bool:
    probe = asyncio.Lock()
    return hasattr(probe, "_locked") and hasattr(probe, "_waiters")


_QUICK = _lock_state_known()
"""Whether ``asyncio.Lock`` keeps the state the gate's quick steps read (``_locked`` and
``_waiters``, as CPython 3.11 to 3.13 do); without it every slot takes the awaited steps."""
