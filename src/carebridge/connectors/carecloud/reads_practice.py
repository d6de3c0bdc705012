"""The practice's lists from v2: providers, locations, resources, visit reasons, availability."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.base import log
from carebridge.connectors.carecloud.identity import Identity
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain import Location, Provider, Resource, Slot, VisitReason
from carebridge.domain.values import LocationId, ResourceId, VisitReasonId
from carebridge.errors import UpstreamStatusError

AVAILABILITY_DAYS = (7, 28)
"""Windows searched for a visit reason's usual duration (v2 lists name none)."""


class PracticeReads(Identity):
    """Providers, locations, resources, visit reasons and free slots (v2)."""

    async def providers(self) -> AsyncIterator[Provider]:
        endpoint = "GET /v2/providers"
        body = await self._v2_get(endpoint, "/v2/providers")
        ctx = self._ctx("v2", endpoint)
        wires = drift.check(body, vw.ProvidersResponse, endpoint, self.drift).providers
        providers = [self._keep(endpoint, vmap.map_provider(wire, ctx)) for wire in wires]
        for wire, provider in zip(wires, providers, strict=True):
            self._learn("provider", "v2", wire.id, provider.id)
        await self._flush()
        for provider in providers:
            yield provider

    async def locations(self) -> AsyncIterator[Location]:
        endpoint = "GET /v2/locations"
        body = await self._v2_get(endpoint, "/v2/locations")
        ctx = self._ctx("v2", endpoint)
        locations: list[Location] = []
        for wire in drift.check(body, vw.LocationsResponse, endpoint, self.drift).locations:
            location = self._keep(endpoint, vmap.map_location(wire, ctx))
            self._locations[location.id] = self._writes.index.locations[location.id] = wire.id
            self._learn("location", "v2", wire.id, location.id)
            locations.append(location)
        await self._flush()
        for location in locations:
            yield location

    async def resources(self) -> AsyncIterator[Resource]:
        listed = "GET /v2/appointment_resources"
        shown = "GET /v2/appointment_resources/{id}"
        reasons = "GET /v2/appointment_resources/{id}/visit_reasons"
        body = await self._v2_get(listed, "/v2/appointment_resources")
        envelopes = drift.check_list(body, vw.ResourceEnvelope, listed, self.drift)
        ctx = self._ctx("v2", shown)
        for envelope in envelopes:
            rid = envelope.resource.id
            detail = (
                await self._v2_read(
                    shown, f"/v2/appointment_resources/{rid}", vw.ResourceDetailResponse
                )
            ).resource
            visit_reasons = await self._v2_read_list(
                reasons, f"/v2/appointment_resources/{rid}/visit_reasons", vw.VisitReasonPayload
            )
            resource = self._keep(
                shown, vmap.map_resource(detail, ctx, visit_reasons=visit_reasons)
            )
            self._resources[resource.id] = self._writes.index.resources[resource.id] = rid
            self._learn("resource", "v2", rid, resource.id)
            await self._flush_page()
            if detail.default_provider is not None and detail.default_provider.id is not None:
                self._default_providers[rid] = detail.default_provider.id
            yield resource
        await self._flush()

    async def visit_reasons(self) -> AsyncIterator[VisitReason]:
        endpoint = "GET /v2/visit_reasons"
        wires = await self._v2_read_list(endpoint, "/v2/visit_reasons", vw.VisitReasonPayload)
        requestable = {
            w.id
            for w in await self._v2_read_list(
                endpoint, "/v2/visit_reasons", vw.VisitReasonPayload, {"request_types_only": "true"}
            )
        }
        ctx = self._ctx("v2", endpoint)
        for wire in wires:
            minutes = await self._usual_duration(wire.id)
            if minutes is None:
                log.warning(
                    "visit reason without a bookable slot: its duration is unknown",
                    extra={"endpoint": endpoint},
                )
                continue
            reason = self._keep(
                endpoint,
                vmap.map_visit_reason(
                    wire, ctx, duration_minutes=minutes, bookable_by_request=wire.id in requestable
                ),
            )
            self._visit_reasons[reason.id] = wire.id
            self._writes.index.visit_reasons[reason.id] = wire.id
            self._learn("visit_reason", "v2", wire.id, reason.id)
            await self._flush_page()
            yield reason
        await self._flush()

    async def _usual_duration(self, reason: int) -> int | None:
        today = self.clock().date()
        for days in AVAILABILITY_DAYS:
            groups = await self._availability(
                reason, today + timedelta(days=1), today + timedelta(days=days)
            )
            minutes = vmap.usual_duration(groups)
            if minutes is not None:
                return minutes
        return None

    async def _availability(
        self,
        reason: int,
        start: date,
        end: date,
        location_ids: Sequence[int] = (),
        resource_ids: Sequence[int] = (),
    ) -> list[vw.AvailabilityGroupPayload]:
        endpoint = "GET /v2/appointment_availability"
        params: dict[str, Any] = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "visit_reason_id": str(reason),
        }
        if location_ids:
            params["location_ids"] = ",".join(str(i) for i in location_ids)
        if resource_ids:
            params["resource_ids"] = ",".join(str(i) for i in resource_ids)
        body = await self._v2_get(endpoint, "/v2/appointment_availability", params)
        return drift.check_list(body, vw.AvailabilityGroupPayload, endpoint, self.drift)

    async def _fill_practice(self, need: Iterable[dict[Any, int]]) -> None:
        """Read the lists whose reverse maps (domain id -> upstream id) are still empty."""
        wanted = list(need)
        if any(m is self._locations and not m for m in wanted):
            async for _ in self.locations():
                pass
        if any(m is self._resources and not m for m in wanted):
            async for _r in self.resources():
                pass
        if any(m is self._visit_reasons and not m for m in wanted):
            async for _v in self.visit_reasons():
                pass

    async def availability(
        self,
        visit_reason_id: VisitReasonId,
        start: date,
        end: date,
        *,
        location_ids: tuple[LocationId, ...] = (),
        resource_ids: tuple[ResourceId, ...] = (),
    ) -> list[Slot]:
        await self._fill_practice(
            [
                self._visit_reasons,
                *([self._locations] if location_ids else []),
                self._resources,
            ]
        )
        reason = self._visit_reasons.get(visit_reason_id)
        if reason is None:
            raise UpstreamStatusError(
                "visit reason not found upstream", status=404, endpoint="GET /v2/visit_reasons"
            )
        locs = [self._locations[i] for i in location_ids if i in self._locations]
        ress = [self._resources[i] for i in resource_ids if i in self._resources]
        if (location_ids and not locs) or (resource_ids and not ress):
            return []
        groups = await self._availability(reason, start, end, locs, ress)
        endpoint = "GET /v2/appointment_availability"
        ctx = self._ctx("v2", endpoint)
        slots: list[Slot] = []
        for group in groups:
            mapped = vmap.map_slots(group, ctx, default_providers=self._default_providers)
            found: tuple[Slot, ...] = self._keep(endpoint, mapped)
            slots.extend(found)
        if location_ids:
            slots = [s for s in slots if s.location_id in location_ids]
        if resource_ids:
            slots = [s for s in slots if s.resource_id in resource_ids]
        return sorted(slots, key=lambda s: (s.start, str(s.resource_id)))
