"""Client CPU per request: httpx's default transport against the connector's PooledTransport.

Run: ``.venv/bin/python bench/transport.py`` (``N`` requests a round, 5,000; ``INFLIGHT``
at once, 8; ``ROUNDS`` per transport, 5; ``BODY`` bytes an answer, 2,048; ``UVLOOP=1`` runs the
clients on uvloop).

A raw asyncio HTTP/1.1 server (keep-alive, ``Content-Length`` answers of ``BODY`` bytes) runs in
a child process, so its CPU is not counted. In this process, ``httpx.AsyncClient`` sends ``N``
GETs, ``INFLIGHT`` at a time, reading each answer whole (as the connector does), first through
``httpx.AsyncHTTPTransport`` then through ``PooledTransport``, alternating for ``ROUNDS``
rounds each (httpcore spared a failed ``import sniffio`` per request, as in the connector). It
prints each round's CPU time of this process (user + system,
``time.process_time``) per request and its wall time, then the medians and the ratio
httpx / pooled of CPU per request.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

# as in the connector: its client module spares httpcore a failed ``import sniffio`` a request
import carebridge.connectors.carecloud.client  # noqa: F401
from carebridge.connectors.carecloud.transport import PooledTransport

N = int(os.environ.get("N", "5000"))
INFLIGHT = int(os.environ.get("INFLIGHT", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
BODY = int(os.environ.get("BODY", "2048"))


async def serve(port: int, size: int) -> None:
    """Answer every request on every connection with ``size`` bytes, keeping it alive."""
    body = b"x" * size
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%b" % (size, body)
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                del head  # GETs without a body
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def start_server() -> tuple[str, Callable[[], None]]:
    """The server in a child process on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(BODY)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise SystemExit("the bench server did not start")

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    return f"http://127.0.0.1:{port}/v2/patients?page=1", stop


async def round_of(url: str, transport: httpx.AsyncBaseTransport) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``N`` GETs, ``INFLIGHT`` at once."""
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(INFLIGHT):  # warm: open the connections before measuring
            (await client.get(url)).raise_for_status()
        left = N

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                response = await client.get(url)
                if response.status_code != 200 or len(response.content) != BODY:
                    raise SystemExit("a wrong answer")

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(INFLIGHT)))
        return time.process_time() - cpu, time.perf_counter() - wall


def limits() -> httpx.Limits:
    return httpx.Limits(max_connections=100, max_keepalive_connections=INFLIGHT)


def main() -> None:
    runner = asyncio.run
    if os.environ.get("UVLOOP"):
        import uvloop

        runner = uvloop.run
    url, stop = start_server()
    results: dict[str, list[tuple[float, float]]] = {"httpx": [], "pooled": []}
    try:
        for _ in range(ROUNDS):
            for name in results:
                transport: httpx.AsyncBaseTransport = (
                    httpx.AsyncHTTPTransport(limits=limits())
                    if name == "httpx"
                    else PooledTransport(max_connections=100, max_keepalive=INFLIGHT)
                )
                cpu, wall = runner(round_of(url, transport))
                results[name].append((cpu, wall))
                print(
                    f"{name:7} cpu {cpu / N * 1e6:7.1f} us/request"
                    f"  wall {wall:6.2f} s  {N / wall:8.0f} requests/s",
                    flush=True,
                )
    finally:
        stop()
    medians = {
        name: statistics.median(cpu for cpu, _ in rounds) for name, rounds in results.items()
    }
    for name, cpu in medians.items():
        print(f"median {name:7} cpu {cpu / N * 1e6:7.1f} us/request")
    print(
        f"N={N} inflight={INFLIGHT} body={BODY} B loop={'uvloop' if os.environ.get('UVLOOP') else 'asyncio'}: "
        f"httpx / pooled CPU per request = {medians['httpx'] / medians['pooled']:.2f}x"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3])))
    else:
        main()
