"""Clocks for the tests: time that moves only when told to."""

from __future__ import annotations


class FakeTime:
    """The throttle's clock: sleeping moves it, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
