"""The connector's request path without httpx's client layer, against httpx's own.

``SurfaceClient`` builds a bodiless request itself (``_QuickRequests``) and sends through the
client's transport directly (``_send_direct``) when the client has no auth, no event hooks and
follows no redirects. Each check here runs the same request both ways: built by
``AsyncClient.build_request`` and sent by ``AsyncClient.send``, and by the direct steps. The
requests must be equal field by field (on generated URLs, query params and client headers), the
bytes on the wire the same (a raw loopback server records them), and the answers and errors
equal: status, headers, body, ``request``, ``next_request``, the exception's type and
``request``.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.connectors.test_transport import Exchange, RawServer, ok

from carebridge.connectors.carecloud import client as c
from carebridge.connectors.carecloud.auth import TokenSet
from carebridge.connectors.carecloud.session import Broker
from carebridge.connectors.carecloud.surfaces import _Client, bearer, connect
from carebridge.connectors.carecloud.throttle import AimdThrottle
from carebridge.connectors.carecloud.transport import PooledTransport

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": request.param == "uvloop"})


# --- building: the same httpx.Request -----------------------------------------------------------

ORIGINS = [
    "http://127.0.0.1:8080",
    "https://api.example.com",
    "http://sandbox.test",
    "https://fhir.example.org:443",
    "http://host.example:80",
    "http://Host.Example",
    "https://user:pw@api.example.com",
    "http://[::1]:9000",
    "http://xn--bcher-kva.example",
]
PATH_CHARS = "abcXYZ019-._~/:@!$&'()*+,;=%?# \"<>{}`|\\^éü\t"
SAFE_CHARS = "abcXYZ019-._~/:@!$&'()*+,;="  # what the quick build takes as it is


def plain_client(**kwargs: Any) -> httpx.AsyncClient:
    kwargs.setdefault("transport", httpx.MockTransport(lambda r: httpx.Response(200)))
    return _Client(timeout=c.DEFAULT_TIMEOUT, follow_redirects=False, **kwargs)


def same_request(quick: httpx.Request, plain: httpx.Request) -> None:
    assert quick.method == plain.method
    assert quick.url._uri_reference == plain.url._uri_reference
    assert str(quick.url) == str(plain.url)
    assert quick.url.raw_path == plain.url.raw_path
    assert quick.headers._list == plain.headers._list
    assert quick.headers._encoding == plain.headers._encoding  # how a later header is encoded
    assert quick.headers.encoding == plain.headers.encoding
    assert quick.extensions == plain.extensions
    assert quick.content == plain.content
    assert type(quick.stream) is type(plain.stream)
    assert set(vars(quick)) == set(vars(plain))


params_values = st.one_of(
    st.text(max_size=8), st.integers(), st.lists(st.text(max_size=4), max_size=3), st.booleans()
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    origin=st.sampled_from(ORIGINS),
    path=st.one_of(st.text(alphabet=PATH_CHARS, max_size=30), st.text(SAFE_CHARS, max_size=30)),
    method=st.sampled_from(["GET", "get", "DELETE", "HEAD", "OPTIONS", "POST", "PUT"]),
    params=st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=6), params_values, max_size=4),
        st.just("a=1&b=%20"),
    ),
    extra=st.sampled_from([None, {"X-Trace": "t"}, {"Host": "other.example"}, {"Accept": "a/b"}]),
)
def test_a_quick_request_equals_httpx_build_request(
    origin: str, path: str, method: str, params: Any, extra: dict[str, str] | None
) -> None:
    http = plain_client()
    if extra:
        http.headers.update(extra)
    url = origin + ("/" + path if not path.startswith("/") else path)
    kwargs: dict[str, Any] = {} if params is None else {"params": params}
    quick = c._QuickRequests().build(http, method, url, kwargs)
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:
        with pytest.raises(httpx.InvalidURL):
            c._url_path(url)  # an error label's path: the same parse, or the same error
    else:
        assert c._url_path(url) == path
    try:
        plain = http.build_request(method, url, **kwargs)
    except (httpx.InvalidURL, TypeError, UnicodeEncodeError):
        assert quick is None
        return
    if quick is not None:
        same_request(quick, plain)


def test_the_connections_v2_requests_are_built_quickly() -> None:
    """The sync's own requests take the quick build (a change that loses it is noticed)."""
    http = plain_client()
    quick = c._QuickRequests()
    for url, params in [
        ("http://127.0.0.1:8080/v2/patients/0b9c6f0e-1f2a-4c1b-9d7e-5a4b3c2d1e0f", None),
        ("http://127.0.0.1:8080/v2/patients/0b9c/balance", None),
        ("https://api.example.com/v2/patients", {"page": 2, "per_page": 100}),
        ("https://api.example.com/fhir/r4/Patient", {"_count": "50", "name": "O'Brien Jr"}),
    ]:
        kwargs = {} if params is None else {"params": params}
        request = quick.build(http, "GET", url, kwargs)
        assert request is not None
        same_request(request, http.build_request("GET", url, **kwargs))
    assert c._direct_ok(http)


def test_a_change_to_the_clients_headers_reaches_the_next_quick_request() -> None:
    http = plain_client()
    quick = c._QuickRequests()
    url = "http://sandbox.test/v2/patients/1"
    first = quick.build(http, "GET", url, {})
    assert first is not None
    assert "X-Extra" not in first.headers
    http.headers["X-Extra"] = "1"
    second = quick.build(http, "GET", url, {})
    assert second is not None
    same_request(second, http.build_request("GET", url))
    assert second.headers["X-Extra"] == "1"
    http.headers = httpx.Headers({"User-Agent": "me"})
    third = quick.build(http, "GET", url, {})
    assert third is not None
    same_request(third, http.build_request("GET", url))


def test_requests_the_quick_build_does_not_know_take_httpx_build_request() -> None:
    http = plain_client()
    quick = c._QuickRequests()
    url = "http://sandbox.test/v2/patients/1"
    assert quick.build(http, "POST", url, {}) is None  # httpx adds Content-Length: 0
    assert quick.build(http, "GET", url, {"headers": {"A": "b"}}) is None
    assert quick.build(http, "GET", url, {"json": {"a": 1}}) is None
    assert quick.build(http, "GET", url + "?a=1", {}) is None
    assert quick.build(http, "GET", "http://sandbox.test", {}) is None
    with_params = plain_client(params={"tenant": "1"})
    assert quick.build(with_params, "GET", url, {}) is None
    with_cookies = httpx.AsyncClient(cookies={"s": "1"})
    assert quick.build(with_cookies, "GET", url, {}) is None

    class Custom(httpx.AsyncClient):
        def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
            return super().build_request(*args, **kwargs)

    assert quick.build(Custom(), "GET", url, {}) is None


# --- sending: the same bytes, answers and errors -----------------------------------------------


async def recording(
    wire: list[bytes], answer: Callable[[bytes], bytes]
) -> Callable[[Exchange], Awaitable[None]]:
    async def handler(ex: Exchange) -> None:
        while True:
            head, body = await ex.request()
            wire.append(head + body)
            ex.send(answer(head))

    return handler


def answer_for(head: bytes) -> bytes:
    """An answer chosen by the request's path."""
    path = head.split(b" ", 2)[1]
    if path.startswith(b"/redirect"):
        return (
            b"HTTP/1.1 302 Found\r\nlocation: /v2/elsewhere?x=1\r\ncontent-length: 5\r\n\r\nmoved"
        )
    if path.startswith(b"/missing"):
        return b'HTTP/1.1 404 Not Found\r\ncontent-length: 11\r\n\r\n{"e":"no"}\n'
    if path.startswith(b"/broken"):
        return (
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 2\r\ncontent-length: 4\r\n\r\ndown"
        )
    if path.startswith(b"/gzip"):
        packed = gzip.compress(b'{"zipped": true}' * 50)
        return (
            b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%b" % (len(packed), packed)
        )
    if path.startswith(b"/chunked"):
        return (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )
    if path.startswith(b"/cookie"):
        return ok(b"{}", b"set-cookie: s=1; Path=/")
    return ok(b'{"ok": true, "path": "%b"}' % path, b"content-type: application/json")


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v2/patients/abc-123", {}),
    ("GET", "/v2/patients", {"params": {"page": 2, "q": "a b&c"}}),
    ("GET", "/v2/p%C3%A9/x y", {}),
    ("POST", "/v2/patients/search", {"json": {"fields": {"last_name": "Ó"}, "limit": 5}}),
    ("PUT", "/v2/patients/1", {"content": b"z" * 70_000}),
    ("POST", "/portal/api/login", {"data": {"user": "u", "code": "12 34"}}),
    ("POST", "/empty", {}),
    ("DELETE", "/v2/bulk/1", {}),
    ("GET", "/redirect", {}),
    ("GET", "/missing", {}),
    ("GET", "/broken", {}),
    ("GET", "/gzip", {}),
    ("GET", "/chunked", {}),
    ("GET", "/cookie", {}),
    ("HEAD", "/v2/patients/1", {}),
]


def answer_fields(response: httpx.Response) -> dict[str, Any]:
    nxt = response.next_request
    return {
        "status": response.status_code,
        "headers": response.headers.raw,
        "content": response.content,
        "request": (response.request.method, str(response.request.url)),
        "next": None if nxt is None else (nxt.method, str(nxt.url), nxt.headers.raw),
        "closed": response.is_closed,
        "consumed": response.is_stream_consumed,
        "history": response.history,
        "elapsed": hasattr(response, "_elapsed"),
        "downloaded": response.num_bytes_downloaded,
        "version": response.http_version,
        "reason": response.reason_phrase,
        "encoding": response.encoding,
        "stream": type(response.stream).__name__,
    }


@pytest.mark.parametrize("which", ["pooled", "httpx"])
async def test_every_kind_of_request_sends_the_same_bytes_and_gets_the_same_answer(
    which: str,
) -> None:
    wire: list[bytes] = []
    async with RawServer(await recording(wire, answer_for)) as server:
        results: dict[str, list[Any]] = {"plain": [], "direct": []}
        for way, out in results.items():
            transport: httpx.AsyncBaseTransport = (
                PooledTransport() if which == "pooled" else httpx.AsyncHTTPTransport()
            )
            async with plain_client(transport=transport) as http:
                assert c._direct_ok(http)
                for method, path, kwargs in CASES:
                    request = http.build_request(method, server.url + path, **kwargs)
                    request.headers["Authorization"] = "Bearer t"
                    before = len(wire)
                    if way == "plain":
                        response = await http.send(request)
                    else:
                        response = await c._send_direct(http, request)
                    assert response.request is request
                    out.append((answer_fields(response), wire[before:]))
    assert results["direct"] == results["plain"]


def plain_client_for(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> httpx.AsyncClient:
    return _Client(transport=transport, follow_redirects=False, **kwargs)


async def both_ways(
    http: httpx.AsyncClient, make: Callable[[], httpx.Request]
) -> list[tuple[type[BaseException], bool, str]]:
    """The error each way raised: its type, whether it names the request, its message."""
    seen = []
    for send in (http.send, lambda r: c._send_direct(http, r)):
        request = make()
        with pytest.raises(httpx.HTTPError) as caught:
            await send(request)
        error = caught.value
        named = isinstance(error, httpx.RequestError) and error.request is request
        seen.append((type(error), named, str(error)))
    return seen


@pytest.mark.parametrize("which", ["pooled", "httpx"])
async def test_errors_are_the_same_exceptions_naming_the_same_request(which: str) -> None:
    def transport() -> httpx.AsyncBaseTransport:
        return PooledTransport() if which == "pooled" else httpx.AsyncHTTPTransport()

    # a refused connection
    async with RawServer(lambda ex: ex.hang()) as server:
        closed_url = server.url
    async with plain_client_for(transport()) as http:
        seen = await both_ways(http, lambda: http.build_request("GET", closed_url + "/x"))
    assert seen[0][:2] == seen[1][:2]
    assert seen[0][0] is httpx.ConnectError
    assert seen[0][1]

    # no answer: a read timeout
    async with (
        RawServer(lambda ex: ex.hang()) as server,
        plain_client_for(transport(), timeout=0.2) as http,
    ):
        seen = await both_ways(http, lambda: http.build_request("GET", server.url + "/x"))
    assert seen[0] == seen[1]
    assert seen[0][0] is httpx.ReadTimeout
    assert seen[0][1]

    # a body that stalls half way: a read timeout while reading it
    async def stall(ex: Exchange) -> None:
        while True:
            await ex.request()
            ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
            await ex.drain()

    async with RawServer(stall) as server, plain_client_for(transport(), timeout=0.2) as http:
        seen = await both_ways(http, lambda: http.build_request("GET", server.url + "/x"))
    assert seen[0] == seen[1]
    assert seen[0][0] is httpx.ReadTimeout
    assert seen[0][1]

    # an answer cut short
    async def cut(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        await ex.drain()
        ex.close()

    async with RawServer(cut) as server, plain_client_for(transport()) as http:
        seen = await both_ways(http, lambda: http.build_request("GET", server.url + "/x"))
    assert seen[0][:2] == seen[1][:2]
    assert seen[0][0] is httpx.RemoteProtocolError

    # a body that is not the gzip it says it is
    async def bad_gzip(ex: Exchange) -> None:
        while True:
            await ex.request()
            ex.send(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nnope")

    async with RawServer(bad_gzip) as server, plain_client_for(transport()) as http:
        seen = await both_ways(http, lambda: http.build_request("GET", server.url + "/x"))
    assert seen[0] == seen[1]
    assert seen[0][0] is httpx.DecodingError
    assert seen[0][1]


async def test_a_closed_client_refuses_both_ways() -> None:
    http = plain_client()
    await http.aclose()
    assert not c._direct_ok(http)
    with pytest.raises(RuntimeError, match="client has been closed"):
        await http.send(http.build_request("GET", "http://sandbox.test/x"))


async def test_a_mock_transports_answers_are_the_same_both_ways() -> None:
    """An injected transport whose answers carry their body already (``MockTransport``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/stream":
            return httpx.Response(200, stream=httpx.ByteStream(b"streamed"))
        return httpx.Response(201, json={"seen": request.url.path}, headers={"x-a": "1"})

    http = plain_client_for(httpx.MockTransport(handler))
    for path in ("/a", "/stream"):
        plain = await http.send(http.build_request("GET", "http://m.test" + path))
        direct = await c._send_direct(http, http.build_request("GET", "http://m.test" + path))
        assert answer_fields(direct) == answer_fields(plain)


# --- through SurfaceClient: the fast path is taken, and gives what the plain path gives ----------


class _Fixed(Broker[TokenSet, None]):
    def __init__(self) -> None:
        async def renew(_: None, __: TokenSet | None) -> TokenSet:
            return TokenSet("tok", datetime(2100, 1, 1, tzinfo=UTC), None)

        super().__init__(
            "v2", None, renew, expires=lambda t: t.expires_at, clock=lambda: datetime.now(UTC)
        )


async def surface_run(
    http: httpx.AsyncClient, base: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(c, "_direct_ok", lambda http: False)
            patch.setattr(c._QuickRequests, "build", lambda *a: None)
        surface = c.SurfaceClient("v2", http, _Fixed(), bearer, AimdThrottle(), attempts=2)
        out: list[Any] = []
        for method, path, kwargs in CASES:
            try:
                response = await surface.request(method, base + path, endpoint="E", **kwargs)
                out.append(answer_fields(response))
            except Exception as err:  # noqa: BLE001 - the typed error is what is compared
                out.append((type(err).__name__, str(err)))
        return out


@pytest.mark.parametrize("which", ["pooled", "httpx"])
async def test_surface_requests_are_the_same_with_and_without_the_fast_path(
    which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBRIDGE_HTTP_TRANSPORT", which)
    wire: list[bytes] = []
    async with RawServer(await recording(wire, answer_for)) as server:
        runs = []
        for fast in (False, True):
            conn = connect(clock=lambda: datetime.now(UTC))
            sent = len(wire)
            answers = await surface_run(conn.http, server.url, fast=fast, monkeypatch=monkeypatch)
            runs.append((answers, wire[sent:]))
            await conn.aclose()
    assert runs[1] == runs[0]
    assert any(b"Authorization: Bearer tok" in raw for raw in runs[1][1])


async def test_a_client_with_an_event_hook_takes_httpx_path_and_runs_the_hook() -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http = plain_client_for(
        httpx.MockTransport(lambda r: httpx.Response(200)), event_hooks={"request": [hook]}
    )
    assert not c._direct_ok(http)
    surface = c.SurfaceClient("v2", http, _Fixed(), bearer, AimdThrottle())
    await surface.request("GET", "http://m.test/v2/x", endpoint="E")
    assert seen == ["/v2/x"]
    follows = plain_client_for(httpx.MockTransport(lambda r: httpx.Response(200)))
    follows.follow_redirects = True
    assert not c._direct_ok(follows)
    authed = plain_client_for(httpx.MockTransport(lambda r: httpx.Response(200)), auth=("u", "p"))
    assert not c._direct_ok(authed)


async def test_a_url_with_credentials_gets_httpx_basic_auth() -> None:
    got: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request.headers.get("authorization"))
        return httpx.Response(200)

    http = plain_client_for(httpx.MockTransport(handler))
    await c._send_direct(http, http.build_request("GET", "http://u:p@m.test/x"))
    await http.send(http.build_request("GET", "http://u:p@m.test/x"))
    assert got[0] == got[1] == "Basic dTpw"


async def test_a_request_cancelled_while_its_body_stalls_leaves_no_connection_either_way() -> None:
    started = asyncio.Event()

    async def stall(ex: Exchange) -> None:
        await ex.request()
        ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        await ex.drain()
        started.set()
        await ex.hang()

    async with RawServer(stall) as server:
        transport = PooledTransport()
        async with plain_client_for(transport) as http:
            for send in (http.send, lambda r: c._send_direct(http, r)):
                started.clear()
                task = asyncio.ensure_future(send(http.build_request("GET", server.url + "/x")))
                await started.wait()
                await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert transport.open_connections == 0
                assert transport.idle_connections == 0
