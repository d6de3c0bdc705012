"""v2 patients, their guarantors and coverages, and the payer directory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from pydantic import ValidationError

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.v2._base import (
    PatientRef,
    _build,
    _derived_id,
    _dropped,
    _email,
    _empty,
    _first,
    _language,
    _location_id,
    _npi,
    _path_of,
    _payer_id,
    _provider_id,
    _race,
    _Run,
    _ssn,
    _state,
    _text,
    _track,
    _twin,
    _valid,
    _word,
    _wrap,
    present_paths,
)
from carebridge.connectors.carecloud.mapping.v2.billing import _balance
from carebridge.connectors.carecloud.mapping.v2.codes import (
    employment_status,
    ethnicity,
    gender,
    marital_status,
    payer_kind,
    policy_type,
    relationship,
    student_status,
)
from carebridge.connectors.carecloud.mapping.v2.contacts import (
    _address,
    _addresses,
    _person_name,
    _phones,
)
from carebridge.connectors.carecloud.wire.v2 import (
    BalancePayload,
    InsurancePolicyPayload,
    InsuranceProfilePayload,
    InsuredPayload,
    PatientPayload,
    PatientSearchItem,
    PayerPayload,
    PlanPayload,
    ResponsiblePartyPayload,
)
from carebridge.domain import (
    Coverage,
    CoverageId,
    Guarantor,
    Insured,
    Patient,
    PatientIdentifier,
    Payer,
    PayerPlan,
    to_money,
)
from carebridge.domain.patients import DriversLicense
from carebridge.errors import UnexpectedPayload

# --- patients --------------------------------------------------------------------------------------


def map_patient(
    wire: PatientPayload | PatientSearchItem,
    ctx: Context,
    *,
    balances: Sequence[BalancePayload] = (),
) -> Mapped[Patient]:
    """A patient from ``GET /v2/patients/{id}`` (or, with less, a search hit), with the coverages
    its insurance profiles embed and, when given, its ``/balance`` rows.

    Raises:
        UnexpectedPayload: the payload cannot make a valid patient.
    """
    run = _Run()
    ref = PatientRef.of(wire)
    pid = ref.patient_id(ctx)
    w = _track(wire, run)
    data: dict[str, Any] = {
        "id": pid,
        "sources": (ctx.source(w.id),),
        "birth_date": w.dob,
        "gender": gender(w.gender_code, w.gender),
        "last_seen_date": w.last_seen_date,
    }
    w.name  # noqa: B018 - "First Last", carried as the parts below
    first, last, middle = w.first_name, w.last_name, w.middle_initial
    full = isinstance(wire, PatientPayload)
    if full and _text(first) and _text(last):  # a named patient's prefix and suffix, made once
        s = cast(PatientPayload, w)
        name = _person_name(run, w, first, last, middle, _text(s.prefix), _text(s.suffix))
    else:
        name = _person_name(run, w, first, last, middle)
    identifiers = [
        PatientIdentifier(kind="chart_number", value=w.chart_number),
        PatientIdentifier(kind="v2_id", value=ref.v2_id),
    ]
    if full:
        s = cast(PatientPayload, w)
        for kind, value in (
            ("account_number", s.account_number),
            ("legacy_patient_id", s.legacy_patient_id),
        ):
            if not _empty(value) and str(value).strip():
                identifiers.append(PatientIdentifier(kind=kind, value=str(value).strip()))
        license_number = _text(s.drivers_license_number)
        marital = marital_status(_first(s.marital_status_code, s.marital_status))
        ethnic = ethnicity(_first(s.ethnicity_code, s.ethnicity))
        employment = _text(s.employment_status_code).upper()
        student = _text(s.student_status_code).upper()
        location = s.primary_location
        data.update(
            {
                "death_date": s.date_of_death,
                "ssn": _valid(run, s, "ssn", _ssn),
                "email": _valid(run, s, "email_address", _email),
                "addresses": _addresses(run, s.addresses, "home"),
                "phones": _phones(run, s.phones),
                "drivers_license": None
                if not license_number
                else DriversLicense(
                    number=license_number,
                    state=_valid(run, s, "drivers_license_state_code", _state),
                ),
                "marital_status": marital,
                "language": _twin(run, s, "language_code", "language", _language),
                "race": _twin(run, s, "race_code", "race", _race),
                "ethnicity": ethnic,
                "employment_status": employment_status(employment),
                "student_status": student_status(student),
                "employer_name": _text(s.employer_name),
                "school_name": _text(s.school_name),
                "active": _active(s.status, s.status_id),
                "primary_location_id": None if location is None else _location_id(ctx, location.id),
                "primary_provider_id": _provider_id(ctx, s.primary_provider_id),
                "primary_care_physician_npi": _valid(run, s, "primary_care_physician_npi", _npi),
                "referring_physician_npi": _valid(run, s, "referring_physician_npi", _npi),
                "guarantor": _guarantor(run, s.responsible_party),
                "coverages": _coverages(run, ctx, s.insurance_profiles, ref),
                "created_at": s.created_at,
                "updated_at": s.updated_at,
            }
        )
        for unknown, field in (
            (marital is None, "marital_status_code" if s.marital_status_code else "marital_status"),
            (ethnic is None, "ethnicity_code" if s.ethnicity_code else "ethnicity"),
            (bool(employment) and employment_status(employment) is None, "employment_status_code"),
            (bool(student) and student_status(student) is None, "student_status_code"),
        ):
            if unknown and not _empty(getattr(wire, field, None)):
                run.reject(s, field)
    else:
        h = cast(PatientSearchItem, w)
        data["primary_location_id"] = _location_id(ctx, h.primary_location_id)
    if name is None:
        raise UnexpectedPayload(
            f"v2 patient {ref.v2_id} has no first or last name",
            field_path="last_name" if _text(wire.first_name) else "first_name",
            endpoint=ctx.endpoint,
        )
    data["name"] = name
    data["identifiers"] = tuple(identifiers)
    if balances:  # read as they are: their fields are not in the patient's dropped report
        data["balances"] = tuple([_balance(ctx, b, ref, None) for b in balances])
    patient = _build(Patient, "patient", ref.v2_id, ctx, **data)
    return Mapped(patient, _dropped(run, wire))


def _active(status: str | None, status_id: int | None) -> bool:
    word = _word(status)
    if word:
        return word in ("active", "a")
    return status_id != 2


def _guarantor(run: _Run, party: ResponsiblePartyPayload | None) -> Guarantor | None:
    if party is None:
        return None
    rel = relationship(
        _first(party.relationship, party.responsible_party_person_relationship_type_code)
    )
    if rel == "self":
        return None
    party.name  # noqa: B018 - "First Last", carried as the parts
    name = _person_name(run, party, party.first_name, party.last_name, party.middle_initial)
    if name is None:
        run.reject_path(_path_of(party))
        return None
    try:
        return Guarantor(
            relationship=rel,
            name=name,
            birth_date=party.dob,
            gender=gender(party.gender),
            email=_valid(run, party, "email", _email),
            addresses=_addresses(run, party.addresses, "home"),
            phones=_phones(run, party.phones),
        )
    except ValidationError:
        run.reject_path(_path_of(party))
        return None


# --- insurance -------------------------------------------------------------------------------------


def _insured(run: _Run, ctx: Context, i: InsuredPayload | None) -> Insured:
    """A policy's subscriber. When the whole does not validate, the relationship and name are
    kept; a subscriber other than the patient with no name makes no valid record, so the
    policy is rejected (``UnexpectedPayload``) rather than its subscriber made up."""
    if i is None:
        return Insured()
    rel = relationship(i.relation_to_patient)
    name = _person_name(run, i, i.first_name, i.last_name, i.middle_initial)
    try:
        return Insured(
            relationship=rel,
            name=name,
            birth_date=i.date_of_birth,
            gender=gender(i.gender),
            addresses=_addresses(run, i.addresses, "home"),
            phones=_phones(run, i.phones),
        )
    except ValidationError:
        run.reject_path(_path_of(i))
        if rel != "self" and name is None:
            raise UnexpectedPayload(
                f"v2 insured ({rel}) has no name",
                field_path="insured.name",
                endpoint=ctx.endpoint,
            ) from None
        return Insured(relationship=rel, name=name)


def _coverage(
    run: _Run,
    ctx: Context,
    p: InsurancePolicyPayload,
    profile: InsuranceProfilePayload,
    ref: PatientRef,
) -> Coverage:
    plan = p.plan
    payer = p.payer
    return _build(
        Coverage,
        "insurance policy",
        str(p.id),
        ctx,
        id=_derived_id(CoverageId, ctx.key("coverage", str(p.id))),
        sources=(ctx.source(str(p.id)),),
        patient_id=ref.patient_id(ctx),
        payer_id=_payer_id(ctx, payer.id),
        payer_name=_text(payer.name),
        plan_name="" if plan is None else _text(plan.name),
        policy_type=policy_type(p.type),
        priority=p.policy_priority,
        profile_name=_text(profile.name),
        is_default_profile=profile.default,
        member_number=p.member_number,
        policy_number=_text(p.policy_number),
        group_number=_text(p.group_number),
        group_name=_text(p.group_name),
        effective_from=p.effective_from,
        effective_to=p.effective_to,
        copay=_valid(run, p, "co_payment", to_money),
        deductible=_valid(run, p, "deductible", to_money),
        requires_authorization=bool(p.requires_authorization),
        insured=_insured(run, ctx, p.insured),
    )


def _coverages(
    run: _Run, ctx: Context, profiles: Sequence[InsuranceProfilePayload], ref: PatientRef
) -> tuple[Coverage, ...]:
    found = []
    for profile in profiles:
        for policy in profile.insurance_policies:
            try:
                found.append(_coverage(run, ctx, policy, profile, ref))
            except UnexpectedPayload:
                run.reject_path(_path_of(policy))
    return tuple(found)


def map_coverage(
    policy: InsurancePolicyPayload,
    ctx: Context,
    *,
    patient: PatientRef,
    profile: InsuranceProfilePayload,
) -> Mapped[Coverage]:
    """One policy of ``profile`` (from ``GET /v2/patients/{id}/insurances``).

    ``dropped`` covers the policy only (the profile's own fields are reported by
    ``map_coverages``).

    Raises:
        UnexpectedPayload: the policy cannot make a valid coverage (e.g. no member number).
    """
    run = _Run()
    prun = _Run()
    coverage = _coverage(run, ctx, _track(policy, run), _track(profile, prun), patient)
    return Mapped(coverage, _dropped(run, policy))


def map_coverages(
    profiles: Sequence[InsuranceProfilePayload], ctx: Context, *, patient: PatientRef
) -> Mapped[tuple[Coverage, ...]]:
    """Every policy of every profile; a policy that cannot make a coverage is dropped."""
    run = _Run()
    tracked = [_wrap(p, "[]", run) for p in profiles]
    coverages = _coverages(run, ctx, tracked, patient)
    present: set[str] = set()
    for profile in profiles:
        present |= present_paths(profile, "[]")
    dropped = {p for p in present if p not in run.used} | run.rejected
    return Mapped(coverages, tuple(sorted(dropped)))


def map_payer(
    wire: PayerPayload, ctx: Context, *, plans: Sequence[PlanPayload] = ()
) -> Mapped[Payer]:
    """A payer of the directory, with its plans from ``GET /v2/payers/{id}/plans`` when given.

    ``kind`` is not in the directory: it is inferred from the plans' types (``payer_kind``).

    Raises:
        UnexpectedPayload: no usable ``payer_code``, or another invalid required value.
    """
    run = _Run()
    prun = _Run()
    w = _track(wire, run)
    tracked_plans = [_track(p, prun) for p in plans]
    address = None if w.address is None else _address(run, w.address, "mailing")
    phones = _phones(run, w.phones)
    payer_plans: list[PayerPlan] = []
    for p in tracked_plans:
        if p.name and p.name not in {pp.name for pp in payer_plans}:
            payer_plans.append(
                PayerPlan(
                    name=p.name,
                    policy_type=policy_type(p.insurance_policy_type),
                    upstream_id=str(p.id),
                )
            )
    payer = _build(
        Payer,
        "payer",
        str(wire.id),
        ctx,
        id=_payer_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        payer_code=_text(w.payer_code),
        kind=payer_kind(p.insurance_policy_type for p in plans),
        pending=bool(w.pending),
        address=address,
        phones=phones,
        plans=tuple(payer_plans),
    )
    return Mapped(payer, _dropped(run, wire) + _plans_dropped(prun, plans))


def _plans_dropped(run: _Run, plans: Sequence[PlanPayload]) -> tuple[str, ...]:
    present: set[str] = set()
    for plan in plans:
        present |= {f"plans[].{p}" for p in present_paths(plan)}
    used = {f"plans[].{p}" for p in run.used}
    return tuple(sorted(present - used))
