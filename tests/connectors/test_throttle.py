"""The AIMD throttle on a fake clock: it grows while healthy, halves on congestion, and settles
near a hidden limit with few 429s."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.clock import FakeTime

from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig


def test_healthy_responses_grow_the_rate_and_congestion_halves_it() -> None:
    t = FakeTime()
    throttle = AimdThrottle(ThrottleConfig(start_rate=10), clock=t.clock, sleep=t.sleep)
    for _ in range(50):
        throttle.on_success(latency=0.05)
    grown = throttle.budget().rate
    assert grown > 10
    throttle.on_congestion()
    assert throttle.budget().rate == pytest.approx(grown / 2)
    throttle.on_congestion()  # within the cooldown: one burst counts once
    assert throttle.budget().rate == pytest.approx(grown / 2)
    t.now += 2
    throttle.on_congestion()
    assert throttle.budget().rate == pytest.approx(grown / 4)


def test_a_slow_response_is_congestion() -> None:
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=10, slow_seconds=1), clock=t.clock, sleep=t.sleep
    )
    throttle.on_success(latency=3.0)
    assert throttle.budget().rate == 5


def test_bounds_hold() -> None:
    t = FakeTime()
    cfg = ThrottleConfig(
        start_rate=1, min_rate=0.5, max_rate=3, start_concurrency=2, max_concurrency=4
    )
    throttle = AimdThrottle(cfg, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        t.now += 5
        throttle.on_congestion()
    assert throttle.budget().rate == 0.5
    assert throttle.budget().concurrency == 1
    t.now += 5  # past the cooldown: answers right after a decrease do not grow the rate
    for _ in range(10_000):
        throttle.on_success(latency=0.01)
    assert throttle.budget().rate == 3


def test_retry_after_pauses_the_gate() -> None:
    t = FakeTime()
    throttle = AimdThrottle(ThrottleConfig(start_rate=100), clock=t.clock, sleep=t.sleep)
    throttle.on_congestion(retry_after=4)
    assert throttle.delay() == pytest.approx(4)

    async def one() -> None:
        async with throttle.slot():
            pass

    asyncio.run(one())
    assert t.now == pytest.approx(4)


def test_the_gate_spaces_requests_by_the_rate() -> None:
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=10, burst=0.1, increase=0), clock=t.clock, sleep=t.sleep
    )

    async def run() -> None:
        for _ in range(21):
            async with throttle.slot():
                pass

    asyncio.run(run())
    assert t.now == pytest.approx(2.0, abs=0.11)


def test_concurrency_is_capped() -> None:
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=1000, start_concurrency=3, max_concurrency=3),
        clock=t.clock,
        sleep=t.sleep,
    )
    peak = 0

    async def one(gate: asyncio.Event) -> None:
        nonlocal peak
        async with throttle.slot():
            peak = max(peak, throttle.in_flight)
            await gate.wait()

    async def run() -> None:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(one(gate)) for _ in range(10)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert throttle.in_flight == 3
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    assert peak == 3
    assert throttle.in_flight == 0


def test_it_settles_under_a_hidden_limit() -> None:
    """A simulated upstream allows 20 requests/s (a token bucket the client cannot see)."""
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=5, max_rate=200), clock=t.clock, sleep=t.sleep
    )
    limit, bucket, stamp = 20.0, 20.0, 0.0
    ok = limited = 0

    async def run() -> None:
        nonlocal bucket, stamp, ok, limited
        for _ in range(3000):
            async with throttle.slot():
                bucket = min(limit, bucket + (t.now - stamp) * limit)
                stamp = t.now
                if bucket >= 1:
                    bucket -= 1
                    ok += 1
                    throttle.on_success(latency=0.02)
                else:
                    limited += 1
                    throttle.on_congestion()

    asyncio.run(run())
    throughput = ok / t.now
    assert 0.6 * limit <= throughput <= limit * 1.05
    assert limited / (ok + limited) < 0.1


def test_a_rate_below_one_per_burst_still_admits_requests() -> None:
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=0.5, min_rate=0.5, burst=1.0, increase=0),
        clock=t.clock,
        sleep=t.sleep,
    )

    async def run() -> None:
        for _ in range(4):
            async with throttle.slot():
                pass

    asyncio.run(run())
    assert t.now == pytest.approx(6.0)


def _against_limit(
    throttle: AimdThrottle, t: FakeTime, limit: float, requests: int
) -> tuple[int, int]:
    """``requests`` through ``throttle`` against a hidden token bucket of ``limit`` requests/s
    (burst ``limit``): (answered, refused)."""
    bucket, stamp = limit, 0.0
    ok = limited = 0

    async def run() -> None:
        nonlocal bucket, stamp, ok, limited
        for _ in range(requests):
            async with throttle.slot():
                bucket = min(limit, bucket + (t.now - stamp) * limit)
                stamp = t.now
                if bucket >= 1:
                    bucket -= 1
                    ok += 1
                    throttle.on_success(latency=0.02)
                else:
                    limited += 1
                    throttle.on_congestion()

    asyncio.run(run())
    return ok, limited


def test_slow_start_reaches_a_budget_ten_times_the_start_within_seconds() -> None:
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=20, max_rate=400), clock=t.clock, sleep=t.sleep
    )
    for _ in range(180):  # 180 healthy answers: 20 + 180 requests/s
        throttle.on_success(latency=0.02)
    assert throttle.budget().rate == pytest.approx(200)
    assert throttle.ceiling is None  # no congestion yet


def test_it_keeps_close_to_a_hidden_limit_it_has_to_find() -> None:
    """From 20 requests/s, against a limit of 200 it does not know: most of the limit is used
    and few requests are refused (an additive-only ramp would still be far below it)."""
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_rate=20, max_rate=1000), clock=t.clock, sleep=t.sleep
    )
    ok, limited = _against_limit(throttle, t, 200.0, 6000)
    assert ok / t.now >= 0.8 * 200
    assert limited / (ok + limited) < 0.05
    assert throttle.ceiling is not None
    assert 150 <= throttle.ceiling <= 400


def test_a_learned_budget_is_resumed_within_bounds() -> None:
    t = FakeTime()
    first = AimdThrottle(ThrottleConfig(start_rate=20, max_rate=1000), clock=t.clock, sleep=t.sleep)
    _against_limit(first, t, 200.0, 3000)
    learned = first.learned()
    second = AimdThrottle(ThrottleConfig(start_rate=20, max_rate=150), clock=t.clock, sleep=t.sleep)
    second.resume(learned.rate, learned.concurrency, first.ceiling)
    assert second.budget().rate == pytest.approx(min(150, learned.rate))
    assert second.ceiling == pytest.approx(min(150, first.ceiling or 0))


def test_concurrency_grows_only_while_answers_do_not_queue() -> None:
    t = FakeTime()
    throttle = AimdThrottle(
        ThrottleConfig(start_concurrency=4, max_concurrency=32), clock=t.clock, sleep=t.sleep
    )
    for _ in range(5):
        throttle.in_flight = throttle.concurrency  # the requests in flight fill the budget
        throttle.on_success(latency=0.001)  # as fast as the upstream answers one
    assert throttle.budget().concurrency == 9
    for _ in range(20):
        throttle.in_flight = throttle.concurrency
        throttle.on_success(latency=0.05)  # fifty times slower: they wait in its queue
    assert throttle.budget().concurrency == 9
