"""A lean HTTP/1.1 transport for the connector's ``httpx.AsyncClient``.

httpx stays the client API; this replaces only its default transport (httpcore over anyio and
h11), whose per-request bookkeeping was a third of a sync's client CPU: a scan of every pooled
connection on each request, a ``getpeername`` and a socket poll per idle connection, anyio
locks, cancel scopes and a pure-Python parser. Here each connection is an ``asyncio.Protocol``
fed to llhttp (``httptools.HttpResponseParser``), and the pool hands out connections in O(1)::

    PooledTransport                          one per httpx.AsyncClient, bound to one event loop
    ├── idle[(scheme, host, port)]           keep-alive connections, newest last (LIFO)
    ├── waiters                              requests waiting for a slot (FIFO, pool timeout)
    └── _Connection (asyncio.Protocol)       one socket: request out, llhttp in
        └── _Body (httpx.AsyncByteStream)    the answer's body as it arrives; closing it
                                             returns the connection or closes it

A connection goes back to the pool only when its answer was read to the end, the answer allows
keep-alive, and the body stream was closed. Anything else (a body closed early, a cancelled
request, a timeout, a parse error) closes it, so a half-read connection is never reused. One
the server closed while idle leaves the pool at once (``connection_lost``).

HEAD and CONNECT requests and requests that ask for an ``Upgrade`` go to a fallback
``httpx.AsyncHTTPTransport``: llhttp cannot be told that a HEAD answer has no body. Errors are
httpx's own (``ConnectError``, ``ConnectTimeout``, ``ReadError``, ``ReadTimeout``,
``WriteError``, ``WriteTimeout``, ``PoolTimeout``, ``RemoteProtocolError``,
``LocalProtocolError``), as httpcore's are mapped, so the connector's retry policy sees what it
saw with httpx's own transport.

**Event loops.** The transport belongs to the event loop it first ran on (the connector builds
one client per tenant connection, used on one loop). Once that loop is closed, the next request
on another loop drops the dead connections and binds the transport to the new loop; using it
from a second loop while the first still runs is a ``RuntimeError``.

``CAREBRIDGE_HTTP_TRANSPORT`` chooses the connector's transport: ``pooled`` (this one, the
default) or ``httpx`` (httpx's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, cast

import httptools
import httpx

from carebridge.errors import ConfigError

HTTP_TRANSPORT_ENV = "CAREBRIDGE_HTTP_TRANSPORT"
TransportChoice = Literal["pooled", "httpx"]

READ_BUFFER = 256 * 1024
"""Body bytes buffered unread before the socket stops being read (flow control)."""

_JOIN_LIMIT = 64 * 1024
"""An in-memory body up to this size is sent in one write with the request head."""

_Key = tuple[bytes, bytes, int]
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")


def http_transport(environ: Mapping[str, str] | None = None) -> TransportChoice:
    """Which transport the connector's HTTP client uses (``CAREBRIDGE_HTTP_TRANSPORT``:
    ``pooled``, the default, or ``httpx`` for httpx's own).

    Raises:
        ConfigError: the setting names neither.
    """
    text = (os.environ if environ is None else environ).get(HTTP_TRANSPORT_ENV)
    if text is None or not text.strip():
        return "pooled"
    choice = text.strip().lower()
    if choice == "pooled":
        return "pooled"
    if choice == "httpx":
        return "httpx"
    raise ConfigError(f"{HTTP_TRANSPORT_ENV} must be 'pooled' or 'httpx'")


def _expire(waiter: asyncio.Future[Any], error: type[Exception], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(error(message))


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes a request, parses its answer with llhttp."""

    def __init__(
        self,
        key: _Key,
        loop: asyncio.AbstractEventLoop,
        on_idle_lost: Callable[[_Connection], None],
    ) -> None:
        self.key = key
        self.loop = loop
        self.on_idle_lost = on_idle_lost
        self.close_after = False
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False  # closing or closed: never written to again
        self.lost: asyncio.Future[None] | None = None  # set by connection_lost, if asked
        self.idle = False
        self.expires = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.paused_writing = False
        self.paused_reading = False
        self.error: Exception | None = None
        self.status = 0
        self.reason = b""
        self.version = "1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.chunks: list[bytes] = []
        self.buffered = 0

    def begin(self, close_after: bool) -> None:
        """Make ready for the next request on this connection (``close_after``: the request
        said ``Connection: close``)."""
        self.close_after = close_after
        self.status = 0
        self.reason = b""
        self.headers = []
        self.headers_done = False
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.chunks = []
        self.buffered = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream socket's (uvloop's TCPTransport has the methods, not the base class)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.idle or self.complete or self.error is not None:
            # nothing was asked: a connection that talks out of turn is not reused
            self.keep_alive = False
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            # a callback stopped the parse: bytes after a complete answer (the answer stands,
            # the connection is not reused), or a 101 to a request that asked for no upgrade
            if self.complete:
                self.keep_alive = False
                self.abort()
            else:
                self._fail(httpx.RemoteProtocolError("the server switched protocols unasked"))
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols unasked"))
        except httptools.HttpParserError as err:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP answer: {err}"))
        if (
            self.buffered > READ_BUFFER
            and not self.complete
            and not self.paused_reading
            and self.transport
        ):
            self.paused_reading = True
            self.transport.pause_reading()
        self.wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost says what that meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.lost is None:
            self.lost = self.loop.create_future()
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.complete and self.error is None and not self.idle:
            if not self.headers_done:
                self.error = (
                    httpx.RemoteProtocolError("Server disconnected without sending a response.")
                    if exc is None
                    else httpx.ReadError(str(exc) or type(exc).__name__)
                )
            elif exc is None and self._until_eof():
                self.complete = True
                self.keep_alive = False
            else:
                self.error = (
                    httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    )
                    if exc is None
                    else httpx.ReadError(str(exc) or type(exc).__name__)
                )
        self.wake()
        if self.idle:
            self.on_idle_lost(self)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self.wake()

    # llhttp callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise ValueError("bytes after a complete answer")  # stops the parse

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                raise ValueError("switching protocols")  # stops the parse
            self.informational = True  # 1xx: skipped, the real answer follows
            return
        self.status = status
        self.version = self.parser.get_http_version()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.reason = b""
            self.headers = []
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # the requester's side

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout: float | None, error: type[Exception], message: str) -> None:
        """Wait for the next event on this connection; ``error(message)`` after ``timeout``
        seconds."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        self.waiter = waiter
        if timeout is None:
            await waiter
            return
        timer = self.loop.call_later(timeout, _expire, waiter, error, message)
        try:
            await waiter
        finally:
            timer.cancel()

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("the connection is closed")
        self.transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        while self.paused_writing:
            if self.closed:
                raise httpx.WriteError("the connection is closed")
            await self.wait(timeout, httpx.WriteTimeout, "timed out writing the request")

    def resume(self) -> None:
        if self.paused_reading and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self.abort()

    def _until_eof(self) -> bool:
        """Whether this answer's body runs to the end of the connection (no Content-Length,
        not chunked, and a status that has a body)."""
        if self.status in (204, 304):
            return False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True


class _Body(httpx.AsyncByteStream):
    """An answer's body, chunk by chunk as it arrives; closing it settles the connection."""

    def __init__(self, pool: PooledTransport, conn: _Connection, timeout: float | None) -> None:
        self._pool = pool
        self._conn = conn
        self._timeout = timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while not self._closed:
            if conn.chunks:
                chunks = conn.chunks
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                conn.chunks = []
                conn.buffered = 0
                if conn.paused_reading:
                    conn.resume()
                yield data
            elif conn.complete:
                return
            elif conn.error is not None:
                raise conn.error
            else:
                await conn.wait(self._timeout, httpx.ReadTimeout, "timed out reading the answer")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool._settle(self._conn)


class PooledTransport(httpx.AsyncBaseTransport):
    """An HTTP/1.1 keep-alive connection pool over asyncio protocols and llhttp.

    Args:
        max_connections: connections open at once, over every origin (None: no limit).
        max_keepalive: idle connections kept, over every origin.
        keepalive_expiry: seconds an idle connection is kept (None: until the server closes
            it).
        verify: as httpx's: True, False, a CA bundle path or an ``ssl.SSLContext``.
        cert: a client certificate, as httpx's.
        trust_env: whether the TLS context reads ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``.
    """

    def __init__(
        self,
        *,
        max_connections: int | None = 100,
        max_keepalive: int | None = 20,
        keepalive_expiry: float | None = 5.0,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max = max_connections if max_connections is not None else 2**62
        keep = max_keepalive if max_keepalive is not None else self._max
        self._max_keepalive = min(keep, self._max)
        self._expiry = keepalive_expiry
        self._verify = verify
        self._cert = cert
        self._trust_env = trust_env
        self._ssl: ssl.SSLContext | None = None
        self._fallback: httpx.AsyncHTTPTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[_Key, list[_Connection]] = {}
        self._idle_count = 0
        self._total = 0  # connections open or opening: the slots taken
        self._waiters: deque[tuple[_Key, asyncio.Future[_Connection | None]]] = deque()
        self._conns: set[_Connection] = set()
        self._closed = False

    # the httpx transport API

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        method = request.method
        if method == "HEAD" or method == "CONNECT":
            return await self._fallback_transport().handle_async_request(request)
        url = request.url
        scheme = url.raw_scheme
        port = url.port or _DEFAULT_PORTS.get(scheme)
        if port is None:
            raise httpx.UnsupportedProtocol(f"the URL scheme {scheme!r} is not http or https")
        raw = request.headers.raw
        lines = [b"%b %b HTTP/1.1" % (method.encode("ascii"), url.raw_path)]
        lines += [name + b": " + value for name, value in raw]
        lines += (b"", b"")
        head = b"\r\n".join(lines)
        breaks = len(raw) + 2
        if head.count(b"\n") != breaks or head.count(b"\r") != breaks:
            raise httpx.LocalProtocolError("a request line or header holds CR or LF")
        lowered = head.lower()
        if b"\r\nupgrade:" in lowered:
            return await self._fallback_transport().handle_async_request(request)
        closing = False
        at = lowered.find(b"\r\nconnection:")
        if at >= 0:
            closing = b"close" in lowered[at : lowered.find(b"\r\n", at + 2)]
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None
        framing: int | None = None  # -1: chunked; n >= 0: Content-Length n
        if body is None or body:
            framing = _framing(lowered)
        if body and framing == -1:
            body = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
        elif body is not None and framing is not None and framing != len(body):
            raise httpx.LocalProtocolError("the body's length is not its Content-Length")
        elif body and framing is None:
            raise httpx.LocalProtocolError("a body without Content-Length or chunked framing")

        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        key: _Key = (scheme, url.raw_host, port)
        conn = await self._checkout(key, timeouts.get("pool"), timeouts.get("connect"))
        read_timeout = timeouts.get("read")
        try:
            conn.begin(closing)
            try:
                if body is None:
                    conn.write(head)
                    await self._send_stream(conn, request, framing, timeouts.get("write"))
                elif len(body) <= _JOIN_LIMIT:
                    conn.write(head + body)
                else:
                    conn.write(head)
                    conn.write(body)
                if conn.paused_writing:
                    await conn.drain(timeouts.get("write"))
            except httpx.WriteError:
                # as httpcore: the server may have answered (a 413, say) and closed before
                # the body was sent; that answer, or why there is none, is the outcome
                if not conn.closed:
                    raise
            while not conn.headers_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(read_timeout, httpx.ReadTimeout, "timed out waiting for the answer")
        except BaseException:
            self._discard(conn)
            raise
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, conn, read_timeout),
            extensions={
                "http_version": b"HTTP/1.1" if conn.version == "1.1" else b"HTTP/1.0",
                "reason_phrase": conn.reason,
            },
        )

    async def aclose(self) -> None:
        """Close every connection; a request after this raises ``RuntimeError``."""
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            _, waiter = self._waiters.popleft()
            _expire(waiter, RuntimeError, "the transport is closed")
        closing: list[asyncio.Future[None]] = []
        for conn in self._conns:
            if conn.lost is None:
                conn.lost = conn.loop.create_future()
                closing.append(conn.lost)
            conn.close()
        self._conns.clear()
        self._idle.clear()
        self._idle_count = 0
        if self._fallback is not None:
            await self._fallback.aclose()
        if closing:  # the sockets are closed once the loop has run their connection_lost
            await asyncio.wait(closing, timeout=5)

    # the pool

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("this transport belongs to another running event loop")
        for conn in self._conns:  # connections of a closed loop: nothing can run on them
            with contextlib.suppress(RuntimeError):  # a closed loop refuses callbacks
                conn.abort()
        self._conns.clear()
        self._idle.clear()
        self._idle_count = self._total = 0
        self._waiters.clear()
        self._loop = loop
        return loop

    async def _checkout(
        self, key: _Key, pool_timeout: float | None, connect_timeout: float | None
    ) -> _Connection:
        loop = self._bind()
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            conn.idle = False
            if conn.closed:  # closing already (it spoke out of turn): connection_lost is due
                self._close_stale(conn)
                continue
            if self._expiry is None or conn.expires > loop.time():
                return conn
            # the newest is stale: so is every older one
            self._close_stale(conn)
            while idle:
                self._idle_count -= 1
                stale = idle.pop()
                stale.idle = False
                self._close_stale(stale)
        if self._total < self._max:
            self._total += 1
        elif self._idle_count:
            self._evict_one()  # an idle connection elsewhere gives up its slot to this one
        else:
            got = await self._wait_slot(loop, key, pool_timeout)
            if got is not None:
                return got
        try:
            return await self._open(loop, key, connect_timeout)
        except BaseException:
            self._free_slot()
            raise

    async def _wait_slot(
        self, loop: asyncio.AbstractEventLoop, key: _Key, timeout: float | None
    ) -> _Connection | None:
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append((key, waiter))
        timer = (
            None
            if timeout is None
            else loop.call_later(
                timeout, _expire, waiter, httpx.PoolTimeout, "timed out waiting for a connection"
            )
        )
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                given = waiter.result()  # handed over just as this request gave up
                if given is None:
                    self._free_slot()
                else:
                    self._discard(given)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def _open(
        self, loop: asyncio.AbstractEventLoop, key: _Key, timeout: float | None
    ) -> _Connection:
        scheme, raw_host, port = key
        host = raw_host.decode("ascii")
        conn = _Connection(key, loop, self._idle_lost)
        tls = self._tls() if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn,
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
        except TimeoutError:
            conn.abort()
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as err:
            raise httpx.ConnectError(str(err) or type(err).__name__) from err
        except BaseException:
            conn.abort()
            raise
        self._conns.add(conn)
        if self._closed:
            conn.close()
            raise RuntimeError("the transport is closed")
        return conn

    def _settle(self, conn: _Connection) -> None:
        """A body stream was closed: reuse its connection if its answer was whole."""
        if (
            conn.complete
            and conn.keep_alive
            and not conn.close_after
            and not conn.closed
            and conn.error is None
        ):
            self._release(conn)
        elif conn.complete and conn.error is None:
            self._conns.discard(conn)
            conn.close()
            self._free_slot()
        else:
            self._discard(conn)

    def _release(self, conn: _Connection) -> None:
        if conn.paused_reading:  # a whole answer closed unread: read the socket again
            conn.resume()
        waiters = self._waiters
        while waiters:
            key, waiter = waiters.popleft()
            if waiter.done():
                continue
            if key == conn.key:
                waiter.set_result(conn)
            else:  # the oldest waiter wants another origin: it gets this one's slot
                self._conns.discard(conn)
                conn.close()
                waiter.set_result(None)
            return
        if self._closed or self._idle_count >= self._max_keepalive or self._loop is None:
            self._conns.discard(conn)
            conn.close()
            self._total -= 1
            return
        conn.idle = True
        if self._expiry is not None:
            conn.expires = self._loop.time() + self._expiry
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_count += 1

    def _discard(self, conn: _Connection) -> None:
        """Close a connection in an unknown state and free its slot."""
        self._conns.discard(conn)
        conn.abort()
        self._free_slot()

    def _free_slot(self) -> None:
        waiters = self._waiters
        while waiters:
            _, waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the oldest waiter
                return
        self._total -= 1

    def _close_stale(self, conn: _Connection) -> None:
        self._conns.discard(conn)
        conn.close()
        self._free_slot()

    def _evict_one(self) -> None:
        """Close the oldest idle connection of some origin; its slot is the caller's."""
        for idle in self._idle.values():
            if idle:
                conn = idle.pop(0)
                self._idle_count -= 1
                conn.idle = False
                self._conns.discard(conn)
                conn.close()
                return

    def _idle_lost(self, conn: _Connection) -> None:
        conn.idle = False
        idle = self._idle.get(conn.key)
        if idle is not None and conn in idle:
            idle.remove(conn)
            self._idle_count -= 1
            self._conns.discard(conn)
            self._free_slot()

    async def _send_stream(
        self, conn: _Connection, request: httpx.Request, framing: int | None, timeout: float | None
    ) -> None:
        sent = 0
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise RuntimeError("an AsyncClient request needs an async body stream")
        async for chunk in stream:
            if not chunk:
                continue  # an empty chunk would end a chunked body
            sent += len(chunk)
            if framing == -1:
                conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            elif framing is None or sent > framing:
                raise httpx.LocalProtocolError("the body is longer than its Content-Length")
            else:
                conn.write(chunk)
            if conn.paused_writing:
                await conn.drain(timeout)
        if framing == -1:
            conn.write(b"0\r\n\r\n")
        elif framing is not None and sent != framing:
            raise httpx.LocalProtocolError("the body is shorter than its Content-Length")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = httpx.create_ssl_context(
                verify=self._verify, cert=self._cert, trust_env=self._trust_env
            )
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def _fallback_transport(self) -> httpx.AsyncHTTPTransport:
        if self._fallback is None:
            verify: ssl.SSLContext | str | bool = self._verify
            if verify is not False and not isinstance(verify, ssl.SSLContext):
                verify = self._tls()
            self._fallback = httpx.AsyncHTTPTransport(
                verify=verify,
                cert=self._cert,
                trust_env=self._trust_env,
                limits=httpx.Limits(
                    max_connections=min(self._max, 100),
                    max_keepalive_connections=min(self._max_keepalive, 10),
                    keepalive_expiry=self._expiry,
                ),
            )
        return self._fallback

    # what tests and health checks read

    @property
    def idle_connections(self) -> int:
        """Idle keep-alive connections in the pool."""
        return self._idle_count

    @property
    def open_connections(self) -> int:
        """Connections open or opening (the slots taken)."""
        return self._total


def _framing(lowered: bytes) -> int | None:
    """A request head's body framing: -1 chunked, n a Content-Length of n, None neither."""
    at = lowered.find(b"\r\ntransfer-encoding:")
    if at >= 0 and b"chunked" in lowered[at : lowered.find(b"\r\n", at + 2)]:
        return -1
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return None
    text = lowered[at + 17 : lowered.find(b"\r\n", at + 2)].strip()
    if not text.isdigit():
        raise httpx.LocalProtocolError("an invalid Content-Length")
    return int(text)
