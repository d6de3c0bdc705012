"""One surface's HTTP client: credential, throttle, policy and bounded retries around httpx.

Every request goes through the same steps: wait for a throttle slot, take the broker's current
credential, send, classify the outcome (``policy.classify``) and act on it. Renewals after a
401 are single-flight in the broker. Reads are retried with stamina's jittered backoff, which
honours ``Retry-After``; a write whose effect is unknown raises :class:`WriteUnconfirmed` so the
caller reads back before it tries again.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import httpx
import orjson
import stamina
from httpx import _urlparse
from httpx._client import BoundAsyncStream as _BoundAsyncStream
from httpx._client import ClientState as _ClientState

from carebridge.connectors.carecloud.auth import CodeSource, Flow, drive
from carebridge.connectors.carecloud.paging import fhir_next, portal_next, v2_next
from carebridge.connectors.carecloud.policy import Action, Resolution, Surface, classify
from carebridge.connectors.carecloud.session import Broker
from carebridge.connectors.carecloud.throttle import AimdThrottle
from carebridge.errors import (
    AuthError,
    CarebridgeError,
    RateLimited,
    TransportError,
    UpstreamError,
    UpstreamStatusError,
)
from carebridge.errors import WriteUnconfirmed as WriteUnconfirmed

if importlib.util.find_spec("sniffio") is None:  # pragma: no branch - an install detail
    # httpcore asks ``import sniffio`` on every request to learn its async library and falls
    # back to asyncio when the import fails; without sniffio installed, each failed import
    # searches the whole path (a fifth of a request's CPU). A ``None`` entry makes the same
    # import fail at once, with the same ImportError.
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

C = TypeVar("C")
T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)


def json_body(response: httpx.Response) -> Any:
    """An answer's JSON body, parsed by orjson (several times faster on large pages); a body it
    refuses (an integer past 64 bits, a lone surrogate, a non-UTF-8 charset) is parsed as
    ``response.json()`` parses it, with the same result or error."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


class _Again(CarebridgeError):
    """Internal: one more attempt, after ``retry_after`` seconds when the upstream said so."""

    def __init__(self, resolution: Resolution, final: UpstreamError) -> None:
        super().__init__(resolution.reason)
        self.resolution = resolution
        self.final = final


def _backoff(error: Exception) -> bool | timedelta:
    if not isinstance(error, _Again) or error.resolution.action is Action.RATE_LIMITED:
        return False  # a 429 waits in the throttle, on the rate-limit budget (``_retrying``)
    wait = error.resolution.retry_after
    if error.resolution.action in (Action.REFRESH, Action.RELOGIN):
        return timedelta(0)
    return timedelta(seconds=wait) if wait is not None else True


DEFAULT_RETRY_AFTER = 0.1
"""Seconds a 429 without Retry-After pauses the tenant's requests: a rate limiter's bucket
refills within a fraction of a second, and the throttle halves its rate besides."""


async def _retrying(
    once: Callable[[], Awaitable[T]],
    throttle: AimdThrottle,
    *,
    attempts: int,
    deadline: float,
    first_failure: tuple[_Again, float] | None = None,
) -> T:
    """Run ``once`` under the retry policy: stamina's bounded, jittered attempts for errors
    and renewals; 429s on a budget of their own.

    A 429 says when to come back, so it does not spend an error attempt: the throttle pauses
    every request of the tenant until ``Retry-After`` has passed (on its injected clock), and
    the call keeps trying until ``deadline`` seconds of such waiting have gone by.
    """
    # Most requests succeed at once: the first attempt runs before stamina's retry context is
    # built (a fifth of a request's own CPU). A first failure is replayed as that context's
    # first attempt, so its backoff, attempt count and retry hooks are what they would be.
    # ``first_failure``: a first attempt the caller made itself (its failure, and the
    # throttle's clock read before it).
    replay: _Again | None
    if first_failure is None:
        limited_since = throttle.clock()
        try:
            return await once()
        except _Again as again:
            replay = again
    else:
        replay, limited_since = first_failure
    while True:
        try:
            for attempt in stamina.retry_context(
                on=_backoff, attempts=attempts, timeout=deadline, wait_initial=0.2, wait_max=10.0
            ):
                with attempt:
                    if replay is not None:
                        failed, replay = replay, None
                        raise failed
                    return await once()
        except _Again as again:
            limited = again.resolution.action is Action.RATE_LIMITED
            if limited and throttle.clock() - limited_since < deadline:
                continue
            raise again.final from None
        raise TransportError("no attempt was made")  # attempts >= 1


class _Sender:
    """What a surface's client and its auth runner share: the surface, the httpx client, the
    throttle and the retry budget, one timed send in a throttle slot, and a 429's pause."""

    def __init__(
        self,
        surface: Surface,
        http: httpx.AsyncClient,
        throttle: AimdThrottle,
        *,
        attempts: int = 8,
        deadline: float = 120.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.surface: Surface = surface
        self.http = http
        self.throttle = throttle
        self.attempts = attempts
        self.deadline = deadline
        self._monotonic = monotonic
        self._quick = _QuickRequests()
        self.sent = 0

    async def _retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        return await _retrying(once, self.throttle, attempts=self.attempts, deadline=self.deadline)

    async def _timed(
        self, build: Callable[[], httpx.Request]
    ) -> tuple[httpx.Response | Exception, float]:
        """Build and send one request in a throttle slot: the answer (read whole) or the error
        that stopped it, and its latency."""
        async with self.throttle.slot():
            request = build()
            started = self._monotonic()
            outcome: httpx.Response | Exception
            http = self.http
            try:
                if _direct_ok(http):
                    outcome = await _send_direct(http, request)
                else:
                    outcome = await http.send(request)
                await outcome.aread()
            except (httpx.HTTPError, OSError) as err:  # OSError: a transport that is not httpx's
                outcome = err
            self.sent += 1
        return outcome, self._monotonic() - started

    def _pause_if_limited(self, resolution: Resolution, label: str) -> None:
        """A 429 pauses the tenant's requests (``Retry-After``) and is tried again."""
        if resolution.action is Action.RATE_LIMITED:
            self.throttle.on_congestion(resolution.retry_after or DEFAULT_RETRY_AFTER)
            raise _Again(
                resolution,
                RateLimited(
                    f"{label}: rate limited", retry_after=resolution.retry_after, endpoint=label
                ),
            )


class SurfaceClient(_Sender, Generic[C]):
    """Requests to one surface of one tenant.

    Args:
        surface: ``v2``, ``portal`` or ``fhir``.
        http: the ``httpx.AsyncClient`` (its transport is the seam tests replace).
        broker: the surface's credential broker.
        apply: puts the credential on a request (bearer header, cookies and CSRF token).
        throttle: the tenant's adaptive throttle.
        attempts: tries per request, renewals and rate limits included.
    """

    def __init__(
        self,
        surface: Surface,
        http: httpx.AsyncClient,
        broker: Broker[C, Any],
        apply: Callable[[httpx.Request, C], None],
        throttle: AimdThrottle,
        *,
        attempts: int = 8,
        deadline: float = 120.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            surface, http, throttle, attempts=attempts, deadline=deadline, monotonic=monotonic
        )
        self.broker = broker
        self.apply = apply

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one logical request; returns a 2xx/3xx response or raises a typed error.

        Raises:
            RateLimited, TransportError, UpstreamStatusError, AuthError: when retries run out
                or the answer is final.
            WriteUnconfirmed: a non-idempotent request whose effect is unknown.
        """
        safe = method.upper() in ("GET", "HEAD", "OPTIONS") if idempotent is None else idempotent
        label = endpoint or f"{method.upper()} {_url_path(url)}"
        # The first attempt here, as ``_retrying`` makes it (the throttle's clock read first);
        # a failure goes on there, replayed.
        throttle = self.throttle
        since = throttle.clock()
        try:
            return await self._once(method, url, safe, label, kwargs)
        except _Again as again:
            failed = again, since
        return await _retrying(
            lambda: self._once(method, url, safe, label, kwargs),
            throttle,
            attempts=self.attempts,
            deadline=self.deadline,
            first_failure=failed,
        )

    async def _once(
        self, method: str, url: str, idempotent: bool, label: str, kwargs: dict[str, Any]
    ) -> httpx.Response:
        # The credential first: a renewal sends requests of its own through the throttle, and
        # must not wait for a slot this call already holds.
        credential = self.broker.ready()
        if credential is None:
            credential = await self.broker.current()

        def build() -> httpx.Request:
            http = self.http
            request = self._quick.build(http, method, url, kwargs)
            if request is None:
                request = http.build_request(method, url, **kwargs)
            self.apply(request, credential)
            return request

        outcome, latency = await self._timed(build)
        if (
            type(outcome) is httpx.Response
            and outcome.status_code < 400
            and "retry-after" not in outcome.headers
        ):
            # What ``classify`` answers a 2xx/3xx without Retry-After: OK.
            self.throttle.on_success(latency)
            return outcome
        resolution = classify(outcome, surface=self.surface, idempotent=idempotent)
        status = outcome.status_code if isinstance(outcome, httpx.Response) else None
        if resolution.action is Action.OK and isinstance(outcome, httpx.Response):
            self.throttle.on_success(latency)
            return outcome
        if resolution.action in (Action.REFRESH, Action.RELOGIN):
            self.broker.invalidate(credential)
            raise _Again(
                resolution,
                AuthError(f"{label}: refused after renewal ({resolution.reason})", endpoint=label),
            )
        self._pause_if_limited(resolution, label)
        if resolution.congestion:
            self.throttle.on_congestion(resolution.retry_after)
        if resolution.action is Action.RETRY:
            final: UpstreamError = (
                UpstreamStatusError(f"{label}: status {status}", status=status, endpoint=label)
                if status is not None
                else TransportError(f"{label}: {resolution.reason}", endpoint=label)
            )
            raise _Again(resolution, final)
        if resolution.action is Action.VERIFY:
            raise WriteUnconfirmed(
                f"{label}: outcome unknown ({resolution.reason})", endpoint=label
            )
        if status in (401, 403, 423):
            raise AuthError(f"{label}: refused ({resolution.reason})", endpoint=label)
        if status is None:
            raise TransportError(f"{label}: {resolution.reason}", endpoint=label)
        raise UpstreamStatusError(f"{label}: status {status}", status=status, endpoint=label)

    # --- paging -------------------------------------------------------------------------------

    async def v2_pages(
        self, url: str, params: dict[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Every page of a v2 list, following the ``Link`` header's ``next``."""
        next_url: str | None = url
        page_params = params
        while next_url:
            response = await self.request("GET", next_url, params=page_params)
            yield response
            next_url, page_params = v2_next(response.headers.get("link")), None

    async def fhir_pages(
        self, url: str, params: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every searchset Bundle of a FHIR search, following ``link[next]``."""
        next_url: str | None = url
        page_params = params
        while next_url:
            bundle = json_body(await self.request("GET", next_url, params=page_params))
            yield bundle
            next_url, page_params = fhir_next(bundle), None

    async def portal_pages(
        self, url: str, params: dict[str, Any] | None = None, *, ahead: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of a portal list (``page``/``totalPages``), in order.

        With ``ahead``, up to that many pages after the first are requested at once (the
        throttle still decides how many run), up to the last page the latest answer names, and
        past it when the list grew meanwhile. It is for a caller that reads the whole list: the
        pages requested for one that stops early are cancelled when the iterator is closed.
        """

        async def read(number: int) -> dict[str, Any]:
            query = {**(params or {}), "page": number}
            body: dict[str, Any] = json_body(await self.request("GET", url, params=query))
            return body

        body = await read(1)
        yield body
        page = portal_next(body)
        if not ahead:
            while page is not None:
                body = await read(page)
                yield body
                page = portal_next(body)
            return
        pending: deque[asyncio.Future[dict[str, Any]]] = deque()
        try:
            while True:
                if page is not None:
                    total = body.get("totalPages")
                    last = total if isinstance(total, int) else page
                    while page is not None and len(pending) < ahead:
                        if page > last:
                            page = None
                            break
                        pending.append(asyncio.ensure_future(read(page)))
                        page += 1
                if not pending:
                    break
                body = await pending.popleft()
                yield body
                if page is None and not pending:
                    page = portal_next(body)  # the list grew past the total first answered
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def lines(self, url: str, *, endpoint: str) -> AsyncIterator[bytes]:
        """A file's lines as they stream (an NDJSON export file; never held whole), in one
        throttle slot. Not retried: a file that breaks half way is the caller's to redo.

        Raises:
            UpstreamStatusError, AuthError: a non-2xx answer. TransportError: the connection
                failed.
        """
        credential = await self.broker.current()
        request = self.http.build_request("GET", url)
        self.apply(request, credential)
        async with self.throttle.slot():
            started = self._monotonic()
            try:
                response = await self.http.send(request, stream=True)
            except (httpx.HTTPError, OSError) as err:
                raise TransportError(
                    f"{endpoint}: {type(err).__name__}", endpoint=endpoint
                ) from None
            self.sent += 1
            try:
                status = response.status_code
                if status in (401, 403):
                    self.broker.invalidate(credential)
                    raise AuthError(f"{endpoint}: refused (status {status})", endpoint=endpoint)
                if not 200 <= status < 300:
                    raise UpstreamStatusError(
                        f"{endpoint}: status {status}", status=status, endpoint=endpoint
                    )
                self.throttle.on_success(self._monotonic() - started)
                try:
                    async for line in response.aiter_lines():
                        yield line.encode()
                except (httpx.HTTPError, OSError) as err:
                    raise TransportError(
                        f"{endpoint}: {type(err).__name__}", endpoint=endpoint
                    ) from None
            finally:
                await response.aclose()


class AuthRunner(_Sender):
    """Runs a surface's auth flows (token grants, portal sign-in) under the same policy as every
    other request: each request waits for a throttle slot, its outcome is classified and fed
    back to the throttle, and a dropped connection, a 5xx or a 429 is retried with the same
    budgets. A retry starts the flow again from its first request (a new sign-in, a new MFA
    step): a code that may have reached the upstream is never sent twice. A failure that
    outlasts the budget is a typed :class:`TransportError`, :class:`UpstreamStatusError` or
    :class:`RateLimited`, never an httpx exception; a refusal (a wrong password or code, a
    revoked grant) is the flow's own typed error and is not retried.
    """

    async def run(self, flow: Callable[[], Flow[T]], codes: CodeSource | None = None) -> T:
        """Drive a fresh ``flow()`` until it returns, retrying it as a whole."""
        return await self._retrying(lambda: drive(flow(), self.send, codes))

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send one request of a flow; a retryable outcome raises for :meth:`run` to retry."""
        label = f"{request.method} {request.url.path}"
        outcome, latency = await self._timed(lambda: request)
        # An auth request is safe to send again: it changes nothing but the credential it asks
        # for, and the MFA step of a retried sign-in is a new one.
        resolution = classify(outcome, surface=self.surface, idempotent=True)
        self._pause_if_limited(resolution, label)
        if resolution.congestion:
            self.throttle.on_congestion(resolution.retry_after)
        if isinstance(outcome, Exception):
            final = TransportError(f"{label}: {resolution.reason}", endpoint=label)
            if resolution.action is Action.RETRY:
                raise _Again(resolution, final)
            raise final from outcome
        if resolution.action is Action.RETRY:
            status = outcome.status_code
            raise _Again(
                resolution,
                UpstreamStatusError(f"{label}: status {status}", status=status, endpoint=label),
            )
        if resolution.action is Action.OK:
            self.throttle.on_success(latency)
        return outcome  # a final answer, refusals included: the flow judges it


# --- the request path without httpx's client layer --------------------------------------------
#
# ``AsyncClient.build_request`` parses every URL character by character, copies and merges the
# client's headers twice and encodes an empty body; ``AsyncClient.send`` walks the auth flow, the
# redirect loop and three streaming generators to read an answer. For the connection's client
# (no auth, no event hooks, no redirects followed, no client query params) all of that comes to
# a fixed sequence of steps, done here directly with httpx's own objects. The result is the
# same ``httpx.Request`` (method, URL, headers in the same order, timeout extension, empty
# body) and the same ``httpx.Response`` (request, stream, elapsed, cookies handed to the jar,
# ``next_request`` of a redirect, ``.content``), with the same exceptions carrying the same
# ``request``; anything else takes httpx's own path. ``tests/connectors/test_request_path.py``
# checks both against httpx's on generated inputs.

_INTERNALS = httpx.__version__.startswith("0.28.")
"""The httpx whose internals the steps below follow; another takes httpx's own path."""
_httpx_log = logging.getLogger("httpx")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9\-._~/:@!$&'()*+,;=]*")
"""A path httpx's parser leaves as it is: only characters it never escapes, no ``%``."""
_SAFE_QUERY = re.compile(r"(?:[A-Za-z0-9\-._~=&+]|%[0-9A-Fa-f]{2})*")
"""A query httpx's parser leaves as it is (what ``QueryParams`` encodes to)."""
_SAFE_AUTHORITY = re.compile(r"[a-z0-9][a-z0-9.\-]*(?::[0-9]{1,5})?")
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
"""Methods whose request without a body gets no ``Content-Length: 0`` from httpx."""
_CLIENT_STEPS = (
    "send",
    "build_request",
    "_merge_url",
    "_merge_headers",
    "_merge_cookies",
    "_merge_queryparams",
    "_set_timeout",
    "_build_request_auth",
    "_send_handling_auth",
    "_send_handling_redirects",
    "_send_single_request",
    "_transport_for_url",
)
_plain_classes: dict[type[httpx.AsyncClient], bool] = {}
_origins: dict[str, tuple[str, str, int | None, bytes] | None] = {}
"""``scheme://authority`` -> httpx's parse of it (scheme, host, port, netloc), or None when it
is not one the fast path knows to parse the same way."""
_MAX_ORIGINS = 256


def _plain_client(cls: type[httpx.AsyncClient]) -> bool:
    """Whether a client class runs httpx's own request steps (none overridden)."""
    plain = _plain_classes.get(cls)
    if plain is None:
        plain = _INTERNALS and all(
            getattr(cls, name) is getattr(httpx.AsyncClient, name) for name in _CLIENT_STEPS
        )
        _plain_classes[cls] = plain
    return plain


def _direct_ok(http: httpx.AsyncClient) -> bool:
    """Whether ``http`` sends a request as :func:`_send_direct` does: httpx's own client code
    (no step overridden), no auth, no event hooks, no redirects followed, open."""
    hooks = http.event_hooks
    return (
        _plain_client(type(http))
        and http.auth is None
        and not http.follow_redirects
        and http.max_redirects >= 0
        and not hooks["request"]
        and not hooks["response"]
        and not http.is_closed
    )


def _origin(prefix: str) -> tuple[str, str, int | None, bytes] | None:
    known = _origins.get(prefix, False)
    if known is not False:
        return known  # type: ignore[return-value]
    found: tuple[str, str, int | None, bytes] | None = None
    scheme, _, authority = prefix.partition("://")
    if scheme in ("http", "https") and _SAFE_AUTHORITY.fullmatch(authority):
        try:
            url = httpx.URL(prefix + "/")
        except httpx.InvalidURL:
            url = None
        if url is not None:
            parsed = url._uri_reference  # httpx's own form (``url.host`` decodes IDNA)
            if not parsed.userinfo:
                found = (parsed.scheme, parsed.host, parsed.port, url.netloc)
    if len(_origins) < _MAX_ORIGINS:
        _origins[prefix] = found
    return found


def _url_path(url: str | httpx.URL) -> str:
    """``httpx.URL(url).path``, without parsing the URL again when it is a plain one."""
    known = _quick_url(url) if isinstance(url, str) else None
    return known[1] if known is not None else httpx.URL(url).path


def _quick_url(url: str) -> tuple[tuple[str, str, int | None, bytes], str] | None:
    """An absolute URL's origin, as httpx parses it, and its path, when the path is one httpx
    takes as it is (no query, no fragment, no dot segment, nothing to escape); else None."""
    if not url.startswith(("http://", "https://")):
        return None
    slash = url.find("/", 8)
    if slash < 0:
        return None
    path = url[slash:]
    if not _SAFE_PATH.fullmatch(path) or len(url) > _urlparse.MAX_URL_LENGTH:
        return None
    if "." in path:
        parts = path.split("/")
        if "." in parts or ".." in parts:
            return None
    origin = _origin(url[:slash])
    if origin is None:
        return None
    return origin, path


class _QuickRequests:
    """Builds a surface's bodiless requests as ``http.build_request`` would, without parsing
    the URL character by character: the origin's parse is kept, and a path of characters httpx
    never escapes is taken as it is."""

    def __init__(self) -> None:
        self._headers: list[tuple[bytes, bytes, bytes]] | None = None
        self._templates: dict[bytes, httpx.Headers] = {}

    def build(
        self, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
    ) -> httpx.Request | None:
        """``http.build_request(method, url, **kwargs)``, or None when it is not one this
        knows to build the same way."""
        if not isinstance(url, str) or not _plain_client(type(http)):
            return None
        for key in kwargs:
            if key != "params":
                return None
        method = method.upper()
        if method not in _BODILESS:
            return None
        known = _quick_url(url)
        if known is None:
            return None
        origin, path = known
        if http.params or http.cookies:
            return None
        query: str | None = None
        merged = http._merge_queryparams(kwargs.get("params"))
        if merged:
            query = str(httpx.QueryParams(merged))
            if len(query) > _urlparse.MAX_URL_LENGTH or not _SAFE_QUERY.fullmatch(query):
                return None
        scheme, host, port, netloc = origin
        target = httpx.URL.__new__(httpx.URL)
        target._uri_reference = _urlparse.ParseResult(scheme, "", host, port, path, query, None)
        request = httpx.Request.__new__(httpx.Request)
        request.method = method
        request.url = target
        request.headers = httpx.Headers(self._template(http, netloc))
        request.extensions = {"timeout": http.timeout.as_dict()}
        request.stream = httpx.ByteStream(b"")
        request._content = b""
        return request

    def _template(self, http: httpx.AsyncClient, netloc: bytes) -> httpx.Headers:
        """The client's headers with ``Host`` before them, as httpx puts them."""
        current = http.headers._list
        if current != self._headers:
            self._headers = list(current)
            self._templates = {}
        template = self._templates.get(netloc)
        if template is None:
            template = httpx.Headers()
            if any(lowered == b"host" for _, lowered, _ in current):
                template._list = list(current)
            else:
                template._list = [(b"Host", b"host", netloc), *current]
            self._templates[netloc] = template
        return template


async def _send_direct(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``http.send(request)`` for a client :func:`_direct_ok` accepts: the same answer, read
    whole, or the same error."""
    url = request.url
    if url.userinfo and (url.username or url.password):
        return await http.send(request)  # httpx makes a Basic auth of it
    http._state = _ClientState.OPENED
    http._set_timeout(request)
    transport = http._transport_for_url(url)
    start = time.perf_counter()
    if not isinstance(request.stream, httpx.AsyncByteStream):
        raise RuntimeError("Attempted to send an sync request with an AsyncClient instance.")
    try:
        response = await transport.handle_async_request(request)
    except httpx.RequestError as exc:
        exc.request = request
        raise
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise AssertionError  # as httpx's ``assert`` on a transport's answer
    response.request = request
    response.stream = _BoundAsyncStream(stream, response=response, start=start)
    http.cookies.extract_cookies(response)
    response.default_encoding = http._default_encoding
    if _httpx_log.isEnabledFor(logging.INFO):
        _httpx_log.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )
    try:
        response.history = []
        if response.has_redirect_location:
            response.next_request = http._build_redirect_request(request, response)
        if not hasattr(response, "_content"):
            if type(response).aread is httpx.Response.aread:
                await _read(response, stream)
            else:
                await response.aread()
    except BaseException:
        await response.aclose()
        raise
    return response


async def _read(response: httpx.Response, stream: httpx.AsyncByteStream) -> None:
    """``response.aread()`` without its three generators: the raw chunks decoded as they come,
    the response closed once they end."""
    if response.is_stream_consumed:
        raise httpx.StreamConsumed()
    if response.is_closed:
        raise httpx.StreamClosed()
    decoder = response._get_content_decoder()
    response.is_stream_consumed = True
    response._num_bytes_downloaded = 0
    parts: list[bytes] = []
    try:
        async for raw in stream:
            response._num_bytes_downloaded += len(raw)
            if raw:
                decoded = decoder.decode(raw)
                if decoded:
                    parts.append(decoded)
        await response.aclose()
        decoded = decoder.flush()
        if decoded:
            parts.append(decoded)
    except httpx.RequestError as exc:
        if response._request is not None:
            exc.request = response._request
        raise
    response._content = b"".join(parts)
