"""The write use cases: one function per write operation, each run safely end to end.

A write checks the caller's scope (the operation's, from :func:`domain.kinds.writes`), that
every id it names is the caller's tenant's, primes the upstream connection with what the verb
needs (the appointment's day, the patient's chart or charges, re-read), and then runs under its
optional ``Idempotency-Key`` with Stripe's semantics: it is entered in the write ledger before
it is sent, and closed there with the read-back's verdict (``confirmed``, ``diverged``,
``pending``). The record written is kept in the store, so the next read sees it.

A refusal by the upstream's rules (a :class:`~carebridge.errors.DomainError`: a taken slot, a
scrubber rejection) is an answer too: it is recorded under the key in a neutral form (the
error's class name, message, status and fields) and raised; the same key asked again raises
:class:`~carebridge.errors.RefusedReplay` with the same code, status and fields. A request that
died without an answer (the upstream unreachable) releases its key, so a retry may run it; a key
whose request was killed mid-flight is taken over a lease later, with
:data:`~carebridge.ports.writes.RESUMING` set, so the connector finds what the dead attempt made
before it sends again.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from pydantic import Field

from carebridge.domain.kinds import KINDS
from carebridge.domain.kinds import writes as kind_writes
from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import (
    AppointmentId,
    EncounterId,
    Instant,
    LocationId,
    PatientId,
    ProviderId,
    ResourceId,
    VisitReasonId,
)
from carebridge.errors import (
    BadRequest,
    DomainError,
    KeyInFlight,
    KeyReused,
    RefusedReplay,
    UpstreamError,
)
from carebridge.ports.records import AuditSink
from carebridge.ports.upstream import NewAppointment as NewAppointment
from carebridge.ports.upstream import NewCharge as NewCharge
from carebridge.ports.upstream import NewClaim as NewClaim
from carebridge.ports.upstream import NewEncounter as NewEncounter
from carebridge.ports.upstream import Upstream, WriteResult
from carebridge.ports.writes import (
    LEASE,
    RESUMING,
    Audited,
    Idempotency,
    InFlight,
    Mismatch,
    Opened,
    Outcome,
    RecordWriter,
    Replay,
    Start,
    WriteJournal,
    WriteLedger,
    request_hash,
)
from carebridge.services.reads import Reads
from carebridge.services.records import NotFound, Principal

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
"""An ``Idempotency-Key``: 1 to 255 visible ASCII characters."""

CREATED, CHANGED = 201, 200
"""The status an idempotency record keeps for a write that created a record, or changed one
(what records written by earlier versions hold too; a refusal keeps its error's ``status``)."""

Call = Callable[[Upstream], Awaitable[WriteResult[Any]]]
AppointmentCall = Callable[[Upstream, AppointmentId], Awaitable[WriteResult[Any]]]
Key = str | None
"""An ``Idempotency-Key`` as the caller sent it (None: no key)."""
Sent = Mapping[str, Any]
"""A write as the caller sent it (JSON)."""


@dataclass(frozen=True)
class WriteOutcome:
    """A write's record as read back (its JSON), whether the read-back matched the request
    (``confirmation``; ``diverged`` names the fields that did not), its ledger entry, whether it
    created a record, and whether this is the replay of an earlier answer under its key."""

    value: dict[str, Any]
    confirmation: str
    diverged: tuple[str, ...]
    ledger_id: int
    created: bool
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        """The outcome as the write's answer body."""
        return {
            "data": self.value,
            "confirmation": self.confirmation,
            "diverged": list(self.diverged),
            "ledger_id": self.ledger_id,
        }


class Rebooking(DomainModel):
    """Where and when a rescheduled visit goes (the patient stays the appointment's)."""

    resource_id: ResourceId
    location_id: LocationId
    visit_reason_id: VisitReasonId
    provider_id: ProviderId | None = None
    start: Instant
    end: Instant | None = None
    chief_complaint: str = Field(default="", repr=False)
    comments: str = Field(default="", repr=False)

    def for_patient(self, patient_id: str) -> NewAppointment:
        """The booking command of ``patient_id``'s appointment."""
        return NewAppointment(patient_id=PatientId(patient_id), **self.model_dump())


def _refs(**ids: str | None) -> list[tuple[str, str]]:
    """The (kind, id) pairs a command names, for the tenant check."""
    return [(kind, value) for kind, value in ids.items() if value]


def _booking_refs(command: NewAppointment | Rebooking) -> list[tuple[str, str]]:
    return _refs(
        resource=command.resource_id,
        location=command.location_id,
        visit_reason=command.visit_reason_id,
        provider=command.provider_id,
    )


@dataclass
class Writes:
    """The write operations, over the read side's store, upstreams and write tables."""

    reads: Reads

    def _clock(self) -> datetime:
        return self.reads.clock()

    # --- scheduling -------------------------------------------------------------------------

    async def create_appointment(
        self, principal: Principal, command: NewAppointment, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Book a visit in a free slot (:class:`SlotTaken` when it is taken).

        ``request`` is the write as the caller sent it (JSON): the key's fingerprint and the
        ledger's entry. So for every write below."""
        refs = _booking_refs(command)

        async def call(up: Upstream) -> WriteResult[Any]:
            return await up.create_appointment(command)

        return await self._run(
            principal, "create_appointment", key, request, command.patient_id, call, refs
        )

    async def reschedule_appointment(
        self,
        principal: Principal,
        appointment_id: str,
        rebooking: Rebooking,
        *,
        key: Key,
        request: Sent,
    ) -> WriteOutcome:
        """Move an appointment to another free slot."""
        patient = await self._appointment_patient(principal, appointment_id)
        command = rebooking.for_patient(patient)
        return await self._run(
            principal,
            "reschedule_appointment",
            key,
            request,
            patient,
            lambda up: up.reschedule_appointment(AppointmentId(appointment_id), command),
            _booking_refs(rebooking),
        )

    async def cancel_appointment(
        self,
        principal: Principal,
        appointment_id: str,
        *,
        reason_code: str | None,
        comments: str,
        key: Key,
        request: Sent,
    ) -> WriteOutcome:
        """Cancel an appointment, with a cancellation reason code (None: the practice's)."""
        return await self._on_appointment(
            principal,
            "cancel_appointment",
            appointment_id,
            key,
            request,
            lambda up, a: up.cancel_appointment(a, reason_code=reason_code, comments=comments),
        )

    async def check_in(
        self, principal: Principal, appointment_id: str, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Mark the patient arrived."""
        return await self._on_appointment(
            principal, "check_in", appointment_id, key, request, lambda up, a: up.check_in(a)
        )

    async def check_out(
        self, principal: Principal, appointment_id: str, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Mark the visit done (the upstream opens its encounter)."""
        return await self._on_appointment(
            principal, "check_out", appointment_id, key, request, lambda up, a: up.check_out(a)
        )

    # --- charts -----------------------------------------------------------------------------

    async def create_encounter(
        self, principal: Principal, command: NewEncounter, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Push an encounter (note, diagnoses, procedures) to the EHR; it starts open."""
        refs = _refs(provider=command.provider_id, location=command.location_id)

        async def call(up: Upstream) -> WriteResult[Any]:
            return await up.push_encounter(command)

        return await self._run(
            principal, "create_encounter", key, request, command.patient_id, call, refs
        )

    async def sign_encounter(
        self, principal: Principal, encounter_id: str, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Sign an open encounter (it locks; its charges post)."""
        principal.require(_scope("sign_encounter"))
        record = await self._stored(principal, "encounter", encounter_id)
        patient = str(record["patient_id"])
        await self._prime_chart(principal, patient)

        async def call(up: Upstream) -> WriteResult[Any]:
            return await up.sign_encounter(EncounterId(encounter_id))

        return await self._run(principal, "sign_encounter", key, request, patient, call)

    async def add_addendum(
        self, principal: Principal, encounter_id: str, text: str, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Add an addendum to a signed encounter (:class:`InvalidTransition` while it is open);
        the answer is the encounter as read back, the addendum among its ``addenda``."""
        principal.require(_scope("add_addendum"))
        record = await self._stored(principal, "encounter", encounter_id)
        patient = str(record["patient_id"])
        await self._prime_chart(principal, patient)

        async def call(up: Upstream) -> WriteResult[Any]:
            return await up.add_addendum(EncounterId(encounter_id), text)

        return await self._run(principal, "add_addendum", key, request, patient, call)

    # --- revenue cycle ----------------------------------------------------------------------

    async def create_charge(
        self, principal: Principal, command: NewCharge, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Post a CPT/HCPCS charge to the patient's ledger."""
        refs = _refs(
            provider=command.provider_id,
            location=command.location_id,
            encounter=command.encounter_id,
        )

        async def call(up: Upstream) -> WriteResult[Any]:
            return await up.create_charge(command)

        return await self._run(
            principal, "create_charge", key, request, command.patient_id, call, refs
        )

    async def submit_claim(
        self, principal: Principal, command: NewClaim, *, key: Key, request: Sent
    ) -> WriteOutcome:
        """Scrub and submit a claim from unbilled charges (:class:`ClaimRejected` names every
        field the scrubber refused)."""
        principal.require(_scope("submit_claim"))
        await self._prime_charges(principal, command.patient_id)
        refs = [("charge", c) for c in command.charge_ids]

        async def call(up: Upstream) -> WriteResult[Any]:
            return await up.submit_claim(command)

        return await self._run(
            principal, "submit_claim", key, request, command.patient_id, call, refs
        )

    # --- what a verb needs the connection to know -------------------------------------------

    async def _on_appointment(
        self,
        principal: Principal,
        operation: str,
        appointment_id: str,
        key: Key,
        request: Sent,
        verb: AppointmentCall,
    ) -> WriteOutcome:
        """Run a verb on a stored appointment, once the connection knows it."""
        patient = await self._appointment_patient(principal, appointment_id)

        async def call(up: Upstream) -> WriteResult[Any]:
            return await verb(up, AppointmentId(appointment_id))

        return await self._run(principal, operation, key, request, patient, call)

    async def _stored(self, principal: Principal, kind: str, entity_id: str) -> dict[str, Any]:
        """A stored record of the caller's tenant (:class:`NotFound` when there is none)."""
        record = await self.reads.records.get(principal.tenant_id, kind, entity_id)
        if record is None:
            raise NotFound(f"no {kind} {entity_id}")
        return record

    async def _appointment_patient(self, principal: Principal, appointment_id: str) -> str:
        """The appointment's patient, once the connection knows the appointment."""
        principal.require(KINDS["appointment"].write_scope)
        record = await self._stored(principal, "appointment", appointment_id)
        await self._prime_appointment(principal, record)
        return str(record["patient_id"])

    async def _prime_appointment(self, principal: Principal, record: dict[str, Any]) -> None:
        """Re-read the appointment's day, so the upstream connection knows its upstream id
        (and the store has its current state) before a verb is sent."""
        if self.reads.backend is None:
            return
        start = datetime.fromisoformat(str(record["start"]))
        day = start.astimezone(UTC).date()
        upstream = await self.reads.upstream(principal.tenant_id)
        found = [
            a async for a in upstream.appointments(day - timedelta(days=1), day + timedelta(days=1))
        ]
        await self.reads.writer.put(principal.tenant_id, "appointment", found, self._clock())

    async def _prime_chart(self, principal: Principal, patient_id: str) -> None:
        """Re-read a patient's encounters (before signing one of them)."""
        if self.reads.backend is None:
            return
        await self.reads.refresh(
            principal.tenant_id,
            "encounter",
            f"patient:{patient_id}",
            lambda u, _s: u.encounters(patient_id=PatientId(patient_id)),
            timedelta(0),
            incremental=False,
        )

    async def _prime_charges(self, principal: Principal, patient_id: str) -> None:
        """Re-read a patient's ledger charges (before a claim names them)."""
        if self.reads.backend is None:
            return
        await self.reads.patient_known(principal, patient_id)
        upstream = await self.reads.upstream(principal.tenant_id)
        found = [c async for c in upstream.charges(patient_id=PatientId(patient_id))]
        await self.reads.writer.put(principal.tenant_id, "charge", found, self._clock())

    # --- the idempotent run -----------------------------------------------------------------

    async def _run(
        self,
        principal: Principal,
        operation: str,
        key: Key,
        request: Sent,
        patient: str,
        call: Call,
        refs: Sequence[tuple[str, str]] = (),
    ) -> WriteOutcome:
        """Run one write under its idempotency key, ledger entry, read-back and audit.

        ``patient`` and ``refs`` (kind, id) are every id the request names: each must be the
        caller's tenant's, or the write is refused with :class:`NotFound` before anything is
        recorded. The bookkeeping takes two transactions (:class:`WriteJournal`): the key's
        claim, the ledger entry and the audit entry before the upstream call; the records, the
        ledger's verdict and the stored answer after it.
        """
        patients = [patient]
        write = kind_writes()[operation]
        principal.require(write.scope)
        if key is not None and not KEY_PATTERN.match(key):
            raise BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                field="Idempotency-Key",
            )
        reads = self.reads
        tenant, who = principal.tenant_id, principal.id
        present = await reads.present(tenant, [("patient", p) for p in patients] + list(refs))
        for patient_id, known in zip(patients, present, strict=False):
            if not known:
                raise NotFound(f"no patient {patient_id}")
        missing = [
            ref for ref, known in zip(refs, present[len(patients) :], strict=True) if not known
        ]
        await reads.known(principal, missing, patient_id=patients[0] if patients else None)
        sent = dict(request)
        journal = self._journal()
        opened_at = self._clock()
        opened = await journal.open(
            tenant,
            key=key,
            fingerprint=request_hash("POST", f"/{operation}", sent),
            operation=operation,
            request=sent,
            audited=Audited(who, f"POST /{operation}", patients),
            now=opened_at,
        )
        outcome = opened.outcome
        if isinstance(outcome, Replay):
            return _replayed(outcome)
        if isinstance(outcome, Mismatch):
            raise KeyReused("this Idempotency-Key was used with another request")
        if isinstance(outcome, InFlight):
            raise KeyInFlight("a request with this Idempotency-Key is still running")
        assert opened.entry is not None  # noqa: S101 - a write that runs has its entry
        entry, resumed = opened.entry, isinstance(outcome, Start) and outcome.resumed
        failure: BaseException | None = None
        result: WriteResult[Any] | DomainError | None = None
        try:
            async with anyio.create_task_group() as group:
                if key is not None:
                    group.start_soon(self._hold, tenant, who, key)
                token = RESUMING.set(resumed)
                try:
                    result = await self._send(tenant, call)
                except BaseException as err:  # noqa: BLE001 - raised below, outside the group
                    failure = err
                finally:
                    RESUMING.reset(token)
                    group.cancel_scope.cancel()
            if failure is not None:
                raise failure
        except BaseException as err:
            # the upstream's failure closes the entry; anything else leaves it accepted
            state = "failed" if isinstance(err, UpstreamError | NotFound) else None
            with anyio.CancelScope(shield=True):
                await journal.fail(
                    tenant, key=key, principal=who, entry=entry, state=state, now=self._clock()
                )
            raise
        assert result is not None  # noqa: S101 - set unless the send raised
        if isinstance(result, DomainError):
            status, stored = _record(result)
            await journal.close(
                tenant,
                key=key,
                principal=who,
                claimed_at=opened_at,
                entry=entry,
                state="rejected",
                entity_id=None,
                diverged=(),
                kind=write.kind,
                records=(),
                status_code=status,
                response=stored,
                now=self._clock(),
            )
            raise result
        value = result.value
        answer = WriteOutcome(
            value=value.model_dump(mode="json"),
            confirmation=result.confirmation,
            diverged=tuple(result.diverged),
            ledger_id=entry,
            created=write.creates,
        )
        status, stored = _record(answer)
        await journal.close(
            tenant,
            key=key,
            principal=who,
            claimed_at=opened_at,
            entry=entry,
            state=result.confirmation,
            entity_id=str(value.__dict__["id"]),
            diverged=result.diverged,
            kind=write.kind,
            records=[value],
            status_code=status,
            response=stored,
            now=self._clock(),
        )
        return answer

    def _journal(self) -> WriteJournal:
        """The backend's journal (two transactions), or one over its separate ports."""
        backend = self.reads._backend()
        if backend.journal is not None:
            return backend.journal
        return SeparateSteps(backend.idempotency, backend.ledger, self.reads.audit, backend.writer)

    async def _hold(self, tenant: str, who: str, key: str) -> None:
        """Renew a running write's claim on its key until the write ends (cancelled then)."""
        while True:
            await anyio.sleep(LEASE.total_seconds() / 3)
            await self.reads.idempotency.renew(tenant, who, key, self._clock())

    async def _send(self, tenant: str, call: Call) -> WriteResult[Any] | DomainError:
        """Send and read back; a refusal by the rules is returned, not raised, so it is
        recorded under the key first."""
        try:
            upstream = await self.reads.upstream(tenant)
            return await call(upstream)
        except DomainError as refused:
            return refused


@dataclass
class SeparateSteps:
    """``WriteJournal`` over separate ports, one step at a time (a backend without a journal of
    its own: in-memory ports in tests)."""

    idempotency: Idempotency
    ledger: WriteLedger
    audit: AuditSink
    writer: RecordWriter

    async def open(
        self,
        tenant_id: str,
        *,
        key: str | None,
        fingerprint: str,
        operation: str,
        request: dict[str, Any],
        audited: Audited,
        now: datetime,
    ) -> Opened:
        outcome: Outcome = Start()
        if key is not None:
            outcome = await self.idempotency.begin(
                tenant_id, audited.principal, key, fingerprint, now
            )
            if not isinstance(outcome, Start):
                return Opened(outcome)
        entry = await self.ledger.open(tenant_id, operation, request, now)
        await self.audit.record(
            tenant_id, audited.principal, audited.route, list(audited.patient_ids), now
        )
        return Opened(outcome, entry)

    async def close(
        self,
        tenant_id: str,
        *,
        key: str | None,
        principal: str,
        claimed_at: datetime,
        entry: int,
        state: str,
        entity_id: str | None,
        diverged: Sequence[str],
        kind: str,
        records: Sequence[DomainModel],
        status_code: int,
        response: Any,
        now: datetime,
    ) -> None:
        del claimed_at  # the port's record dates itself
        if records:
            await self.writer.put(tenant_id, kind, records, now)
        await self.ledger.close(entry, state=state, entity_id=entity_id, diverged=diverged, now=now)
        if key is not None:
            await self.idempotency.complete(tenant_id, principal, key, status_code, response)

    async def fail(
        self,
        tenant_id: str,
        *,
        key: str | None,
        principal: str,
        entry: int | None,
        state: str | None,
        now: datetime,
    ) -> None:
        if entry is not None and state is not None:
            await self.ledger.close(entry, state=state, entity_id=None, diverged=(), now=now)
        if key is not None:
            await self.idempotency.abandon(tenant_id, principal, key)


def _scope(operation: str) -> str:
    return kind_writes()[operation].scope


def _record(answer: WriteOutcome | DomainError) -> tuple[int, dict[str, Any]]:
    """What the idempotency record keeps of an answer: an outcome's body, or a refusal's code,
    message and fields (its status is the error's ``status``)."""
    if isinstance(answer, WriteOutcome):
        return (CREATED if answer.created else CHANGED), answer.as_json()
    fields = [str(f) for f in getattr(answer, "fields", None) or ()]
    refused = {"code": _code(answer), "message": str(answer), "fields": fields}
    return _status(answer), {"refused": refused}


def _code(err: DomainError) -> str:
    return err.code if isinstance(err, RefusedReplay) else type(err).__name__


def _status(err: DomainError) -> int:
    return err.answered if isinstance(err, RefusedReplay) else err.status


def _replayed(stored: Replay) -> WriteOutcome:
    """The answer an idempotency record keeps, again: an outcome, or (raised) its refusal."""
    body: dict[str, Any] = dict(stored.response)
    if stored.status_code < 400:
        return WriteOutcome(
            value=body["data"],
            confirmation=body["confirmation"],
            diverged=tuple(body["diverged"]),
            ledger_id=body["ledger_id"],
            created=stored.status_code == CREATED,
            replayed=True,
        )
    if "refused" in body:
        refused = body["refused"]
        raise RefusedReplay(
            refused["message"],
            code=refused["code"],
            answered=stored.status_code,
            fields=tuple(refused["fields"]),
        )
    # a record written before refusals were kept neutral: the problem body the API answered
    raise RefusedReplay(
        str(body.get("detail", "")),
        code=str(body.get("code", "")),
        answered=stored.status_code,
        fields=tuple(str(e["field"]) for e in body.get("errors") or ()),
    )
