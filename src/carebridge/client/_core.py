"""What the sync and the async client share, without I/O: a call's description, how it becomes an
``httpx.Request``, how an answer becomes a typed value or an error, and when to retry.

A :class:`Call` is one operation with its arguments: method, path, query, body, whether it is a
write, and how to read its answer. A write's ``Idempotency-Key`` is fixed when the call is built
(generated unless given), so every retry of the call sends the same key and the API replays the
first answer instead of writing twice.

:class:`RetryPolicy` is a pure decision: given the attempt number and what came back (a status
and its ``Retry-After``, or no answer), how long to wait before the next attempt, or None to
stop. The clients do the waiting, with a ``sleep`` that tests inject.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import httpx
from pydantic import TypeAdapter

from carebridge.client._errors import from_response
from carebridge.contract import Page

T = TypeVar("T")
M = TypeVar("M")

DEFAULT_BASE_URL = "http://127.0.0.1:8700"
USER_AGENT = "carebridge-python"
KEY_PREFIX = "cbpy_"
"""The prefix of the idempotency keys the client generates."""

Scalar = str | int | float | bool | date | datetime
ParamValue = Scalar | Sequence[Scalar] | None
"""A query parameter's value: a list repeats the parameter; None leaves it out."""


def new_idempotency_key() -> str:
    """A fresh ``Idempotency-Key``: ``cbpy_`` and 32 hex digits."""
    return f"{KEY_PREFIX}{uuid.uuid4().hex}"


def _scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("query instants must be timezone-aware")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def query(params: Mapping[str, ParamValue]) -> list[tuple[str, str | int | float | bool | None]]:
    """A call's query pairs: None left out, a list repeated, dates and instants in ISO form."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool | date | datetime):
            pairs.append((name, _scalar(value)))
        else:
            pairs.extend((name, _scalar(v)) for v in value)
    return pairs


def _no_answer(_: httpx.Response) -> None:
    return None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One operation with its arguments, and how to read its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    body: Any = None
    write: bool = False
    idempotency_key: str | None = None

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The HTTP request (built again for each attempt, with the same key)."""
        headers = {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}
        return client.build_request(
            self.method,
            self.path,
            params=query(self.params),
            json=self.body,
            headers=headers,
        )

    def answer(self, response: httpx.Response) -> T:
        """The typed value of a success, or raise the problem of an error answer."""
        if not response.is_success:
            raise from_response(response)
        return self.read(response)


def reader(kind: Any) -> Callable[[httpx.Response], Any]:
    """How to read an answer's JSON as ``kind`` (a model class or any type pydantic knows).

    Fields the models do not know are ignored, at every depth: the API adds fields without a new
    version (docs/api-conventions.md), and a client must keep reading what it knows."""
    adapter: TypeAdapter[Any] = TypeAdapter(kind)

    def read(response: httpx.Response) -> Any:
        return adapter.validate_json(response.content, extra="ignore")

    return read


def call(
    method: str,
    path: str,
    answer: type[T] | Any,
    *,
    params: Mapping[str, ParamValue] | None = None,
    body: Any = None,
    idempotency_key: str | None = None,
) -> Call[T]:
    """A call whose answer is read as ``answer`` (None: no body, as for 204). A POST or DELETE
    is a write and carries ``idempotency_key``, or a fresh one."""
    write = method in ("POST", "DELETE", "PUT", "PATCH")
    key = (idempotency_key or new_idempotency_key()) if write else None
    read: Callable[[httpx.Response], Any] = _no_answer if answer is None else reader(answer)
    return Call(method, path, read, dict(params or {}), body, write, key)


def more(page: Page[Any]) -> bool:
    """Whether another page follows ``page``."""
    return page.has_more and page.next_cursor is not None


@dataclass(frozen=True)
class ListCall(Generic[M]):
    """A list operation: the first page's call, and how to ask for the page after a cursor
    (``cursor``, or ``after`` for the event log's numeric position)."""

    path: str
    item: Any
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    cursor_param: str = "cursor"

    def page(self, cursor: str | None = None) -> Call[Page[M]]:
        """The call of the page at ``cursor`` (None: the first)."""
        params = dict(self.params)
        if cursor is not None:
            params[self.cursor_param] = cursor
        return Call("GET", self.path, reader(Page[self.item]), params)  # type: ignore[name-defined]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again.

    An answer of one of ``statuses`` (429 and 503) or no answer at all is retried, at most
    ``max_retries`` times. The wait is the answer's ``Retry-After`` when it gives one, else an
    exponential backoff (``base_delay`` doubling up to ``max_delay``, less up to ``jitter`` of
    it at random). A ``Retry-After`` longer than ``max_wait`` is not waited for: the error is
    raised, carrying ``retry_after``, for the caller to decide.

    Writes are retried too: each carries its ``Idempotency-Key``, so the API answers a repeat
    with the first answer rather than writing twice.
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 60.0
    jitter: float = 0.25
    statuses: frozenset[int] = frozenset({429, 503})

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before retry ``attempt + 1`` when the answer gave no ``Retry-After``."""
        delay = min(self.max_delay, self.base_delay * 2.0**attempt)
        return delay * (1 - self.jitter * rand())

    def delay(
        self,
        attempt: int,
        status: int | None,
        retry_after: str | None = None,
        *,
        now: datetime | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        Args:
            attempt: the attempts made so far, less one (0 after the first).
            status: the answer's status, or None when no answer came.
            retry_after: the answer's ``Retry-After`` (seconds or an HTTP date).
            now: the time, to read an HTTP-date ``Retry-After`` against.
        """
        if attempt >= self.max_retries:
            return None
        if status is not None and status not in self.statuses:
            return None
        wait = parse_retry_after(retry_after, now or datetime.now(UTC))
        if wait is None:
            return self.backoff(attempt, rand)
        return wait if wait <= self.max_wait else None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delay-seconds or an HTTP date), or None when absent or
    unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, float((when - now).total_seconds()))


def with_key(c: Call[T], key: str) -> Call[T]:
    """The same call under another idempotency key."""
    return replace(c, idempotency_key=key)


def headers(api_key: str | None) -> dict[str, str]:
    """The headers of every request: the bearer key and the client's name."""
    out = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out
