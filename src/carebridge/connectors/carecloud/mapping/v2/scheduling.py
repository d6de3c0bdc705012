"""The v2 practice (providers, locations, resources, visit reasons), slots and appointments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.v2._base import (
    _build,
    _dropped,
    _email,
    _location_id,
    _npi,
    _phone_number,
    _provider_id,
    _resource_id,
    _Run,
    _taxonomy,
    _text,
    _track,
    _valid,
    _visit_reason_id,
    _word,
    patient_id,
)
from carebridge.connectors.carecloud.mapping.v2.codes import (
    appointment_status,
    confirmation_method,
    confirmation_outcome,
)
from carebridge.connectors.carecloud.mapping.v2.contacts import _address, _phones
from carebridge.connectors.carecloud.wire.v2 import (
    AppointmentDetailPayload,
    AppointmentPayload,
    AvailabilityGroupPayload,
    CancellationReasonPayload,
    ConfirmationPayload,
    LocationPayload,
    ProviderPayload,
    ResourceDetailPayload,
    ResourcePayload,
    SlotPayload,
    VisitReasonPayload,
)
from carebridge.domain import (
    Appointment,
    AppointmentCancellation,
    AppointmentConfirmation,
    AppointmentId,
    AppointmentStatus,
    EncounterId,
    Location,
    PersonName,
    Phone,
    Provider,
    Resource,
    Slot,
    UpstreamStatus,
    VisitReason,
)

# --- practice ---------------------------------------------------------------------------------------


def map_provider(wire: ProviderPayload, ctx: Context) -> Mapped[Provider]:
    """A billing provider; its credentials come from ``name`` (``"First Last, MD"``).

    Raises:
        UnexpectedPayload: the NPI is not valid, or the name is incomplete.
    """
    run = _Run()
    w = _track(wire, run)
    full = _text(w.name)
    credentials = full.rsplit(",", 1)[1].strip() if "," in full else ""
    specialty = w.specialty
    taxonomy = None if specialty is None else _valid(run, specialty, "taxonomy", _taxonomy)
    specialty_name = None if specialty is None else _text(specialty.name) or None
    if specialty_name and taxonomy is None:
        run.reject(specialty, "name")
        specialty_name = None
    phone = None
    number = _valid(run, w, "phone_number", _phone_number)
    if number is not None:
        phone = Phone(number=number, kind="work", is_primary=True)
    provider = _build(
        Provider,
        "provider",
        str(wire.id),
        ctx,
        id=_provider_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        npi=w.npi,
        name=PersonName(first=w.first_name, last=w.last_name)
        if _text(wire.first_name) and _text(wire.last_name)
        else None,
        credentials=credentials,
        email=_valid(run, w, "email", _email),
        phone=phone,
        taxonomy=taxonomy,
        specialty_name=specialty_name,
    )
    return Mapped(provider, _dropped(run, wire))


def map_location(wire: LocationPayload, ctx: Context) -> Mapped[Location]:
    """A practice location (the v2 list names no time zone; ``time_zone`` stays None).

    Raises:
        UnexpectedPayload: no valid place of service code.
    """
    run = _Run()
    w = _track(wire, run)
    location = _build(
        Location,
        "location",
        str(wire.id),
        ctx,
        id=_location_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        mnemonic=_text(w.mnemonic),
        npi=_valid(run, w, "npi", _npi),
        place_of_service=_text(w.place_of_service_code),
        address=None if w.address is None else _address(run, w.address, "work"),
        phones=_phones(run, w.phones),
        visible_in_scheduler=w.is_visible_appointment_scheduler is not False,
        is_default=bool(w.is_default),
    )
    return Mapped(location, _dropped(run, wire))


def map_resource(
    wire: ResourcePayload | ResourceDetailPayload,
    ctx: Context,
    *,
    visit_reasons: Sequence[VisitReasonPayload] = (),
) -> Mapped[Resource]:
    """A schedulable resource; ``visit_reasons`` from
    ``GET /v2/appointment_resources/{id}/visit_reasons`` fill ``visit_reason_ids``."""
    run = _Run()
    vrun = _Run()
    w = _track(wire, run)
    default_provider = None
    if isinstance(wire, ResourceDetailPayload):
        ref = cast(ResourceDetailPayload, w).default_provider
        default_provider = None if ref is None else _provider_id(ctx, ref.id)
    reasons = [_track(v, vrun) for v in visit_reasons]
    ids = [_visit_reason_id(ctx, v.id) for v in reasons]
    resource = _build(
        Resource,
        "resource",
        str(wire.id),
        ctx,
        id=_resource_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        code=_text(w.code),
        description=_text(w.description),
        default_provider_id=default_provider,
        bookable_by_request=w.is_for_requests is not False,
        confirmation_mode=_text(w.appointment_confirmation),
        sort_code=w.sort_code,
        visit_reason_ids=tuple(dict.fromkeys(i for i in ids if i is not None)),
        active=_text(w.status).upper() in ("", "A"),
        created_at=w.created_at,
        updated_at=w.updated_at,
    )
    return Mapped(resource, _dropped(run, wire))


def map_visit_reason(
    wire: VisitReasonPayload,
    ctx: Context,
    *,
    duration_minutes: int,
    bookable_by_request: bool = True,
) -> Mapped[VisitReason]:
    """A visit reason. The v2 list sends only ``id``, ``name`` and ``description``: the caller
    supplies the default duration (e.g. ``usual_duration`` of an availability search without
    ``duration``) and whether it is listed with ``request_types_only=true``.

    Raises:
        UnexpectedPayload: the duration is out of range.
    """
    run = _Run()
    w = _track(wire, run)
    reason = _build(
        VisitReason,
        "visit reason",
        str(wire.id),
        ctx,
        id=_visit_reason_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        description=_text(w.description),
        duration_minutes=duration_minutes,
        bookable_by_request=bookable_by_request,
    )
    return Mapped(reason, _dropped(run, wire))


def usual_duration(groups: Iterable[AvailabilityGroupPayload]) -> int | None:
    """The most common slot length, in minutes, of an availability search: a visit reason's
    default duration when the search was made without ``duration``."""
    lengths: dict[int, int] = {}
    for group in groups:
        for slot in group.slots:
            minutes = int((slot.end_time - slot.start_time).total_seconds() // 60)
            lengths[minutes] = lengths.get(minutes, 0) + 1
    return max(lengths, key=lambda m: (lengths[m], -m)) if lengths else None


def _slot(
    ctx: Context,
    g: AvailabilityGroupPayload,
    s: SlotPayload,
    default_providers: Mapping[int, int],
) -> Slot:
    resource = g.resource.id
    start = s.start_time
    upstream_id = f"{resource}@{start.isoformat()}"
    return _build(
        Slot,
        "slot",
        upstream_id,
        ctx,
        sources=(ctx.source(upstream_id),),
        start=start,
        end=s.end_time,
        location_id=_location_id(ctx, g.location.id),
        resource_id=_resource_id(ctx, resource),
        visit_reason_id=_visit_reason_id(ctx, g.visit_reason.id),
        provider_id=_provider_id(ctx, default_providers.get(resource or 0)),
    )


def map_slot(
    slot: SlotPayload,
    group: AvailabilityGroupPayload,
    ctx: Context,
    *,
    default_providers: Mapping[int, int] | None = None,
) -> Mapped[Slot]:
    """One free slot of an availability group. ``default_providers`` (resource id to provider
    id, from ``GET /v2/appointment_resources/{id}``) fills ``provider_id``.

    Raises:
        UnexpectedPayload: the slot ends before it starts, or names no location or resource.
    """
    run = _Run()
    grun = _Run()
    mapped = _slot(ctx, _track(group, grun), _track(slot, run), default_providers or {})
    return Mapped(mapped, _dropped(run, slot))


def map_slots(
    group: AvailabilityGroupPayload,
    ctx: Context,
    *,
    default_providers: Mapping[int, int] | None = None,
) -> Mapped[tuple[Slot, ...]]:
    """Every slot of an availability group (the group's names are dropped: the domain keys on
    ids)."""
    run = _Run()
    g = _track(group, run)
    slots = tuple(_slot(ctx, g, s, default_providers or {}) for s in g.slots)
    return Mapped(slots, _dropped(run, group))


# --- appointments ----------------------------------------------------------------------------------


def _confirmation(run: _Run, c: ConfirmationPayload) -> AppointmentConfirmation:
    method = confirmation_method(c.communication_method)
    if method is None:
        run.reject(c, "communication_method")
        method = "other"
    outcome = confirmation_outcome(c.communication_outcome)
    if outcome is None and _word(c.communication_outcome):
        run.reject(c, "communication_outcome")
    c.appointment_id  # noqa: B018 - the appointment it belongs to: the record it is attached to
    return AppointmentConfirmation(
        method=method,
        outcome=outcome,
        method_description=_text(c.communication_method_description),
        comments=_text(c.comments),
        confirmed_at=c.date_confirmed,
        recorded_at=c.created_at,
    )


def map_confirmation(wire: ConfirmationPayload, ctx: Context) -> Mapped[AppointmentConfirmation]:
    """One confirmation attempt of ``GET /v2/appointments/{id}/confirmations``."""
    del ctx  # a confirmation is part of its appointment: no id or provenance of its own
    run = _Run()
    confirmation = _confirmation(run, _track(wire, run))
    return Mapped(confirmation, _dropped(run, wire))


def map_appointment(
    wire: AppointmentPayload | AppointmentDetailPayload,
    ctx: Context,
    *,
    confirmations: Sequence[ConfirmationPayload] = (),
    cancellation_reasons: Mapping[int, CancellationReasonPayload] | None = None,
) -> Mapped[Appointment]:
    """An appointment (list item or show), with its confirmation history when given.

    Status: ``P`` scheduled (``confirmed`` when ``is_confirmed``), ``I`` arrived, ``O``
    checked out, ``C`` cancelled, ``R`` rescheduled, ``N`` no show; a practice-defined code is
    read by its name (``appointment_status``). ``cancellation_reasons`` (by id, from
    ``GET /v2/appointment_cancellation_reasons``) add the reason's code to the cancellation.

    Raises:
        UnexpectedPayload: the appointment breaks a domain rule (it ends before it starts; it
            departed before it arrived; it is checked in without ``arrived_at``...).
    """
    run = _Run()
    crun = _Run()
    w = _track(wire, run)
    status_ref = w.appointment_status
    status = appointment_status(status_ref.code, status_ref.name, w.is_confirmed)
    cancellation = None
    details = w.cancellation_details
    reason_id = w.appointment_cancellation_reason_id
    cancelled = status in (AppointmentStatus.CANCELLED, AppointmentStatus.RESCHEDULED)
    if cancelled and (details is not None or reason_id is not None):
        key = reason_id if reason_id is not None else (details.id if details else None)
        reason = None if key is None else (cancellation_reasons or {}).get(key)
        cancellation = AppointmentCancellation(
            reason_code="" if reason is None else _text(reason.code),
            reason_name=_text(details.detail if details else None)
            or ("" if reason is None else _text(reason.name)),
            comments="" if details is None else _text(details.comments),
        )
        if details is not None:
            details.id  # noqa: B018 - the same reason as appointment_cancellation_reason_id
    elif details is not None or reason_id is not None:
        # only a cancelled or rescheduled appointment has a cancellation in the domain
        if details is not None:
            run.reject_path("cancellation_details")
        if reason_id is not None:
            run.reject(w, "appointment_cancellation_reason_id")
    extended: dict[str, Any] = {}
    if isinstance(wire, AppointmentDetailPayload):
        d = cast(AppointmentDetailPayload, w)
        preferred = confirmation_method(d.preferred_confirmation_method)
        if preferred is None and _word(d.preferred_confirmation_method):
            run.reject(d, "preferred_confirmation_method")
        extended = {
            "preferred_confirmation_method": preferred,
            "encounter_id": None
            if d.encounter_id is None
            else EncounterId.new(ctx.key("encounter", str(d.encounter_id))),
            "created_by_application": d.created_by_application,
        }
    tracked_confirmations = [_track(c, crun) for c in confirmations]
    appointment = _build(
        Appointment,
        "appointment",
        wire.id,
        ctx,
        id=AppointmentId.new(ctx.key("appointment", w.id)),
        sources=(ctx.source(wire.id),),
        patient_id=patient_id(ctx, w.patient.chart_number),
        provider_id=_provider_id(ctx, w.provider_id),
        location_id=None if w.location is None else _location_id(ctx, w.location.id),
        resource_id=_resource_id(ctx, w.resource_id),
        visit_reason_id=_visit_reason_id(ctx, w.visit_reason_id),
        status=status,
        upstream_status=UpstreamStatus(code=status_ref.code, name=_text(status_ref.name)),
        start=w.start_time,
        end=w.end_time,
        chief_complaint=_text(w.chief_complaint),
        comments=_text(w.comments),
        is_confirmed=w.is_confirmed,
        confirmations=tuple(_confirmation(crun, c) for c in tracked_confirmations),
        patient_contacted=bool(w.patient_contacted),
        is_force_overbook=bool(w.is_force_overbook),
        cancellation=cancellation,
        arrived_at=w.arrived_at,
        departed_at=w.departed_at,
        referring_physician_npi=_valid(run, w, "referring_physician_npi", _npi),
        updated_by_application=w.updated_by_application,
        created_at=w.created_at,
        updated_at=w.updated_at,
        **extended,
    )
    dropped = _dropped(run, wire) + tuple(
        f"confirmations[].{p}" for p in _dropped(crun, *confirmations)
    )
    return Mapped(appointment, tuple(sorted(set(dropped))))
