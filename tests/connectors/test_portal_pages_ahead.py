"""A portal list read with pages requested ahead answers exactly what the one-page-at-a-time
read answers, in order: every page once, a list that grew meanwhile read to its new end, and a
failed page failing the read with the other requests cancelled."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stamina

from carebridge.connectors.carecloud.client import SurfaceClient
from carebridge.connectors.carecloud.session import Broker
from carebridge.connectors.carecloud.throttle import AimdThrottle
from carebridge.errors import UpstreamStatusError

pytestmark = pytest.mark.anyio

URL = "https://portal.invalid/portal/api/patients"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Listing:
    """A paged list of ``size`` items (``per`` a page) that can grow after some page is read,
    or refuse one page with a final 400."""

    def __init__(self, size: int, per: int, *, grow_after: int = 0, refuse: int = 0) -> None:
        self.size, self.per = size, per
        self.grow_after, self.refuse = grow_after, refuse
        self.asked: Counter[int] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        self.asked[page] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let the other requests in flight start
            if page == self.refuse:
                return httpx.Response(400, json={"error": "refused"})
            if self.grow_after and page == self.grow_after:
                self.size += 2 * self.per  # two more pages appear
            total = -(-self.size // self.per)
            first = (page - 1) * self.per
            items = [{"n": n} for n in range(first, min(first + self.per, self.size))]
            body = {"items": items, "page": page, "pageSize": self.per, "totalPages": total}
            return httpx.Response(200, content=json.dumps(body).encode())
        finally:
            self.in_flight -= 1


def _client(listing: Listing) -> SurfaceClient[str]:
    async def renew(secrets: str, current: str | None) -> str:
        del current
        return secrets

    broker: Broker[str, str] = Broker(
        "portal", "credential", renew, expires=lambda _: None, clock=lambda: datetime.now(UTC)
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(listing))
    return SurfaceClient("portal", http, broker, lambda request, c: None, AimdThrottle())


async def _read(listing: Listing, ahead: int) -> list[Any]:
    client = _client(listing)
    try:
        return [
            item["n"]
            async for body in client.portal_pages(URL, {"pageSize": listing.per}, ahead=ahead)
            for item in body["items"]
        ]
    finally:
        await client.http.aclose()


@pytest.mark.parametrize("ahead", [1, 3, 8, 50])
@pytest.mark.parametrize(("size", "per"), [(0, 10), (7, 10), (10, 10), (95, 10), (101, 7)])
async def test_ahead_reads_every_page_once_in_order(size: int, per: int, ahead: int) -> None:
    sequential, concurrent = Listing(size, per), Listing(size, per)
    assert await _read(concurrent, ahead) == await _read(sequential, 0) == list(range(size))
    assert set(concurrent.asked.values()) <= {1}
    assert concurrent.asked == sequential.asked
    assert concurrent.most_in_flight <= ahead


async def test_ahead_requests_several_pages_at_once() -> None:
    listing = Listing(200, 10)
    await _read(listing, 8)
    assert listing.most_in_flight > 1


@pytest.mark.parametrize("ahead", [0, 2, 8])
async def test_a_list_that_grows_meanwhile_is_read_to_its_new_end(ahead: int) -> None:
    listing = Listing(50, 10, grow_after=3)
    assert await _read(listing, ahead) == list(range(70))
    assert set(listing.asked.values()) == {1}


async def test_a_refused_page_fails_the_read_and_cancels_the_rest() -> None:
    listing = Listing(200, 10, refuse=4)
    before = asyncio.all_tasks()
    with stamina.set_testing(True), pytest.raises(UpstreamStatusError, match="status 400"):
        await _read(listing, 8)
    assert asyncio.all_tasks() - before == set()
    assert max(listing.asked) < 20  # the pages past those requested ahead were never asked
