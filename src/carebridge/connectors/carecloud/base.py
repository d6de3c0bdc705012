"""The plumbing every part of the tenant facade shares: its state, the surfaces, timed and
drift-checked fetches (logged without PHI: endpoint templates, counts, pages, latencies).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.client import SurfaceClient, json_body
from carebridge.connectors.carecloud.drift import DriftReport
from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.paging import numbered_pages, parse_link_header
from carebridge.connectors.carecloud.surfaces import Connection
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.connectors.carecloud.writes import WriteContext
from carebridge.domain.provenance import Surface
from carebridge.domain.values import (
    AppointmentId,
    LocationId,
    PatientId,
    ResourceId,
    VisitReasonId,
)
from carebridge.errors import ConfigError
from carebridge.ports.crosswalk import Crosswalk, Link, MemoryCrosswalk

log = logging.getLogger("carebridge.connector")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

PORTAL_PAGE_SIZE = 100
FHIR_PAGE_SIZE = 100
FHIR_SCAN_PAGE_SIZE = 1000
"""The Patient search's page when only ids are learned: the Connector's largest ``_count``
(a server that allows fewer answers fewer per page, and ``link[next]`` is followed)."""
PAGES_AHEAD = 8
"""Pages of a v2 list read ahead of the one being consumed (when the ``Link`` header numbers
them): what a window read holds in memory at most, whatever the window's size. A portal list
read whole requests as many pages after its first at once (its ``totalPages`` numbers them)."""
REMEMBERED = 20_000
"""Links this process knows the crosswalk holds (not sent again); older ones are forgotten
(sending a link twice is harmless), so the table stays bounded on a tenant of any size."""


class Recent:
    """A bounded set of the most recently added items (a least-recently-added eviction)."""

    def __init__(self, limit: int = REMEMBERED) -> None:
        self.limit = limit
        self._items: OrderedDict[object, None] = OrderedDict()

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: object) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def update(self, items: Iterable[object]) -> None:
        for item in items:
            self.add(item)


@dataclass
class PersonIds:
    """One person's ids on every surface."""

    patient_id: PatientId
    chart_number: str
    v2_id: str | None = None
    rcm_account_number: str | None = None
    fhir_id: str | None = None


class _Fetch:
    """Times one endpoint's fetch and logs it without PHI."""

    def __init__(self, surface: str, endpoint: str) -> None:
        self.surface = surface
        self.endpoint = endpoint
        self.pages = 0
        self.count = 0
        self.started = time.monotonic()

    def page(self, items: int) -> None:
        self.pages += 1
        self.count += items

    def done(self) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return  # nothing to build: a fetch's debug line is made only when it is written
        log.debug(
            "fetched %s %s: %d records, %d pages, %.1f ms",
            self.surface,
            self.endpoint,
            self.count,
            self.pages,
            (time.monotonic() - self.started) * 1000,
            extra={
                "surface": self.surface,
                "endpoint": self.endpoint,
                "records": self.count,
                "pages": self.pages,
            },
        )


class TenantBase:
    """The facade's state and plumbing (see :class:`~carebridge.connectors.carecloud.facade.CareCloudTenant`)."""

    def __init__(
        self,
        connection: Connection,
        *,
        tenant: str,
        v2_base: str,
        portal_api: str,
        fhir_base: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        crosswalk: Crosswalk | None = None,
    ) -> None:
        self.connection = connection
        self.tenant = tenant
        self.v2_base = v2_base.rstrip("/")
        self.portal_api = portal_api.rstrip("/")
        self.fhir_base = fhir_base.rstrip("/") if fhir_base else None
        self.clock = clock
        self.drift = DriftReport(clock=clock)
        self.dropped: dict[str, Counter[str]] = {}
        self.links: Crosswalk = crosswalk if crosswalk is not None else MemoryCrosswalk()
        """The tenant's crosswalk (the store's in a deployment; this process's without one)."""
        self._pending: dict[tuple[str, str, str], Link] = {}
        self._remembered = Recent()
        self._people: dict[PatientId, PersonIds] = {}
        self._appointments: dict[AppointmentId, str] = {}
        self._locations: dict[LocationId, int] = {}
        self._resources: dict[ResourceId, int] = {}
        self._visit_reasons: dict[VisitReasonId, int] = {}
        self._default_providers: dict[int, int] = {}
        self._cancellation_reasons: dict[int, vw.CancellationReasonPayload] | None = None
        self._fhir_scanned = False
        self._practice_indexed = False
        self._writes = WriteContext(
            conn=connection,
            tenant=tenant,
            v2_url=f"{self.v2_base}/v2",
            portal_url=self.portal_api,
            drift=self.drift,
            clock=clock,
        )
        """The writes' context: it shares the drift report, and reads fill its id index."""

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def _v2(self) -> SurfaceClient[Any]:
        if self.connection.v2 is None:
            raise ConfigError("the v2 surface is not configured for this tenant")
        return self.connection.v2

    @property
    def _portal(self) -> SurfaceClient[Any]:
        if self.connection.portal is None:
            raise ConfigError("the portal surface is not configured for this tenant")
        return self.connection.portal

    def _ctx(self, surface: Surface, endpoint: str) -> Context:
        return Context(
            tenant=self.tenant, surface=surface, endpoint=endpoint, fetched_at=self.clock()
        )

    def _keep(self, endpoint: str, mapped: Mapped[T]) -> T:
        if mapped.dropped:
            self.dropped.setdefault(endpoint, Counter()).update(mapped.dropped)
        return mapped.value

    async def _v2_get(self, endpoint: str, path: str, params: dict[str, Any] | None = None) -> Any:
        fetch = _Fetch("v2", endpoint)
        response = await self._v2.request(
            "GET", f"{self.v2_base}{path}", params=params, endpoint=endpoint
        )
        body = json_body(response)
        fetch.page(len(body) if isinstance(body, list) else 1)
        fetch.done()
        return body

    async def _v2_read(
        self, endpoint: str, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> M:
        """One v2 object, checked for drift."""
        body = await self._v2_get(endpoint, path, params)
        return drift.check(body, model, endpoint, self.drift)

    async def _v2_read_list(
        self, endpoint: str, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> list[M]:
        """A v2 array answered whole (not paged), each item checked for drift."""
        body = await self._v2_get(endpoint, path, params)
        return drift.check_list(body, model, endpoint, self.drift)

    async def _v2_list(
        self, endpoint: str, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> list[M]:
        """Every item of a paged v2 array, each page checked for drift."""
        fetch = _Fetch("v2", endpoint)
        items: list[M] = []
        async for response in self._v2.v2_pages(f"{self.v2_base}{path}", params):
            page = drift.check_list(json_body(response), model, endpoint, self.drift)
            fetch.page(len(page))
            items.extend(page)
        fetch.done()
        return items

    async def _v2_pages(
        self,
        endpoint: str,
        path: str,
        model: type[M],
        params: dict[str, Any] | None = None,
        *,
        ahead: int = PAGES_AHEAD,
    ) -> AsyncIterator[list[M]]:
        """The pages of a paged v2 list, in order, each checked for drift as it arrives.

        When the first page's ``Link`` header numbers the pages (``next`` and ``last`` differ
        only in ``page``), up to ``ahead`` of the following pages are requested at once (each
        waits for its throttle slot); the page the header names ``last`` is then followed by
        its own ``next``, if the list grew meanwhile. Otherwise ``next`` is followed one page
        at a time. At most ``ahead`` pages are held, whatever the list's length.
        """
        fetch = _Fetch("v2", endpoint)
        client = self._v2

        async def get(url: str, query: dict[str, Any] | None) -> Any:
            return await client.request("GET", url, params=query, endpoint=endpoint)

        def checked(response: Any) -> list[M]:
            page = drift.check_list(json_body(response), model, endpoint, self.drift)
            fetch.page(len(page))
            return page

        first = await get(f"{self.v2_base}{path}", params)
        links = parse_link_header(first.headers.get("link"))
        yield checked(first)
        next_url = links.get("next")
        urls = numbered_pages(next_url, links.get("last")) if next_url else []
        if urls:
            pending: deque[asyncio.Task[Any]] = deque()
            queue = iter(urls)
            try:
                for url in queue:
                    pending.append(asyncio.ensure_future(get(url, None)))
                    if len(pending) >= ahead:
                        break
                last: Any = None
                while pending:
                    last = await pending.popleft()
                    for url in queue:
                        pending.append(asyncio.ensure_future(get(url, None)))
                        break
                    yield checked(last)
            finally:
                for task in pending:
                    task.cancel()
            next_url = parse_link_header(last.headers.get("link")).get("next") if last else None
        while next_url:
            response = await get(next_url, None)
            yield checked(response)
            next_url = parse_link_header(response.headers.get("link")).get("next")
        fetch.done()

    async def _portal_get(self, endpoint: str, path: str, model: type[M]) -> M:
        fetch = _Fetch("portal", endpoint)
        response = await self._portal.request("GET", f"{self.portal_api}{path}", endpoint=endpoint)
        item = drift.check(json_body(response), model, endpoint, self.drift)
        fetch.page(1)
        fetch.done()
        return item

    async def _portal_list(
        self, endpoint: str, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> list[M]:
        """Every item of a paged portal list, each page checked against ``Page[model]``; the
        pages after the first are requested :data:`PAGES_AHEAD` at a time."""
        fetch = _Fetch("portal", endpoint)
        page_model: type[pw.Page[Any]] = pw.Page[model]  # type: ignore[valid-type]
        items: list[M] = []
        async for body in self._portal.portal_pages(
            f"{self.portal_api}{path}",
            {"pageSize": PORTAL_PAGE_SIZE, **(params or {})},
            ahead=PAGES_AHEAD,
        ):
            page = drift.check(body, page_model, endpoint, self.drift)
            fetch.page(len(page.items))
            items.extend(page.items)
        fetch.done()
        return items
