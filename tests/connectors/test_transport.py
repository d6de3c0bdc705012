"""The connector's HTTP/1.1 transport (``PooledTransport``) against real loopback servers.

Most servers here are raw ``asyncio.start_server`` handlers, for exact control of the bytes on
the wire (answers cut short, dropped connections, answers that never come); one is uvicorn
serving a small ASGI app, for a realistic server. Requests go through ``httpx.AsyncClient``, as
the connector sends them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from carebridge.connectors.carecloud import transport as t
from carebridge.connectors.carecloud.surfaces import connect
from carebridge.connectors.carecloud.throttle import AimdThrottle
from carebridge.errors import ConfigError

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Every test on asyncio's own loop and on uvloop (carebridge's commands run on it)."""
    return ("asyncio", {"use_uvloop": request.param == "uvloop"})


# --- a raw server -------------------------------------------------------------------------------

Handler = Callable[["Exchange"], Awaitable[None]]


class Exchange:
    """One server-side connection: read requests, write raw answers."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ending: asyncio.Event
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ending = ending

    async def hang(self) -> None:
        """Answer nothing more until the server stops."""
        await self.ending.wait()

    async def request(self) -> tuple[bytes, bytes]:
        """The next request's head and its (de-chunked) body; raises IncompleteReadError at
        the connection's end."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        lowered = head.lower()
        body = b""
        if b"\r\ntransfer-encoding: chunked" in lowered:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        elif b"\r\ncontent-length:" in lowered:
            at = lowered.index(b"\r\ncontent-length:") + 17
            length = int(lowered[at : lowered.index(b"\r\n", at)])
            body = await self.reader.readexactly(length)
        return head, body

    async def raw_request(self) -> bytes:
        """The next request's bytes exactly as they came (head and body as sent)."""
        head, body = await self.request()
        del body
        return head

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


def ok(body: bytes = b"hello", *extra: bytes) -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%b\r\n%b" % (len(body), headers, body)


class RawServer:
    """A loopback server running ``handler`` on each connection; counts connections."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.ending = asyncio.Event()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            await self.handler(Exchange(reader, writer, self.ending))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self.handlers.discard(task)
            self.writers.discard(writer)

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        self.ending.set()
        for writer in list(self.writers):  # the connections still open end with the server
            writer.close()
        await asyncio.gather(*self.handlers)
        await self.server.wait_closed()


async def keep_answering(ex: Exchange) -> None:
    """Answer every request on the connection with ``hello``."""
    while True:
        await ex.request()
        ex.send(ok())


def client(
    transport: httpx.AsyncBaseTransport, *, timeout: float = 5, **kwargs: Any
) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout, **kwargs)


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (at most 5 s)."""
    with anyio.fail_after(5):
        while not condition():
            await asyncio.sleep(0)


# --- answers ------------------------------------------------------------------------------------


async def test_a_content_length_answer_is_read_whole_with_its_headers() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(ok(b'{"a": 1}', b"Content-Type: application/json", b"X-Twice: 1", b"X-Twice: 2"))
        await ex.request()

    async with RawServer(handler) as server, client(t.PooledTransport()) as c:
        response = await c.get(f"{server.url}/v2/patients?page=2")
    assert response.status_code == 200
    assert response.json() == {"a": 1}
    assert response.headers.get_list("x-twice") == ["1", "2"]
    assert response.headers.raw[1] == (b"Content-Type", b"application/json")
    assert response.http_version == "HTTP/1.1"
    assert response.reason_phrase == "OK"


async def test_a_chunked_answer_sent_in_pieces_is_joined() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"5\r\nhel", b"lo\r\n", b"6\r\n world\r\n", b"0\r\n", b"\r\n"):
            ex.send(piece)
            await ex.drain()
        await keep_answering(ex)

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        response = await c.get(server.url)
        again = await c.get(server.url)
        assert response.status_code == 201
        assert response.reason_phrase == "Created"
        assert response.content == b"hello world"
        assert again.content == b"hello"
        assert server.connections == 1


async def test_an_informational_answer_is_skipped_for_the_final_one() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        await ex.drain()
        ex.send(ok(b"done"))
        await keep_answering(ex)

    async with RawServer(handler) as server, client(t.PooledTransport()) as c:
        response = await c.post(server.url, content=b"x" * 10)
        assert (response.status_code, response.content) == (200, b"done")
        assert (await c.get(server.url)).content == b"hello"
        assert server.connections == 1


async def test_a_body_that_runs_to_the_end_of_the_connection_is_read_whole() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome ")
        await ex.drain()
        ex.send(b"bytes")
        await ex.drain()
        ex.close()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        response = await c.get(server.url)
        assert response.content == b"some bytes"
        assert transport.open_connections == 0


async def test_a_head_request_has_no_body_and_goes_through_the_fallback() -> None:
    async def handler(ex: Exchange) -> None:
        while True:
            head, _ = await ex.request()
            if head.startswith(b"HEAD"):
                ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            else:
                ex.send(ok())

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        head = await c.head(server.url)
        get = await c.get(server.url)
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "1000", b"")
    assert get.content == b"hello"


# --- keep-alive ---------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    transport = t.PooledTransport()
    async with RawServer(keep_answering) as server, client(transport) as c:
        for _ in range(5):
            assert (await c.get(server.url)).content == b"hello"
        assert server.connections == 1
        assert transport.idle_connections == 1


async def test_a_server_connection_close_answer_is_not_reused() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(ok(b"once", b"Connection: close"))
        await ex.drain()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        assert (await c.get(server.url)).content == b"once"
        assert (await c.get(server.url)).content == b"once"
        assert server.connections == 2
        assert transport.open_connections == 0


async def test_a_client_connection_close_request_is_not_reused() -> None:
    transport = t.PooledTransport()
    async with RawServer(keep_answering) as server, client(transport) as c:
        await c.get(server.url, headers={"Connection": "close"})
        await c.get(server.url)
        assert server.connections == 2


async def test_an_idle_connection_the_server_dropped_is_not_handed_out() -> None:
    dropped = asyncio.Event()

    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(ok())
        await ex.drain()
        if not dropped.is_set():
            ex.close()  # as a server's keep-alive timeout does
            dropped.set()
        else:
            await keep_answering(ex)

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        await c.get(server.url)
        await dropped.wait()
        await until(lambda: transport.idle_connections == 0)
        assert transport.open_connections == 0
        assert (await c.get(server.url)).content == b"hello"
        assert server.connections == 2


async def test_an_expired_idle_connection_is_closed_and_replaced() -> None:
    transport = t.PooledTransport(keepalive_expiry=0)
    async with RawServer(keep_answering) as server, client(transport) as c:
        await c.get(server.url)
        await c.get(server.url)
        assert server.connections == 2
        assert transport.open_connections == 1


async def test_idle_connections_past_max_keepalive_are_closed() -> None:
    transport = t.PooledTransport(max_keepalive=2)
    async with RawServer(keep_answering) as server, client(transport) as c:
        await asyncio.gather(*(c.get(server.url) for _ in range(5)))
        assert server.connections == 5
        assert transport.idle_connections == 2
        assert transport.open_connections == 2


# --- timeouts and the pool's limit --------------------------------------------------------------


async def test_a_server_that_never_answers_is_a_read_timeout_and_its_connection_is_closed() -> None:

    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.hang()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport, timeout=0.05) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(server.url)
        assert transport.open_connections == 0


async def test_a_body_that_stalls_is_a_read_timeout() -> None:

    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await ex.hang()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport, timeout=0.05) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(server.url)
        assert transport.open_connections == 0


async def test_the_pool_limit_holds_requests_until_a_connection_is_free() -> None:
    transport = t.PooledTransport(max_connections=1)
    async with RawServer(keep_answering) as server, client(transport) as c:
        async with c.stream("GET", server.url) as first:
            with pytest.raises(httpx.PoolTimeout):
                await c.get(server.url, timeout=httpx.Timeout(5, pool=0.05))
            waiting = asyncio.ensure_future(c.get(server.url))
            await until(lambda: len(transport._waiters) == 1)
            await first.aread()
        assert (await waiting).content == b"hello"
        assert server.connections == 1


async def test_a_hundred_concurrent_requests_all_answer() -> None:
    async def handler(ex: Exchange) -> None:
        while True:
            head, _ = await ex.request()
            path = head.split(b" ")[1]
            ex.send(ok(path))

    transport = t.PooledTransport(max_connections=100, max_keepalive=100)
    async with RawServer(handler) as server, client(transport) as c:
        answers = await asyncio.gather(*(c.get(f"{server.url}/{i}") for i in range(100)))
        assert [a.content for a in answers] == [f"/{i}".encode() for i in range(100)]
        assert server.connections <= 100


async def test_a_hundred_concurrent_requests_share_a_small_pool() -> None:
    transport = t.PooledTransport(max_connections=10, max_keepalive=10)
    async with RawServer(keep_answering) as server, client(transport) as c:
        answers = await asyncio.gather(*(c.get(server.url) for _ in range(100)))
        assert {a.content for a in answers} == {b"hello"}
        assert server.connections <= 10
        assert transport.open_connections <= 10


async def test_a_waiting_request_for_another_origin_gets_the_freed_slot() -> None:
    transport = t.PooledTransport(max_connections=1)
    async with (
        RawServer(keep_answering) as one,
        RawServer(keep_answering) as two,
        client(transport) as c,
    ):
        async with c.stream("GET", one.url) as first:
            other = asyncio.ensure_future(c.get(two.url))
            await until(lambda: len(transport._waiters) == 1)
            await first.aread()
        assert (await other).content == b"hello"
        assert (await c.get(one.url)).content == b"hello"  # evicts two's idle connection
        assert (one.connections, two.connections) == (2, 1)
        assert transport.open_connections == 1


# --- bodies -------------------------------------------------------------------------------------


async def test_a_ten_megabyte_body_streams_with_bounded_buffering() -> None:
    size = 10 * 1024 * 1024
    block = bytes(range(256)) * 256

    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            ex.send(block)
            await ex.drain()
        await keep_answering(ex)

    transport = t.PooledTransport()
    digest = hashlib.sha256()
    largest = 0
    async with RawServer(handler) as server, client(transport) as c:
        async with c.stream("GET", server.url) as response:
            async for chunk in response.aiter_raw():
                digest.update(chunk)
                largest = max(largest, len(chunk))
                for _ in range(10):  # a slow reader: the socket is read meanwhile
                    await asyncio.sleep(0)
        assert digest.digest() == hashlib.sha256(block * (size // len(block))).digest()
        # flow control: never more than the buffer plus one socket read held unread
        assert largest <= t.READ_BUFFER + 256 * 1024
        assert (await c.get(server.url)).content == b"hello"
        assert server.connections == 1


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    received: list[bytes] = []

    async def handler(ex: Exchange) -> None:
        while True:
            _, body = await ex.request()
            received.append(body)
            ex.send(ok(hashlib.sha256(body).hexdigest().encode()))

    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b""  # an empty part would end a chunked body: it is skipped
        yield b"x" * 300_000
        yield b",last"

    expected = b"first," + b"x" * 300_000 + b",last"
    async with RawServer(handler) as server, client(t.PooledTransport()) as c:
        response = await c.post(server.url, content=parts())
        assert response.content == hashlib.sha256(expected).hexdigest().encode()
        assert (await c.get(server.url)).status_code == 200
    assert received == [expected, b""]


async def test_requests_on_the_wire_are_byte_for_byte_httpcores() -> None:
    """GET, a JSON POST, a large POST and a streamed POST: the same bytes as httpx's own
    transport (httpcore and h11) writes."""
    wire: list[bytes] = []

    async def handler(ex: Exchange) -> None:
        while True:
            head = await ex.reader.readuntil(b"\r\n\r\n")
            lowered = head.lower()
            rest = b""
            if b"chunked" in lowered:
                rest = await ex.reader.readuntil(b"\r\n0\r\n\r\n")
            elif b"content-length:" in lowered:
                at = lowered.index(b"content-length:") + 15
                rest = await ex.reader.readexactly(int(lowered[at : lowered.index(b"\r\n", at)]))
            wire.append(head + rest)
            ex.send(ok())

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"a", b"", b"bc" * 5000, b"d"):
            yield part

    async def send_all(transport: httpx.AsyncBaseTransport, url: str) -> None:
        async with client(transport, headers={"Authorization": "Bearer t"}) as c:
            await c.get(f"{url}/v2/patients?page=2&q=a%20b")
            await c.post(f"{url}/portal/api/x", json={"k": [1, 2]})
            await c.put(f"{url}/big", content=b"z" * 100_000)
            await c.post(f"{url}/stream", content=parts())
            await c.delete(f"{url}/gone")

    async with RawServer(handler) as server:
        await send_all(httpx.AsyncHTTPTransport(), server.url)
        theirs = list(wire)
        wire.clear()
        await send_all(t.PooledTransport(), server.url)
    assert wire == theirs


async def test_an_answer_before_the_whole_body_was_sent_is_the_outcome() -> None:
    answered = asyncio.Event()

    async def handler(ex: Exchange) -> None:
        await ex.reader.readuntil(b"\r\n\r\n")
        await ex.reader.readexactly(len(b"5\r\nfirst\r\n"))
        ex.send(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 3\r\nConnection: close\r\n\r\nbig"
        )
        await ex.drain()
        ex.close()
        answered.set()

    transport = t.PooledTransport()

    async def parts() -> AsyncIterator[bytes]:
        yield b"first"
        await answered.wait()
        await until(lambda: all(conn.closed for conn in transport._conns))
        for _ in range(5):
            yield b"more" * 100_000

    async with RawServer(handler) as server, client(transport) as c:
        response = await c.post(server.url, content=parts())
        assert (response.status_code, response.content) == (413, b"big")
        assert transport.open_connections == 0


async def test_a_body_longer_than_its_content_length_is_refused() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"abcdef"

    transport = t.PooledTransport()
    async with RawServer(keep_answering) as server, client(transport) as c:
        with pytest.raises(httpx.LocalProtocolError):
            await c.post(server.url, content=parts(), headers={"Content-Length": "3"})
        assert transport.open_connections == 0


async def test_a_header_with_a_line_break_is_refused() -> None:
    async with RawServer(keep_answering) as server, client(t.PooledTransport()) as c:
        request = c.build_request("GET", server.url)
        request.headers["X-Bad"] = "a\r\nX-Injected: 1"
        with pytest.raises(httpx.LocalProtocolError):
            await c.send(request)


# --- failures -----------------------------------------------------------------------------------


async def test_a_server_that_closes_before_answering_is_a_remote_protocol_error() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(server.url)
        assert transport.open_connections == 0


async def test_an_answer_cut_short_is_a_remote_protocol_error() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
        await ex.drain()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(server.url)
        assert transport.open_connections == 0


@pytest.mark.parametrize(
    "answer",
    [b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"],
)
async def test_a_malformed_or_unasked_answer_is_a_remote_protocol_error(answer: bytes) -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(answer)
        await ex.request()

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(server.url)
        assert transport.open_connections == 0


async def test_bytes_after_a_complete_answer_keep_the_connection_out_of_the_pool() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(ok() + b"HTTP/1.1 200 OK\r\n")
        await keep_answering(ex)

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        assert (await c.get(server.url)).content == b"hello"
        assert (await c.get(server.url)).content == b"hello"
        assert server.connections == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    transport = t.PooledTransport()
    async with client(transport) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{port}/")
        assert transport.open_connections == 0


async def test_a_scheme_other_than_http_is_unsupported() -> None:
    async with client(t.PooledTransport()) as c:
        with pytest.raises(httpx.UnsupportedProtocol):
            await c.send(httpx.Request("GET", "ftp://127.0.0.1/"))


# --- cancellation -------------------------------------------------------------------------------


async def test_a_request_cancelled_mid_body_leaves_no_connection_behind() -> None:
    first_chunk = asyncio.Event()

    async def handler(ex: Exchange) -> None:
        head, _ = await ex.request()
        if b"/slow" in head:
            ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")
            await ex.drain()
            await ex.hang()
        ex.send(ok())
        await keep_answering(ex)

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:

        async def read_slowly() -> None:
            async with c.stream("GET", f"{server.url}/slow") as response:
                async for _ in response.aiter_raw():
                    first_chunk.set()

        task = asyncio.ensure_future(read_slowly())
        await first_chunk.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (transport.open_connections, transport.idle_connections) == (0, 0)
        assert (await c.get(f"{server.url}/fast")).content == b"hello"
        assert server.connections == 2


async def test_a_request_cancelled_before_its_answer_leaves_no_connection_behind() -> None:
    asked = asyncio.Event()

    async def handler(ex: Exchange) -> None:
        head, _ = await ex.request()
        if b"/slow" in head:
            asked.set()
            await ex.hang()
        ex.send(ok())
        await keep_answering(ex)

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        task = asyncio.ensure_future(c.get(f"{server.url}/slow"))
        await asked.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport.open_connections == 0
        assert (await c.get(f"{server.url}/fast")).content == b"hello"


async def test_a_stream_closed_early_closes_its_connection() -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await keep_answering(ex)

    transport = t.PooledTransport()
    async with RawServer(handler) as server, client(transport) as c:
        async with c.stream("GET", server.url):
            pass
        assert transport.open_connections == 0


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_with_a_trusted_self_signed_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert_file, key_file = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_file, key_file)
    served.set_alpn_protocols(["http/1.1"])
    transport = t.PooledTransport(verify=ssl.create_default_context(cafile=cert_file))
    async with RawServer(keep_answering, tls=served) as server, client(transport) as c:
        for _ in range(3):
            assert (await c.get(f"{server.url}/secure")).content == b"hello"
        assert server.connections == 1


async def test_https_with_an_untrusted_certificate_is_a_connect_error(
    certificate: tuple[Path, Path],
) -> None:
    cert_file, key_file = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_file, key_file)
    transport = t.PooledTransport()
    async with RawServer(keep_answering, tls=served) as server, client(transport) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(server.url)
        assert transport.open_connections == 0


# --- a realistic server -------------------------------------------------------------------------


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app: answers a JSON document naming the method, path and body length."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    document = b'{"method": "%b", "path": "%b", "length": %d}' % (
        scope["method"].encode(),
        scope["path"].encode(),
        len(body),
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": document})


@pytest.fixture
def uvicorn_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue until uvicorn accepts them
    server = uvicorn.Server(
        uvicorn.Config(echo_app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


async def test_uvicorn_answers_gets_and_posts_over_reused_connections(uvicorn_url: str) -> None:
    transport = t.PooledTransport(max_keepalive=8)
    async with client(transport) as c:
        answers = await asyncio.gather(
            *(c.post(f"{uvicorn_url}/p/{i}", content=b"x" * i) for i in range(50))
        )
        assert [a.json() for a in answers] == [
            {"method": "POST", "path": f"/p/{i}", "length": i} for i in range(50)
        ]
        got = await c.get(f"{uvicorn_url}/g", params={"a": "b"})
        assert got.json() == {"method": "GET", "path": "/g", "length": 0}
        assert transport.idle_connections <= 8


# --- lifecycle ----------------------------------------------------------------------------------


async def test_after_close_every_connection_is_closed_and_requests_are_refused() -> None:
    closed = asyncio.Event()

    async def handler(ex: Exchange) -> None:
        await ex.request()
        ex.send(ok())
        with pytest.raises(asyncio.IncompleteReadError):
            await ex.request()
        closed.set()

    transport = t.PooledTransport()
    async with RawServer(handler) as server:
        async with client(transport) as c:
            await c.get(server.url)
        await closed.wait()  # the server saw the idle connection close
        with pytest.raises(RuntimeError):
            await transport.handle_async_request(httpx.Request("GET", server.url))


def test_a_transport_moves_to_a_new_loop_once_its_first_loop_is_closed() -> None:
    transport = t.PooledTransport()

    async def twice() -> list[bytes]:
        async with RawServer(keep_answering) as server:
            c = client(transport)
            return [(await c.get(server.url)).content for _ in range(2)]

    assert asyncio.run(twice()) == [b"hello"] * 2
    assert asyncio.run(twice()) == [b"hello"] * 2
    asyncio.run(transport.aclose())


async def test_a_transport_refuses_a_second_running_loop() -> None:
    transport = t.PooledTransport()
    async with RawServer(keep_answering) as server, client(transport) as c:
        await c.get(server.url)

        def elsewhere() -> None:
            asyncio.run(transport.handle_async_request(httpx.Request("GET", server.url)))

        with pytest.raises(RuntimeError):
            await asyncio.to_thread(elsewhere)


# --- the setting --------------------------------------------------------------------------------


def test_the_transport_setting_defaults_to_pooled_and_names_httpx_or_pooled() -> None:
    assert t.http_transport({}) == "pooled"
    assert t.http_transport({t.HTTP_TRANSPORT_ENV: " "}) == "pooled"
    assert t.http_transport({t.HTTP_TRANSPORT_ENV: "HTTPX"}) == "httpx"
    assert t.http_transport({t.HTTP_TRANSPORT_ENV: "pooled"}) == "pooled"
    with pytest.raises(ConfigError):
        t.http_transport({t.HTTP_TRANSPORT_ENV: "h2"})


@pytest.mark.parametrize(
    ("setting", "kind"), [("pooled", t.PooledTransport), ("httpx", httpx.AsyncHTTPTransport)]
)
async def test_connect_builds_the_chosen_transport(
    monkeypatch: pytest.MonkeyPatch, setting: str, kind: type
) -> None:
    monkeypatch.setenv(t.HTTP_TRANSPORT_ENV, setting)
    conn = connect(clock=lambda: dt.datetime.now(dt.UTC), throttle=AimdThrottle())
    try:
        assert isinstance(conn.http._transport, kind)
    finally:
        await conn.aclose()


async def test_connect_refuses_an_unknown_transport_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(t.HTTP_TRANSPORT_ENV, "fast")
    with pytest.raises(ConfigError):
        connect(clock=lambda: dt.datetime.now(dt.UTC))
