"""The throttle's quick slot (no coroutine when nothing waits) against the awaited steps it
replaces: the same places, tokens, waits, wake-ups and cancellations, step by step, over
generated runs of requests that hold, sleep, get cancelled and meet congestion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.connectors.carecloud import throttle as throttle_module
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig


class Reference(AimdThrottle):
    """The gate as it was: an async context manager over the condition, every step awaited."""

    def slot(self) -> AbstractAsyncContextManager[None]:  # type: ignore[override]
        return self._reference_slot()

    @asynccontextmanager
    async def _reference_slot(self) -> AsyncIterator[None]:
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
                self._slots.notify(1)


class Time:
    """A clock that sleeping moves, with a pass through the loop on each sleep (so other
    tasks run meanwhile)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


request = st.tuples(
    st.integers(0, 3),  # loop passes before it asks for a slot
    st.integers(0, 4),  # loop passes it holds the slot
    st.sampled_from([None, "congestion", "success", "pause"]),  # what it reports meanwhile
    st.one_of(st.none(), st.integers(0, 8)),  # cancelled after this many passes
)


def trace(
    kind: type[AimdThrottle],
    config: ThrottleConfig,
    requests: list[tuple[int, int, str | None, int | None]],
) -> list[tuple[object, ...]]:
    time = Time()
    gate = kind(config, clock=time.clock, sleep=time.sleep)
    seen: list[tuple[object, ...]] = []

    def note(*event: object) -> None:
        seen.append((*event, gate.in_flight, round(gate.tokens, 9), gate.concurrency, time.now))

    async def one(n: int, before: int, hold: int, report: str | None) -> None:
        for _ in range(before):
            await asyncio.sleep(0)
        try:
            async with gate.slot():
                note(n, "in")
                for _ in range(hold):
                    await asyncio.sleep(0)
                if report == "congestion":
                    gate.on_congestion()
                elif report == "success":
                    gate.on_success(0.01)
                elif report == "pause":
                    gate.on_congestion(0.5)
                note(n, "out")
        except asyncio.CancelledError:
            note(n, "cancelled")
            raise
        note(n, "done")

    async def run() -> None:
        tasks = [asyncio.ensure_future(one(n, *r[:3])) for n, r in enumerate(requests)]
        cancels = sorted((r[3], n) for n, r in enumerate(requests) if r[3] is not None)
        passes = 0
        for after, n in cancels:
            while passes < after:
                await asyncio.sleep(0)
                passes += 1
            tasks[n].cancel()
        # A bounded run: a waiter whose wake-up went to a task cancelled meanwhile waits
        # for the next place given back (asyncio's Condition), which may never come.
        for _ in range(200):
            if all(task.done() for task in tasks):
                break
            await asyncio.sleep(0)
        note("cut", sum(not task.done() for task in tasks))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        note("end")

    asyncio.run(run())
    return seen


@settings(max_examples=150, deadline=None)
@given(
    requests=st.lists(request, max_size=14),
    rate=st.sampled_from([0.5, 2.0, 5.0, 1000.0]),
    concurrency=st.integers(1, 4),
)
def test_the_quick_slot_takes_the_steps_the_awaited_one_takes(
    requests: list[tuple[int, int, str | None, int | None]], rate: float, concurrency: int
) -> None:
    config = ThrottleConfig(start_rate=rate, start_concurrency=concurrency, min_rate=0.5, burst=1.0)
    assert trace(AimdThrottle, config, requests) == trace(Reference, config, requests)


def test_the_quick_steps_are_taken_on_this_python() -> None:
    # Without them every slot would take the awaited steps (correct, but not quicker).
    assert throttle_module._QUICK
    gate = AimdThrottle(ThrottleConfig(start_rate=1000))

    async def run() -> None:
        async with gate.slot():
            assert gate.in_flight == 1
        assert gate.in_flight == 0

    asyncio.run(run())
