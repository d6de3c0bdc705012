"""Shared harness of the connector tests: the sandbox in process.

- :class:`Sandbox`: a small tenant behind ``httpx.ASGITransport`` with a practice-1 token, for
  fetching raw v2 payloads;
- :class:`InProcess` and :func:`open_tenant`: a ``LiveTenant`` whose sync clients reach the app
  in process, so the portal and SMART helpers of ``tests.support.sandbox`` work unchanged;
- :func:`search_all` and :func:`of`: every FHIR resource a search finds, and those of one type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from tests.support.sandbox import LiveTenant

from carebridge.connectors.carecloud.paging import v2_next
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.domain import LocationId, PatientId, ProviderId, ResourceId, VisitReasonId
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ANCHOR = date(2026, 11, 24)
BASE = "http://sandbox.test"
R = TypeVar("R", bound=w.Resource)


class Sandbox:
    """A small tenant behind ``httpx.ASGITransport``, with a practice-1 access token."""

    def __init__(self, seed: int) -> None:
        self.clock = ManualClock(START)
        config = SandboxConfig(seed=seed, patients=40, practices=1, anchor=ANCHOR, base_url=BASE)
        self.tenant = Tenant.open(config, clock=self.clock)
        self.app = build_app(self.tenant)
        creds = self.request("GET", "/_sandbox/credentials").json()
        grant = self.request(
            "POST",
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={
                "grant_type": "refresh_token",
                "refresh_token": creds["practices"][0]["refresh_token"],
            },
        )
        self.headers = {"Authorization": f"Bearer {grant.json()['access_token']}"}

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.request(method, url, headers=self.headers, **kwargs)
        assert response.is_success, (url, response.status_code, response.text)
        return response

    def get(self, url: str, **params: Any) -> Any:
        return self.call("GET", url, params=params).json()

    def pages(self, url: str, **params: Any) -> list[Any]:
        """Every item of a paged v2 list, following the ``Link`` header."""
        items: list[Any] = []
        response = self.call("GET", url, params=params)
        while True:
            items.extend(response.json())
            following = v2_next(response.headers.get("link"))
            if following is None:
                return items
            parts = urlsplit(following)
            response = self.call("GET", f"{parts.path}?{parts.query}")

    def truth(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.tenant.db.all(sql, params)

    def control(self, method: str, url: str, body: Any = None) -> httpx.Response:
        response = self.request(method, url, json=body)
        assert response.is_success, (url, response.status_code, response.text)
        return response


class InProcess(httpx.BaseTransport):
    """Hands each request to the tenant's ASGI app on one private event loop (sync clients)."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self.loop = asyncio.new_event_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=request.read()
            )
            response = await self._asgi.handle_async_request(forwarded)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return self.loop.run_until_complete(call())

    def close(self) -> None:
        """Clients come and go; the loop lives as long as the tenant (``shut``)."""

    def shut(self) -> None:
        self.loop.close()


@dataclass
class InProcessTenant(LiveTenant):
    """A ``LiveTenant`` whose clients reach the app in process (the support helpers work)."""

    transport: InProcess | None = None

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.base_url, headers=headers, transport=self.transport, **kwargs
        )


def open_tenant(config: SandboxConfig) -> tuple[InProcessTenant, InProcess]:
    """Generate a tenant on a manual clock and wire it in process."""
    clock = ManualClock(START)
    tenant = Tenant.open(config, clock=clock)
    transport = InProcess(build_app(tenant))
    live = InProcessTenant(tenant, clock, config.base_url, {}, transport)
    with live.client() as c:
        live.credentials = c.get("/_sandbox/credentials").json()
    return live, transport


def instant(text: str | None) -> datetime | None:
    """A stored UTC instant (``...Z``) as an aware datetime."""
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_appointment_matches(a: Any, r: Any, key: Callable[[str, object], str]) -> None:
    """Every field a mapped appointment carries equals its ground-truth row ``r`` (the row joined
    with its patient's ``chart_number`` and its cancellation ``reason_code``/``reason_name``)."""
    assert a.patient_id == PatientId.new(key("patient", r["chart_number"]))
    assert a.provider_id == ProviderId.new(key("provider", r["provider_id"]))
    assert a.location_id == LocationId.new(key("location", r["location_id"]))
    assert a.resource_id == ResourceId.new(key("resource", r["resource_id"]))
    assert a.visit_reason_id == VisitReasonId.new(key("visit_reason", r["nature_of_visit_id"]))
    assert (a.start, a.end) == (instant(r["start_time"]), instant(r["end_time"]))
    assert (a.arrived_at, a.departed_at) == (instant(r["arrived_at"]), instant(r["departed_at"]))
    assert (a.created_at, a.updated_at) == (instant(r["created_at"]), instant(r["updated_at"]))
    assert a.chief_complaint == (r["reason_for_visit"] or "")
    assert a.comments == (r["comments"] or "")
    assert a.is_confirmed is bool(r["is_confirmed"])
    assert a.patient_contacted is bool(r["patient_contacted"])
    assert a.is_force_overbook is bool(r["is_force_overbook"])
    assert a.upstream_status is not None
    assert a.upstream_status.code == r["status_code"]
    assert a.updated_by_application == r["updated_by_application"]
    if r["cancellation_reason_id"] is None:
        assert a.cancellation is None
    else:
        assert a.cancellation is not None
        assert (a.cancellation.reason_code, a.cancellation.reason_name) == (
            r["reason_code"],
            r["reason_name"],
        )
        assert a.cancellation.comments == (r["cancellation_comments"] or "")


def search_all(client: httpx.Client, resource_type: str, **params: Any) -> list[w.Resource]:
    """Every match of a search, following ``link[next]``."""
    found: list[w.Resource] = []
    url: str | None = f"{str(client.base_url).rstrip('/')}/{resource_type}"
    query: dict[str, Any] | None = {"_count": 1000, **params}
    while url is not None:
        r = client.get(url, params=query)
        assert r.status_code == 200, r.text
        bundle = w.Bundle.model_validate(r.json())
        assert bundle.type == "searchset"
        found.extend(w.parse_resource(e.resource) for e in bundle.entry if e.resource)
        url, query = bundle.next_url(), None
    return found


def of(resources: dict[str, list[w.Resource]], model: type[R]) -> list[R]:
    items = resources[model.__name__]
    assert all(isinstance(item, model) for item in items)
    return items  # type: ignore[return-value]
