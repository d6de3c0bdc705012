"""The Connector's Bulk Data ``$export`` (FHIR Bulk Data Access 2.0, async pattern) for the
clinical streams, with ``_since``.

An export is kicked off at the practice's Patient level (``GET {fhir}/Patient/$export`` with
``Prefer: respond-async``), polled at its ``Content-Location`` as the server's ``Retry-After``
says (``X-Progress`` is logged), and its NDJSON files are read line by line as they stream (no
file is held whole). The export says *what* changed since ``_since`` (the previous export's
``transactionTime``); the records themselves are read from the surfaces the per-patient reads
use, so a record read through an export is the record the per-patient read stores, whichever
path ran:

- **encounters**: each exported ``Encounter`` names a portal encounter, whose detail (the note,
  codes, vitals and addenda the FHIR Encounter lacks) is read, a batch of ids at once;
- **labs, immunizations, documents** (``Observation`` of the ``laboratory`` category,
  ``Immunization``, ``DocumentReference``): each exported resource names its patient
  (``subject``/``patient``); the export says *which patients* have records of the kind that
  changed, and only those patients' own lists are read (the portal's labs and immunizations,
  v2's documents: the per-patient reads themselves), a batch of patients at once. A FHIR
  patient id is resolved to the carebridge patient through this process's people, then the
  crosswalk's ``fhir`` surface, then one ``GET {fhir}/Patient/{id}`` (its chart number), which
  the crosswalk then remembers. A fresh store thus reads only the patients who have any record
  of the kind; a later sync only those with a change. ``_typeFilter`` is not sent (a server may
  refuse it, and the emulated Connector does): the client keeps the laboratory Observations
  itself (vital signs are Observations too).

A named patient's list is read whole, so :attr:`BulkExport.patients_read` tells the sync whose
stored records the list no longer returns are gone (the sync tombstones them, as it does after a
per-patient read). What the export cannot tell: a record removed upstream without a trace (the
manifest lists no deletions, and a resource that is gone names no patient); a removal the
Connector exports as a change (a document made inactive is ``entered-in-error``) names its
patient and is swept. See ADR 0019.

A tenant without the Connector, or whose Connector refuses the kick-off (a 4xx), has no Bulk:
:meth:`BulkReads.bulk_export` answers None and the sync reads per patient. Any other failure
(a poll that never finishes, an error in the manifest, a broken file) raises, and the sync falls
back the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.client import SurfaceClient
from carebridge.connectors.carecloud.mapping import fhir as fmap
from carebridge.connectors.carecloud.mapping import portal as pmap
from carebridge.connectors.carecloud.mapping.fhir.base import reference_id
from carebridge.connectors.carecloud.mapping.fhir.charts import encounter_key
from carebridge.connectors.carecloud.reads_charts import ChartReads
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.domain import Encounter
from carebridge.domain.kinds import KINDS
from carebridge.domain.values import PatientId
from carebridge.errors import ConfigError, TransportError, UpstreamStatusError

log = logging.getLogger(__name__)

KICKOFF = "GET /Patient/$export"
STATUS = "GET /bulkstatus/{job}"
FILE = "GET /bulkfiles/{job}/{type}.ndjson"
PATIENT_READ = "GET /Patient/{id}"
DETAIL_BATCH = 100
"""Encounter details read at once (the throttle decides how many are really in flight)."""
PATIENT_BATCH = 100
"""Patients whose lists are read at once (the throttle decides how many are really in flight)."""
BULK_TYPES = {
    "encounter": "Encounter",
    "lab": "Observation",
    "immunization": "Immunization",
    "document": "DocumentReference",
}
"""The kinds an export serves, by FHIR type."""
LAB_CATEGORY = "laboratory"
"""The Observation category of a lab result (the others, vital signs, are not the lab stream's)."""


@dataclass
class BulkExport:
    """One finished export: its snapshot instant (the next export's ``_since``) and its records,
    read as they stream."""

    transaction_time: datetime
    records: Callable[[], AsyncIterator[Any]]
    patients_read: set[str] | None = None
    """The patients whose whole list of the kind the records hold, filled as they are read
    (None for encounters, whose export names encounters, not patients): the sync tombstones
    what such a patient no longer lists."""


class BulkReads(ChartReads):
    """The Connector's Bulk ``$export`` for the clinical streams."""

    bulk_sleep: Callable[[float], Awaitable[None]] | None = None
    """How a poll waits ``Retry-After``; None: the tenant throttle's sleep (``asyncio.sleep`` in
    a deployment; tests inject one that moves the emulator's clock)."""
    bulk_wait_limit: float = 300.0
    """Seconds of ``Retry-After`` an export may ask for in all before it counts as failed."""

    @property
    def _fhir(self) -> SurfaceClient[Any]:
        if self.connection.fhir is None:
            raise ConfigError("the Connector's FHIR surface is not configured for this tenant")
        return self.connection.fhir

    async def bulk_export(self, kind: str, since: datetime | None) -> BulkExport | None:
        """Export ``kind``'s resources changed after ``since`` (all of them for None).

        Returns None when the tenant has no Bulk for it (no Connector, a kind it does not
        export, a kick-off refused with a 4xx).

        Raises:
            UpstreamError: the export failed after its kick-off (the caller falls back).
        """
        fhir_type = BULK_TYPES.get(kind)
        client = self.connection.fhir
        if fhir_type is None or self.fhir_base is None or client is None:
            return None
        params = {"_type": fhir_type, "_outputFormat": "application/fhir+ndjson"}
        if since is not None:
            params["_since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
        try:
            started = await client.request(
                "GET",
                f"{self.fhir_base}/Patient/$export",
                params=params,
                headers=headers,
                endpoint=KICKOFF,
            )
        except UpstreamStatusError as err:
            if err.status is not None and 400 <= err.status < 500:
                log.info("bulk export refused", extra={"endpoint": KICKOFF, "status": err.status})
                return None
            raise
        location = started.headers.get("content-location")
        if started.status_code != 202 or not location:
            log.info("bulk export not started", extra={"endpoint": KICKOFF})
            return None
        manifest = await self._bulk_manifest(location)
        at = manifest.get("transactionTime")
        if not isinstance(at, str):
            raise TransportError("bulk export manifest without transactionTime", endpoint=STATUS)
        transaction_time = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
        if manifest.get("error"):
            raise TransportError("bulk export reported errors", endpoint=STATUS)
        urls = [
            str(o["url"])
            for o in manifest.get("output") or []
            if isinstance(o, dict) and o.get("type") == fhir_type and o.get("url")
        ]

        read: set[str] | None = None if kind == "encounter" else set()

        def records() -> AsyncIterator[Any]:
            if read is None:
                return self._bulk_encounters(urls)
            return self._bulk_patients(kind, urls, read)

        return BulkExport(transaction_time, records, read)

    async def _bulk_manifest(self, location: str) -> dict[str, Any]:
        """Poll the status URL until the manifest, waiting as ``Retry-After`` says."""
        client = self._fhir
        waited = 0.0
        while True:
            r = await client.request("GET", location, endpoint=STATUS)
            if r.status_code == 200:
                body = r.json()
                if not isinstance(body, dict):
                    raise TransportError("bulk export manifest is not an object", endpoint=STATUS)
                return body
            try:
                wait = max(float(r.headers.get("retry-after", "1")), 0.0)
            except ValueError:
                wait = 1.0
            if waited + wait > self.bulk_wait_limit:
                await self._bulk_cancel(location)
                raise TransportError(f"bulk export not ready after {waited:.0f} s", endpoint=STATUS)
            log.info(
                "bulk export in progress",
                extra={"endpoint": STATUS, "progress": r.headers.get("x-progress"), "wait": wait},
            )
            waited += wait
            sleep = self.bulk_sleep or self.connection.throttle.sleep
            await sleep(wait)

    async def _bulk_cancel(self, location: str) -> None:
        client = self._fhir
        try:
            await client.request("DELETE", location, idempotent=True, endpoint="DELETE /bulkstatus")
        except (UpstreamStatusError, TransportError):  # pragma: no cover - best effort
            log.info("bulk export cancel failed", extra={"endpoint": STATUS})

    async def _bulk_lines(self, url: str) -> AsyncIterator[bytes]:
        """One NDJSON file's lines as they stream (the file is never held whole)."""
        client = self._fhir
        async for line in client.lines(url, endpoint=FILE):
            if line.strip():
                yield line

    async def _bulk_encounters(self, urls: list[str]) -> AsyncIterator[Encounter]:
        """The portal's detail of each encounter the export names, a batch at a time."""
        ids: list[int] = []
        for url in urls:
            async for line in self._bulk_lines(url):
                resource = drift.check(orjson.loads(line), fw.Encounter, FILE, self.drift)
                key = encounter_key(resource)
                if not key.isdigit():
                    continue  # not an encounter of the portal's
                ids.append(int(key))
                if len(ids) >= DETAIL_BATCH:
                    for encounter in await self._encounter_details(ids):
                        yield encounter
                    ids = []
        for encounter in await self._encounter_details(ids):
            yield encounter

    async def _encounter_details(self, ids: list[int]) -> list[Encounter]:
        shown = "GET /portal/api/encounters/{id}"
        details = await asyncio.gather(
            *(self._portal_get(shown, f"/encounters/{n}", pw.EncounterDetailPayload) for n in ids)
        )
        out: list[Encounter] = []
        for number, detail in zip(ids, details, strict=True):
            encounter = self._keep(
                shown, pmap.encounter_from_portal(detail, self._ctx("portal", shown))
            )
            self._writes.index.encounters[encounter.id] = number
            self._learn("encounter", "portal", number, encounter.id)
            out.append(encounter)
        await self._flush()
        return out

    # --- the kinds read per patient: the export names the patients -----------------------

    async def _bulk_patients(
        self, kind: str, urls: list[str], read: set[str]
    ) -> AsyncIterator[Any]:
        """The per-patient reads of each patient the export's resources name (each patient once,
        in the order first named), a batch of patients at a time; ``read`` gains each patient
        whose whole list was read."""
        by_fhir = {p.fhir_id: p.patient_id for p in self._people.values() if p.fhir_id}
        named: set[str] = set()
        batch: list[str] = []
        for url in urls:
            async for line in self._bulk_lines(url):
                fhir_id = _patient_named(kind, orjson.loads(line), self.drift)
                if fhir_id is None or fhir_id in named:
                    continue
                named.add(fhir_id)
                batch.append(fhir_id)
                if len(batch) >= PATIENT_BATCH:
                    for record in await self._patients_records(kind, batch, by_fhir, read):
                        yield record
                    batch = []
        for record in await self._patients_records(kind, batch, by_fhir, read):
            yield record

    async def _patients_records(
        self, kind: str, fhir_ids: list[str], by_fhir: dict[str, PatientId], read: set[str]
    ) -> list[Any]:
        """Each named patient's records of ``kind``, read as the per-patient stream reads them
        (each patient added to ``read`` once its whole list is in)."""
        patients = await self._patients_of(fhir_ids, by_fhir)
        reader: Callable[[PatientId], AsyncIterator[Any]] = getattr(self, KINDS[kind].upstream)

        async def one(patient_id: PatientId) -> list[Any]:
            return [record async for record in reader(patient_id)]

        lists = await asyncio.gather(*(one(p) for p in patients))
        await self._flush()
        read.update(str(p) for p in patients)
        return [record for records in lists for record in records]

    async def _patients_of(
        self, fhir_ids: list[str], by_fhir: dict[str, PatientId]
    ) -> list[PatientId]:
        """The carebridge patients of FHIR patient ids: this process's people, the crosswalk's
        ``fhir`` surface, else the Connector's Patient read (its chart number); a FHIR id whose
        Patient is gone (404) names nobody."""
        found: dict[str, PatientId] = {}
        unknown: list[str] = []
        for fhir_id in fhir_ids:
            patient = by_fhir.get(fhir_id)
            if patient is None:
                entity = await self.links.entity_id(self.tenant, "patient", "fhir", fhir_id)
                patient = PatientId(entity) if entity is not None else None
            if patient is None:
                unknown.append(fhir_id)
            else:
                found[fhir_id] = by_fhir[fhir_id] = patient
        charts = await asyncio.gather(*(self._fhir_chart(f) for f in unknown))
        for fhir_id, chart in zip(unknown, charts, strict=True):
            if chart is not None:
                found[fhir_id] = by_fhir[fhir_id] = self._person(chart, fhir_id=fhir_id).patient_id
        await self._flush()
        return [found[f] for f in fhir_ids if f in found]

    async def _fhir_chart(self, fhir_id: str) -> str | None:
        """The chart number of the Connector's Patient ``fhir_id`` (None: gone, or none)."""
        try:
            r = await self._fhir.request(
                "GET", f"{self.fhir_base}/Patient/{fhir_id}", endpoint=PATIENT_READ
            )
        except UpstreamStatusError as err:
            if err.status in (404, 410):
                return None
            raise
        patient = drift.check(r.json(), fw.Patient, PATIENT_READ, self.drift)
        return fmap.chart_number_of(patient)


def _patient_named(kind: str, raw: Any, report: drift.DriftReport) -> str | None:
    """The FHIR id of the patient an exported resource of ``kind`` is about (None: a resource
    that is not the kind's, such as a vital-sign Observation in the labs' export)."""
    if kind == "lab":
        observation = drift.check(raw, fw.Observation, FILE, report)
        categories = {c.code for concept in observation.category for c in concept.coding}
        if LAB_CATEGORY not in categories:
            return None
        return reference_id(observation.subject, "Patient")
    if kind == "immunization":
        immunization = drift.check(raw, fw.Immunization, FILE, report)
        return reference_id(immunization.patient, "Patient")
    document = drift.check(raw, fw.DocumentReference, FILE, report)
    return reference_id(document.subject, "Patient")
