"""Patients from v2 (enumerated from the portal's list): demographics, coverages, balances.

A listing reads the portal's patient list (one paged read, ``updatedSince`` when incremental),
finds every listed person's v2 GUID without a search per patient, then reads the people in
batches, each person's ``GET /v2/patients/{id}`` and ``/balance`` in flight together and the
batch's people at once (the tenant's throttle decides how many requests run):

1. GUIDs the crosswalk already holds (any earlier read, in any process): one lookup per batch;
2. the rest by **batched searches**: ``POST /v2/patients/search`` by a ``last_name`` prefix that
   the full list says names at most :data:`PREFIX_HITS` people (the search answers at most
   100), so one search finds the GUIDs of every person under that prefix (matched by chart
   number; the empty prefix when the whole list is that short); computed only from a full
   listing (an incremental list cannot count a prefix); a search the upstream refuses (4xx)
   leaves its people to the next step;
3. whoever is still unknown (an upstream whose name search is not by prefix, a name shared by
   more than a search returns, a person created meanwhile): a search by chart number, as before.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.base import _Fetch
from carebridge.connectors.carecloud.client import json_body
from carebridge.connectors.carecloud.identity import Identity, PersonIds
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain import Balance, Coverage, Patient
from carebridge.domain.values import PatientId
from carebridge.errors import UpstreamStatusError

T = TypeVar("T")
U = TypeVar("U")

BATCH = 100
"""People read at once (their requests still wait for the throttle's slots)."""
SEARCH_LIMIT = 100
"""The most hits a v2 patient search answers."""
PREFIX_HITS = 90
"""The most people a batched search's prefix may name, by the listing's count (a margin under
:data:`SEARCH_LIMIT` for names the two surfaces spell differently)."""


async def gather(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``jobs`` at once and answer their results in order; the first failure cancels the
    rest (and waits for them) and is raised as itself."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _both(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    """Two reads at once (see :func:`gather`)."""
    one, two = await gather([first, second])
    return one, two  # type: ignore[return-value]


def _key(name: str) -> str:
    return name.strip().lower()


def search_prefixes(names: Sequence[str], wanted: Iterable[str]) -> set[str]:
    """The ``last_name`` prefixes that cover ``wanted`` (names of people to find) with searches
    of at most :data:`PREFIX_HITS` people each, counted over ``names`` (the whole list): for
    each wanted name the shortest prefix that few people share. A name shared by more people
    than that has no prefix (its people are searched one by one)."""
    if len(names) <= PREFIX_HITS:
        return {""}  # one search names everyone
    counts: Counter[str] = Counter()
    for name in names:
        key = _key(name)
        for n in range(1, len(key) + 1):
            counts[key[:n]] += 1
    found: set[str] = set()
    for name in wanted:
        key = _key(name)
        for n in range(1, len(key) + 1):
            if counts[key[:n]] <= PREFIX_HITS:
                found.add(key[:n])
                break
    return found


class PatientReads(Identity):
    """Patients, coverages and balances (v2)."""

    async def patients(self, *, updated_since: datetime | None = None) -> AsyncIterator[Patient]:
        """Every patient (updated after ``updated_since``), enumerated from the portal's list and
        read from v2 (demographics, coverages and balances), in the list's order."""
        params = {"updatedSince": updated_since.isoformat()} if updated_since else None
        items = await self._portal_list(
            "GET /portal/api/patients", "/patients", pw.PatientItemPayload, params
        )
        people = [
            self._person(item.chart_number, rcm_account=item.rcm_account_number) for item in items
        ]
        await self._flush()
        # The Connector ids only feed the crosswalk (no v2 read needs them): their scan runs
        # beside the GUID searches and the people's reads, and the listing ends only once it
        # has (its failure fails the listing, at the next batch). A caller that stops early
        # (a failed save) closes this generator, which cancels the scan and waits for it: no
        # task of the listing outlives it, and a cancelled scan never stops a crosswalk write
        # half-way (see :meth:`Identity._flush`).
        scan = asyncio.ensure_future(self._fhir_ids(people, updated_since=updated_since))
        ahead: asyncio.Future[list[Patient]] | None = None
        try:
            await self._find_guids(items, people, full=updated_since is None)
            batches = [people[start : start + BATCH] for start in range(0, len(people), BATCH)]
            # The next batch is read while the caller maps and stores this one (one batch
            # ahead), so neither the upstream nor this process waits on the other at a batch's
            # end.
            for n, batch in enumerate(batches):
                if scan.done():
                    scan.result()  # a failed scan fails the listing now, not at its end
                current = ahead or self._read_batch(batch)
                ahead = self._read_batch(batches[n + 1]) if n + 1 < len(batches) else None
                for patient in await current:
                    yield patient
            await scan
        finally:
            if ahead is not None:  # the caller stopped early, or this batch failed
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)
            if not scan.done():
                scan.cancel()
            await asyncio.gather(scan, return_exceptions=True)
        await self._flush()

    def _read_batch(self, batch: Sequence[PersonIds]) -> asyncio.Future[list[Patient]]:
        """A batch of people read at once, started now (see :func:`gather`)."""
        return asyncio.ensure_future(
            gather(self._patient(p.patient_id, flush=False) for p in batch)
        )

    async def _find_guids(
        self, items: Sequence[pw.PatientItemPayload], people: Sequence[PersonIds], *, full: bool
    ) -> None:
        """Find the v2 GUID of every listed person who lacks one: the crosswalk's, then the
        batched searches' (``full``: ``items`` is the whole list), then one search each."""
        found = await self._crosswalk_ids([p for p in people if p.v2_id is None], "v2")
        for person, guid in found:
            self._link(person.chart_number, guid)
        missing = [p for p in people if p.v2_id is None]
        if missing and full:
            charts = {p.chart_number for p in missing}
            wanted = [i.last_name for i in items if i.chart_number.strip() in charts]
            prefixes = sorted(search_prefixes([i.last_name for i in items], wanted))
            await gather(self._search_prefix(prefix) for prefix in prefixes)
            missing = [p for p in people if p.v2_id is None]
        if missing:
            guids = await gather(self._find_v2_id(p.chart_number) for p in missing)
            for person, guid in zip(missing, guids, strict=True):
                self._link(person.chart_number, guid)
        await self._flush()

    async def _search_prefix(self, prefix: str) -> None:
        """One batched search: every hit whose chart number names a person this listing knows
        gets its GUID."""
        endpoint = "POST /v2/patients/search"
        fetch = _Fetch("v2", endpoint)
        try:
            response = await self._v2.request(
                "POST",
                f"{self.v2_base}/v2/patients/search",
                json={"fields": {"last_name": prefix}, "limit": SEARCH_LIMIT},
                idempotent=True,
                endpoint=endpoint,
            )
        except UpstreamStatusError as err:
            if 400 <= err.status < 500 and err.status != 429:
                return  # an upstream that refuses this search: its people are searched one each
            raise
        hits = drift.check(json_body(response), vw.PatientSearchResponse, endpoint, self.drift)
        fetch.page(len(hits.patients))
        fetch.done()
        ctx = self._ctx("v2", "crosswalk")
        for hit in hits.patients:
            person = self._people.get(vmap.patient_id(ctx, hit.chart_number))
            if person is not None and person.v2_id is None:
                self._link(hit.chart_number, hit.id)

    async def patient(self, patient_id: PatientId) -> Patient:
        return await self._patient(patient_id, flush=True)

    async def _patient(self, patient_id: PatientId, *, flush: bool) -> Patient:
        person = self._people.get(patient_id)
        if person is not None and person.v2_id is not None:  # what ``_v2_ref`` answers it
            ref = vmap.PatientRef(person.v2_id, person.chart_number)
        else:
            ref = await self._v2_ref(patient_id, flush=flush)
        shown = "GET /v2/patients/{id}"
        balance = "GET /v2/patients/{id}/balance"
        show_read = self._v2_read(shown, f"/v2/patients/{ref.v2_id}", vw.PatientShowResponse)
        balance_read = self._v2_read_list(
            balance, f"/v2/patients/{ref.v2_id}/balance", vw.BalancePayload
        )
        wire, balances = await _both(show_read, balance_read)
        return self._keep(
            shown, vmap.map_patient(wire.patient, self._ctx("v2", shown), balances=balances)
        )

    async def coverages(self, patient_id: PatientId) -> list[Coverage]:
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/patients/{id}/insurances"
        profiles = (
            await self._v2_read(
                endpoint, f"/v2/patients/{ref.v2_id}/insurances", vw.InsurancesResponse
            )
        ).insurance_profiles
        mapped = vmap.map_coverages(profiles, self._ctx("v2", endpoint), patient=ref)
        coverages: tuple[Coverage, ...] = self._keep(endpoint, mapped)
        return list(coverages)

    async def balance(self, patient_id: PatientId) -> list[Balance]:
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/patients/{id}/balance"
        rows = await self._v2_read_list(
            endpoint, f"/v2/patients/{ref.v2_id}/balance", vw.BalancePayload
        )
        ctx = self._ctx("v2", endpoint)
        return [self._keep(endpoint, vmap.map_balance(b, ctx, patient=ref)) for b in rows]
