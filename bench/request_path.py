"""Client CPU per request outside the transport: httpx's client layer against the connector's
direct request path (``_QuickRequests`` and ``_send_direct`` in ``client.py``).

First in memory: ``SurfaceClient.request`` (the whole client, over the direct path), one at
a time and ``INFLIGHT`` at once; then ``N`` GETs built and sent one after another over a transport that answers at
once from memory, httpx's way and the direct way alternating for ``ROUNDS`` rounds; what differs
is the client layer alone. Then over loopback, as below.

Run: ``UVLOOP=1 .venv/bin/python bench/request_path.py`` (``N`` requests a round, 5,000;
``INFLIGHT`` at once, 8; ``ROUNDS`` per way, 5; ``BODY`` bytes an answer, 2,048;
``OFFLINE_ONLY=1``: only the in-memory part).

The raw keep-alive server of ``bench/transport.py`` runs in a child process (its CPU is not
counted). In this process, over one ``PooledTransport``, ``N`` GETs of distinct
``/v2/patients/{uuid}`` URLs are sent ``INFLIGHT`` at a time, each answer read whole, in these
ways, interleaved round by round:

- ``floor``: a request built once, handed to the transport and its body read: the transport's
  own CPU and this bench's, the floor under the others;
- ``httpx``: ``AsyncClient.build_request`` + ``AsyncClient.send`` (httpx's client layer);
- ``direct``: ``_QuickRequests.build`` + ``_send_direct``;
- ``surface-plain`` / ``surface-fast``: ``SurfaceClient.request`` (credential, throttle slot,
  classification) with the direct path turned off / on.

It prints each round's CPU time of this process (``time.process_time``) per request, then the
medians with their spread (min-max), and the CPU above the floor of httpx's layer and the direct
path.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from carebridge.connectors.carecloud import client as c
from carebridge.connectors.carecloud.auth import TokenSet
from carebridge.connectors.carecloud.session import Broker
from carebridge.connectors.carecloud.surfaces import _Client, bearer
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.connectors.carecloud.transport import PooledTransport

_spec = importlib.util.spec_from_file_location(
    "bench_transport", Path(__file__).with_name("transport.py")
)
assert _spec is not None
assert _spec.loader is not None
bench_transport = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_transport)

N = int(os.environ.get("N", "5000"))
INFLIGHT = int(os.environ.get("INFLIGHT", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
BODY = int(os.environ.get("BODY", "2048"))
WAYS = ("floor", "httpx", "direct", "surface-plain", "surface-fast")


def broker() -> Broker[TokenSet, None]:
    async def renew(_: None, __: TokenSet | None) -> TokenSet:
        return TokenSet("t" * 40, datetime(2100, 1, 1, tzinfo=UTC))

    return Broker(
        "v2", None, renew, expires=lambda t: t.expires_at, clock=lambda: datetime.now(UTC)
    )


async def round_of(base: str, way: str) -> float:
    """CPU seconds of ``N`` GETs, ``INFLIGHT`` at once, one way."""
    transport = PooledTransport(max_connections=100, max_keepalive=INFLIGHT)
    http = _Client(
        transport=transport,
        timeout=c.DEFAULT_TIMEOUT,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=INFLIGHT),
    )
    urls = [f"{base}/v2/patients/{uuid.uuid4()}" for _ in range(N)]
    quick = c._QuickRequests()
    fixed = http.build_request("GET", urls[0])
    fixed.headers["Authorization"] = "Bearer " + "t" * 40
    unlimited = ThrottleConfig(max_rate=1e9, start_rate=1e9, start_concurrency=INFLIGHT)
    throttle = AimdThrottle(unlimited)
    surface = c.SurfaceClient("v2", http, broker(), bearer, throttle)
    one: Callable[[str], Awaitable[Any]]

    async def floor(url: str) -> None:
        del url  # the same request each time
        response = await transport.handle_async_request(fixed)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        async for _ in stream:
            pass
        await stream.aclose()

    async def plain(url: str) -> None:
        request = http.build_request("GET", url)
        request.headers["Authorization"] = "Bearer " + "t" * 40
        await http.send(request)

    async def direct(url: str) -> None:
        request = quick.build(http, "GET", url, {})
        assert request is not None
        request.headers["Authorization"] = "Bearer " + "t" * 40
        await c._send_direct(http, request)

    async def through(url: str) -> None:
        await surface.request("GET", url, endpoint="GET /v2/patients/{id}")

    one = {
        "floor": floor,
        "httpx": plain,
        "direct": direct,
        "surface-plain": through,
        "surface-fast": through,
    }[way]
    saved = c._direct_ok, c._QuickRequests.build
    if way == "surface-plain":
        c._direct_ok = lambda _http: False  # type: ignore[assignment]
        c._QuickRequests.build = lambda *_: None  # type: ignore[method-assign]
    try:
        for url in urls[:INFLIGHT]:  # warm: open the connections before measuring
            await through(url)
        left = iter(urls)

        async def worker() -> None:
            for url in left:
                await one(url)

        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(INFLIGHT)))
        spent = time.process_time() - cpu
    finally:
        c._direct_ok, c._QuickRequests.build = saved  # type: ignore[method-assign]
        await http.aclose()
    return spent


class _Answer(httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


class _InMemory(httpx.AsyncBaseTransport):
    """A transport that answers at once from memory: the same small cost for both ways, so
    what differs is the client layer alone."""

    def __init__(self, size: int) -> None:
        self.body = b"x" * size
        self.headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(size).encode()),
        ]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        del request  # every request gets the same answer
        return httpx.Response(200, headers=self.headers, stream=_Answer(self.body))


async def offline_round(way: str) -> float:
    """CPU seconds of ``N`` requests built and sent one way over :class:`_InMemory`."""
    http = _Client(transport=_InMemory(BODY), timeout=c.DEFAULT_TIMEOUT, follow_redirects=False)
    quick = c._QuickRequests()
    urls = [f"http://127.0.0.1:8080/v2/patients/{uuid.uuid4()}" for _ in range(N)]
    token = "Bearer " + "t" * 40
    cpu = time.process_time()
    if way == "httpx":
        for url in urls:
            request = http.build_request("GET", url)
            request.headers["Authorization"] = token
            await http.send(request)
    else:
        for url in urls:
            built = quick.build(http, "GET", url, {})
            assert built is not None
            built.headers["Authorization"] = token
            await c._send_direct(http, built)
    return time.process_time() - cpu


async def surface_round(inflight: int) -> float:
    """CPU seconds of ``N`` ``SurfaceClient.request`` calls over :class:`_InMemory`,
    ``inflight`` at once: the client's own steps around the direct path (credential, throttle
    slot, classification, retry wrapper)."""
    http = _Client(transport=_InMemory(BODY), timeout=c.DEFAULT_TIMEOUT, follow_redirects=False)
    unlimited = ThrottleConfig(
        max_rate=1e9, start_rate=1e9, start_concurrency=inflight, max_concurrency=inflight
    )
    surface = c.SurfaceClient("v2", http, broker(), bearer, AimdThrottle(unlimited))
    urls = [f"http://127.0.0.1:8080/v2/patients/{uuid.uuid4()}" for _ in range(N)]
    left = iter(urls)

    async def worker() -> None:
        for url in left:
            await surface.request("GET", url, endpoint="GET /v2/patients/{id}")

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return time.process_time() - cpu


def offline(runner: Callable[[Awaitable[float]], float]) -> None:
    surface: dict[int, list[float]] = {1: [], INFLIGHT: []}
    for _ in range(ROUNDS):
        for inflight, spent in surface.items():
            spent.append(runner(surface_round(inflight)) / N * 1e6)
    for inflight, us in surface.items():
        print(
            f"in memory SurfaceClient.request, {inflight} at once:"
            f" {statistics.median(us):6.1f} us/request  (min {min(us):.1f}, max {max(us):.1f})"
        )
    results: dict[str, list[float]] = {"httpx": [], "direct": []}
    for _ in range(ROUNDS):
        for way, spent in results.items():
            spent.append(runner(offline_round(way)) / N * 1e6)
    for way, us in results.items():
        print(
            f"in memory {way:7} {statistics.median(us):6.1f} us/request"
            f"  (min {min(us):.1f}, max {max(us):.1f})"
        )
    ratio = statistics.median(results["direct"]) / statistics.median(results["httpx"])
    print(f"in memory: the direct path costs {ratio:.0%} of httpx's client layer")


def main() -> None:
    runner: Callable[[Awaitable[float]], float] = asyncio.run  # type: ignore[assignment]
    if os.environ.get("UVLOOP"):
        import uvloop

        runner = uvloop.run  # type: ignore[assignment]
    offline(runner)
    if os.environ.get("OFFLINE_ONLY"):
        return
    vars(bench_transport)["BODY"] = BODY  # the server answers this many bytes
    url, stop = bench_transport.start_server()
    base = url.split("/v2/", 1)[0]
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        for _ in range(ROUNDS):
            for way in WAYS:
                cpu = runner(round_of(base, way))
                results[way].append(cpu / N * 1e6)
                print(f"{way:13} cpu {cpu / N * 1e6:7.1f} us/request", flush=True)
    finally:
        stop()
    med = {way: statistics.median(us) for way, us in results.items()}
    for way, us in results.items():
        print(f"median {way:13} {med[way]:7.1f} us/request  (min {min(us):.1f}, max {max(us):.1f})")
    above_httpx = med["httpx"] - med["floor"]
    above_direct = med["direct"] - med["floor"]
    print(
        f"N={N} inflight={INFLIGHT} body={BODY} B loop={'uvloop' if os.environ.get('UVLOOP') else 'asyncio'}: "
        f"above the transport: httpx {above_httpx:.1f} us, direct {above_direct:.1f} us "
        f"({above_direct / above_httpx:.0%}); SurfaceClient.request: "
        f"{med['surface-plain']:.1f} -> {med['surface-fast']:.1f} us "
        f"({1 - med['surface-fast'] / med['surface-plain']:.0%} less)"
    )


if __name__ == "__main__":
    main()
