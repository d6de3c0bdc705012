"""The synchronous client, :class:`Carebridge`, and its namespaces (one per resource).

``_async.py`` is generated from ``_sync.py`` (the same names and arguments, with ``async`` and
``await``): edit ``_sync.py``, then run ``python -m tests.client.test_async_mirror``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from carebridge.client._core import Call, ListCall, ParamValue, RetryPolicy, call
from carebridge.client._engine import DEFAULT_TIMEOUT, Pager, SyncEngine
from carebridge.client._operations import Day, Instant, Records, body, booking, write
from carebridge.contract import (
    AuditEntry,
    Balance,
    Delivery,
    Event,
    Health,
    Replay,
    SecretRotated,
    Slot,
    SyncReport,
    UpstreamHealth,
    Webhook,
    WebhookCreated,
    WriteAnswer,
)
from carebridge.domain import billing as domain_billing
from carebridge.domain import scheduling as domain_scheduling
from carebridge.domain.billing import Charge, Claim, Payment, Remittance, Statement
from carebridge.domain.clinical import Document, Encounter, Immunization, LabResult
from carebridge.domain.eligibility import EligibilityCheck
from carebridge.domain.patients import Patient
from carebridge.domain.scheduling import Appointment, Location, Provider, Resource, VisitReason

T = TypeVar("T")
M = TypeVar("M")
R = TypeVar("R")


class _Base:
    def __init__(self, engine: SyncEngine) -> None:
        self._engine = engine

    def _run(self, c: Call[T]) -> T:
        return self._engine.run(c)

    def _pager(self, listing: ListCall[M]) -> Pager[M]:
        return Pager(self._engine, listing)


class RecordsNamespace(_Base, Generic[R]):
    """A kind's records: ``list(...)`` pages through them, ``get(id)`` reads one."""

    def __init__(self, engine: SyncEngine, records: Records[R]) -> None:
        super().__init__(engine)
        self._records = records

    def list(
        self,
        *,
        limit: int | None = None,
        order: str | None = None,
        max_age: int | None = None,
        **filters: ParamValue,
    ) -> Pager[R]:
        """The records matching ``filters`` (each a query parameter of the list, named as the
        field it filters: ``patient_id``, ``status``, ``updated_since``...), fetched a page
        (``limit`` records) at a time as they are iterated.

        Args:
            limit: records per page (1 to 500; the API's default is 100).
            order: the list's order (``start`` or ``id`` for appointments).
            max_age: the oldest data acceptable, in seconds (0: read through now).
        """
        listing = self._records.listing(filters, limit=limit, order=order, max_age=max_age)
        return Pager(self._engine, listing)

    def get(self, record_id: str, *, max_age: int | None = None) -> R:
        """One record by its id (:class:`~carebridge.client.NotFound` when absent)."""
        return self._engine.run(self._records.one(record_id, max_age=max_age))


class PatientsNamespace(RecordsNamespace[Patient]):
    """Patients, and their real-time eligibility and balances."""

    def eligibility(
        self,
        patient_id: str,
        *,
        service_date: Day | None = None,
        service_type: Sequence[str] | None = None,
    ) -> EligibilityCheck:
        """A real-time eligibility inquiry (270/271) for the patient's coverage."""
        params: dict[str, ParamValue] = {"patient_id": patient_id, "service_date": service_date}
        params["service_type"] = list(service_type) if service_type else None
        return self._run(call("GET", "/eligibility", EligibilityCheck, params=params))

    def balances(self, patient_id: str) -> Pager[domain_billing.Balance]:
        """The patient's balances (patient and insurance responsibility), in real time."""
        return self._pager(ListCall("/balances", Balance, {"patient_id": patient_id}))


class AppointmentsNamespace(RecordsNamespace[Appointment]):
    """Appointments (listed by start by default) and the scheduling writes."""

    def availability(
        self,
        *,
        visit_reason_id: str,
        start: Day,
        end: Day,
        location_id: Sequence[str] | None = None,
        resource_id: Sequence[str] | None = None,
    ) -> Pager[domain_scheduling.Slot]:
        """Free slots for a visit reason between two days (at most 31), in real time."""
        params: dict[str, ParamValue] = {
            "visit_reason_id": visit_reason_id,
            "start": start,
            "end": end,
            "location_id": list(location_id) if location_id else None,
            "resource_id": list(resource_id) if resource_id else None,
        }
        return self._pager(ListCall("/availability", Slot, params))

    def create(
        self,
        *,
        patient_id: str,
        resource_id: str,
        location_id: str,
        visit_reason_id: str,
        start: Instant,
        provider_id: str | None = None,
        end: Instant | None = None,
        chief_complaint: str | None = None,
        comments: str | None = None,
        idempotency_key: str | None = None,
    ) -> WriteAnswer[Appointment]:
        """Book a free slot (:class:`~carebridge.client.Conflict` when it is taken)."""
        fields = booking(
            resource_id=resource_id,
            location_id=location_id,
            visit_reason_id=visit_reason_id,
            start=start,
            provider_id=provider_id,
            end=end,
            chief_complaint=chief_complaint,
            comments=comments,
        )
        fields["patient_id"] = patient_id
        return self._run(write("create_appointment", "appointment", fields, idempotency_key))

    def reschedule(
        self,
        appointment_id: str,
        *,
        resource_id: str,
        location_id: str,
        visit_reason_id: str,
        start: Instant,
        provider_id: str | None = None,
        end: Instant | None = None,
        chief_complaint: str | None = None,
        comments: str | None = None,
        idempotency_key: str | None = None,
    ) -> WriteAnswer[Appointment]:
        """Move an appointment to another free slot."""
        fields = booking(
            resource_id=resource_id,
            location_id=location_id,
            visit_reason_id=visit_reason_id,
            start=start,
            provider_id=provider_id,
            end=end,
            chief_complaint=chief_complaint,
            comments=comments,
        )
        fields["appointment_id"] = appointment_id
        return self._run(write("reschedule_appointment", "appointment", fields, idempotency_key))

    def cancel(
        self,
        appointment_id: str,
        *,
        reason_code: str | None = None,
        comments: str | None = None,
        idempotency_key: str | None = None,
    ) -> WriteAnswer[Appointment]:
        """Cancel an appointment (with the practice's default reason unless one is given)."""
        fields = {"appointment_id": appointment_id, "reason_code": reason_code}
        fields["comments"] = comments
        return self._run(write("cancel_appointment", "appointment", fields, idempotency_key))

    def check_in(
        self, appointment_id: str, *, idempotency_key: str | None = None
    ) -> WriteAnswer[Appointment]:
        """Mark the patient arrived."""
        fields = {"appointment_id": appointment_id}
        return self._run(write("check_in", "appointment", fields, idempotency_key))

    def check_out(
        self, appointment_id: str, *, idempotency_key: str | None = None
    ) -> WriteAnswer[Appointment]:
        """Mark the visit done (the upstream opens its encounter)."""
        fields = {"appointment_id": appointment_id}
        return self._run(write("check_out", "appointment", fields, idempotency_key))


class EncountersNamespace(RecordsNamespace[Encounter]):
    """Encounters, and creating and signing them."""

    def create(
        self,
        *,
        patient_id: str,
        provider_id: str | None = None,
        location_id: str | None = None,
        start: Instant | None = None,
        chief_complaint: str | None = None,
        note: dict[str, str] | None = None,
        diagnoses: Sequence[str] | None = None,
        procedures: Sequence[dict[str, Any]] | None = None,
        idempotency_key: str | None = None,
    ) -> WriteAnswer[Encounter]:
        """Open an encounter (``note`` by SOAP section; ``procedures`` as ``{code, units}``)."""
        fields = {
            "patient_id": patient_id,
            "provider_id": provider_id,
            "location_id": location_id,
            "start": start,
            "chief_complaint": chief_complaint,
            "note": note,
            "diagnoses": list(diagnoses) if diagnoses is not None else None,
            "procedures": list(procedures) if procedures is not None else None,
        }
        return self._run(write("create_encounter", "encounter", fields, idempotency_key))

    def sign(
        self, encounter_id: str, *, idempotency_key: str | None = None
    ) -> WriteAnswer[Encounter]:
        """Sign an encounter (it is locked afterwards)."""
        fields = {"encounter_id": encounter_id}
        return self._run(write("sign_encounter", "encounter", fields, idempotency_key))

    def add_addendum(
        self, encounter_id: str, *, text: str, idempotency_key: str | None = None
    ) -> WriteAnswer[Encounter]:
        """Add an addendum to a signed encounter; the answer is the encounter read back, the
        addendum last in its ``addenda``."""
        return self._run(
            call(
                "POST",
                f"/encounters/{encounter_id}/addenda",
                WriteAnswer[Encounter],
                body=body(text=text),
                idempotency_key=idempotency_key,
            )
        )


class ChargesNamespace(RecordsNamespace[Charge]):
    """Charges, and entering one."""

    def create(
        self,
        *,
        patient_id: str,
        procedure_code: str,
        diagnosis_codes: Sequence[str],
        service_date: Day,
        units: int | None = None,
        provider_id: str | None = None,
        location_id: str | None = None,
        encounter_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> WriteAnswer[Charge]:
        """Enter a charge (a procedure on a day of service, with its diagnoses)."""
        fields = {
            "patient_id": patient_id,
            "procedure_code": procedure_code,
            "diagnosis_codes": list(diagnosis_codes),
            "service_date": service_date,
            "units": units,
            "provider_id": provider_id,
            "location_id": location_id,
            "encounter_id": encounter_id,
        }
        return self._run(write("create_charge", "charge", fields, idempotency_key))


class ClaimsNamespace(RecordsNamespace[Claim]):
    """Claims, and submitting one."""

    def submit(
        self,
        *,
        patient_id: str,
        charge_ids: Sequence[str],
        attachments: Sequence[dict[str, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> WriteAnswer[Claim]:
        """Bill charges on a claim (:class:`~carebridge.client.Unprocessable` with each field
        the scrubber refuses)."""
        fields = {
            "patient_id": patient_id,
            "charge_ids": list(charge_ids),
            "attachments": list(attachments) if attachments is not None else None,
        }
        return self._run(write("submit_claim", "claim", fields, idempotency_key))


class EventsNamespace(_Base):
    """The tenant's ordered change log, paged by ``seq`` (``after``)."""

    def list(
        self,
        *,
        after: int | str | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Pager[Event]:
        """The events after ``after`` (the last seq you processed; 0 or None: from the start),
        of ``types`` (``kind.*`` allowed; default: all)."""
        params: dict[str, ParamValue] = {
            "after": after,
            "types": list(types) if types else None,
            "limit": limit,
        }
        return self._pager(ListCall("/events", Event, params, "after"))

    def get(self, event_id: str) -> Event:
        """One event by its id."""
        return self._run(call("GET", f"/events/{event_id}", Event))


class AuditNamespace(_Base):
    """The tenant's audit log (scope ``audit.read``), paged by ``seq`` (``after``)."""

    def list(
        self, *, after: int | str | None = None, limit: int | None = None
    ) -> Pager[AuditEntry]:
        """The audit entries after ``after``."""
        params: dict[str, ParamValue] = {"after": after, "limit": limit}
        return self._pager(ListCall("/audit_events", AuditEntry, params, "after"))


class WebhooksNamespace(_Base):
    """Webhook subscriptions, their deliveries, and replays."""

    def create(
        self,
        *,
        url: str,
        event_types: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookCreated:
        """Subscribe ``url`` to ``event_types`` (none: every type the key may read). The
        answer's ``secret`` is shown this once: keep it to verify deliveries."""
        payload = body(url=url, event_types=list(event_types or ()))
        c: Call[WebhookCreated] = call(
            "POST", "/webhooks", WebhookCreated, body=payload, idempotency_key=idempotency_key
        )
        return self._run(c)

    def list(self, *, limit: int | None = None) -> Pager[Webhook]:
        """The tenant's subscriptions (never their secrets)."""
        return self._pager(ListCall("/webhooks", Webhook, {"limit": limit}))

    def get(self, webhook_id: str) -> Webhook:
        """One subscription."""
        return self._run(call("GET", f"/webhooks/{webhook_id}", Webhook))

    def delete(self, webhook_id: str) -> None:
        """Delete a subscription, its deliveries and its secrets."""
        self._run(call("DELETE", f"/webhooks/{webhook_id}", None))

    def rotate_secret(self, webhook_id: str, *, overlap_hours: int | None = None) -> SecretRotated:
        """A new signing secret (shown once); the old one stays valid ``overlap_hours``."""
        params: dict[str, ParamValue] = {"overlap_hours": overlap_hours}
        path = f"/webhooks/{webhook_id}/rotate_secret"
        return self._run(call("POST", path, SecretRotated, params=params))

    def deliveries(self, webhook_id: str, *, limit: int | None = None) -> Pager[Delivery]:
        """The subscription's delivery log, newest first."""
        path = f"/webhooks/{webhook_id}/deliveries"
        return self._pager(ListCall(path, Delivery, {"limit": limit}))

    def replay(self, webhook_id: str, *, from_seq: int) -> Replay:
        """Queue the events from ``from_seq`` again for the subscription."""
        params: dict[str, ParamValue] = {"from_seq": from_seq}
        path = f"/webhooks/{webhook_id}/replay"
        return self._run(call("POST", path, Replay, params=params))


class OperationsNamespace(_Base):
    """Health, the upstream's state, and syncing now."""

    def health(self) -> Health:
        """Liveness (no credential needed)."""
        return self._run(call("GET", "/health", Health))

    def upstream(self) -> UpstreamHealth:
        """The caller's tenant's upstream: throttle budget, drift, sessions."""
        return self._run(call("GET", "/health/upstream", UpstreamHealth))

    def sync(
        self, *, streams: Sequence[str] | None = None, idempotency_key: str | None = None
    ) -> SyncReport:
        """Sync the caller's tenant now (every stream, or ``streams``), and its report."""
        payload = body(streams=list(streams) if streams else None)
        c: Call[SyncReport] = call(
            "POST", "/sync", SyncReport, body=payload, idempotency_key=idempotency_key
        )
        return self._run(c)


class Carebridge:
    """The carebridge API, synchronously.

    Args:
        base_url: the API's address (default ``CAREBRIDGE_BASE_URL``, else
            ``http://127.0.0.1:8700``); ``/v1`` may be part of it.
        api_key: a ``cbk_...`` key or ``cbs_...`` session token (default
            ``CAREBRIDGE_API_KEY``).
        timeout: seconds to wait for each answer.
        max_retries: retries of a 429, a 503 or a request that got no answer (waiting as
            ``Retry-After`` says, else backing off); 0 turns retries off.
        retry: the whole retry policy (overrides ``max_retries``).
        sleep: how to wait between attempts (tests pass one that does not sleep).
        transport: an ``httpx`` transport (``httpx.MockTransport``, an app's transport...).
        http_client: an ``httpx.Client`` of your own (its base URL and settings are used).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._engine = SyncEngine(
            base_url=base_url or os.environ.get("CAREBRIDGE_BASE_URL"),
            api_key=api_key or os.environ.get("CAREBRIDGE_API_KEY"),
            timeout=timeout,
            retry=retry or RetryPolicy(max_retries=max_retries),
            sleep=sleep,
            transport=transport,
            http_client=http_client,
        )
        e = self._engine
        self.patients = PatientsNamespace(e, Records[Patient]("patient", "/patients"))
        self.providers = RecordsNamespace(e, Records[Provider]("provider", "/providers"))
        self.locations = RecordsNamespace(e, Records[Location]("location", "/locations"))
        self.resources = RecordsNamespace(e, Records[Resource]("resource", "/resources"))
        self.visit_reasons = RecordsNamespace(
            e, Records[VisitReason]("visit_reason", "/visit_reasons")
        )
        self.appointments = AppointmentsNamespace(
            e, Records[Appointment]("appointment", "/appointments")
        )
        self.encounters = EncountersNamespace(e, Records[Encounter]("encounter", "/encounters"))
        self.labs = RecordsNamespace(e, Records[LabResult]("lab", "/labs"))
        self.immunizations = RecordsNamespace(
            e, Records[Immunization]("immunization", "/immunizations")
        )
        self.documents = RecordsNamespace(e, Records[Document]("document", "/documents"))
        self.charges = ChargesNamespace(e, Records[Charge]("charge", "/charges"))
        self.claims = ClaimsNamespace(e, Records[Claim]("claim", "/claims"))
        self.payments = RecordsNamespace(e, Records[Payment]("payment", "/payments"))
        self.remittances = RecordsNamespace(e, Records[Remittance]("remittance", "/remittances"))
        self.statements = RecordsNamespace(e, Records[Statement]("statement", "/statements"))
        self.events = EventsNamespace(e)
        self.audit_events = AuditNamespace(e)
        self.webhooks = WebhooksNamespace(e)
        self.operations = OperationsNamespace(e)

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client``."""
        return self._engine.http

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you gave)."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
