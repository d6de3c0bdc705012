"""The two I/O loops (sync and async) that run a :class:`~carebridge.client._core.Call`: send,
retry by the :class:`~carebridge.client._core.RetryPolicy` (sleeping with the injected
``sleep``), and read the answer; and the two auto-paging iterators over a list.

Everything else is shared and free of I/O (``_core``); these are the only places that wait.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Generic, TypeVar

import anyio
import httpx

from carebridge.client._core import (
    DEFAULT_BASE_URL,
    Call,
    ListCall,
    RetryPolicy,
    headers,
    more,
)
from carebridge.client._errors import ConnectionFailed, TimedOut, from_response
from carebridge.contract import Page

T = TypeVar("T")
M = TypeVar("M")

DEFAULT_TIMEOUT = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def _failed(exc: httpx.TransportError) -> ConnectionFailed:
    if isinstance(exc, httpx.TimeoutException):
        return TimedOut(f"no answer in time from the API ({type(exc).__name__})")
    return ConnectionFailed(f"could not reach the API ({type(exc).__name__})")


class SyncEngine:
    """Runs calls over an ``httpx.Client``, retrying with ``sleep`` between attempts."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        retry: RetryPolicy,
        sleep: Callable[[float], None] | None,
        transport: httpx.BaseTransport | None,
        http_client: httpx.Client | None,
    ) -> None:
        self.retry = retry
        self.sleep = sleep or time.sleep
        self.owned = http_client is None
        self.http = http_client or httpx.Client(
            base_url=base_url or DEFAULT_BASE_URL, timeout=timeout, transport=transport
        )
        self.http.headers.update(headers(api_key))

    def run(self, call: Call[T]) -> T:
        """Send ``call`` until it succeeds, fails for good, or the retries run out."""
        attempt = 0
        while True:
            try:
                response = self.http.send(call.request(self.http))
            except httpx.TransportError as exc:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise _failed(exc) from exc
            else:
                if response.is_success:
                    return call.answer(response)
                wait = self.retry.delay(
                    attempt, response.status_code, response.headers.get("retry-after"), now=_now()
                )
                if wait is None:
                    raise from_response(response)
            self.sleep(wait)
            attempt += 1

    def close(self) -> None:
        """Close the HTTP client, unless the caller gave it (then it is theirs to close)."""
        if self.owned:
            self.http.close()


class AsyncEngine:
    """Runs calls over an ``httpx.AsyncClient``, retrying with ``sleep`` between attempts."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] | None,
        transport: httpx.AsyncBaseTransport | None,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self.retry = retry
        self.sleep = sleep or anyio.sleep
        self.owned = http_client is None
        self.http = http_client or httpx.AsyncClient(
            base_url=base_url or DEFAULT_BASE_URL, timeout=timeout, transport=transport
        )
        self.http.headers.update(headers(api_key))

    async def run(self, call: Call[T]) -> T:
        """Send ``call`` until it succeeds, fails for good, or the retries run out."""
        attempt = 0
        while True:
            try:
                response = await self.http.send(call.request(self.http))
            except httpx.TransportError as exc:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise _failed(exc) from exc
            else:
                if response.is_success:
                    return call.answer(response)
                wait = self.retry.delay(
                    attempt, response.status_code, response.headers.get("retry-after"), now=_now()
                )
                if wait is None:
                    raise from_response(response)
            await self.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        """Close the HTTP client, unless the caller gave it."""
        if self.owned:
            await self.http.aclose()


class Pager(Generic[M]):
    """A list, fetched a page at a time as it is iterated: ``for patient in pager``.

    ``pages()`` iterates whole pages instead; ``first_page()`` fetches only the first.
    """

    def __init__(self, engine: SyncEngine, listing: ListCall[M]) -> None:
        self._engine = engine
        self._listing = listing

    def first_page(self) -> Page[M]:
        """The first page only."""
        return self._engine.run(self._listing.page())

    def pages(self) -> Iterator[Page[M]]:
        """Every page, in order, each fetched when the previous one is used up."""
        page = self.first_page()
        yield page
        while more(page):
            page = self._engine.run(self._listing.page(page.next_cursor))
            yield page

    def __iter__(self) -> Iterator[M]:
        for page in self.pages():
            yield from page.data

    def to_list(self) -> list[M]:
        """Every record of every page."""
        return list(self)


class AsyncPager(Generic[M]):
    """A list, fetched a page at a time as it is iterated: ``async for patient in pager``."""

    def __init__(self, engine: AsyncEngine, listing: ListCall[M]) -> None:
        self._engine = engine
        self._listing = listing

    async def first_page(self) -> Page[M]:
        """The first page only."""
        return await self._engine.run(self._listing.page())

    async def pages(self) -> AsyncIterator[Page[M]]:
        """Every page, in order, each fetched when the previous one is used up."""
        page = await self.first_page()
        yield page
        while more(page):
            page = await self._engine.run(self._listing.page(page.next_cursor))
            yield page

    async def __aiter__(self) -> AsyncIterator[M]:
        async for page in self.pages():
            for item in page.data:
                yield item

    async def to_list(self) -> list[M]:
        """Every record of every page."""
        return [item async for item in self]
