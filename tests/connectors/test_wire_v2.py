"""The v2 wire models describe every payload of an in-process sandbox tenant exactly: no unknown,
missing or retyped field on any endpoint; and they keep the upstream's conventions (aliases,
string money, timestamps with offsets, GUID and integer ids)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError
from tests.connectors.harness import Sandbox

from carebridge.connectors.carecloud.drift import check, check_list, compare
from carebridge.connectors.carecloud.wire import WireModel, v2
from carecloud_sandbox import personas

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
BASE = "http://sandbox.test"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(seed=23)
    yield box
    box.tenant.db.close()


@pytest.fixture(scope="module")
def payloads(sandbox: Sandbox) -> dict[str, Any]:
    """One real payload of every endpoint the driver reads (and of the writes it reads back)."""
    db = sandbox.tenant.db
    guarantor = db.scalar(
        "SELECT id FROM patients WHERE data_json LIKE '%responsible_party_person%' LIMIT 1"
    )
    with_docs = db.scalar("SELECT patient_id FROM documents ORDER BY id LIMIT 1")
    cancelled = db.scalar("SELECT id FROM appointments WHERE status_code = 'C' LIMIT 1")
    confirmed = db.scalar("SELECT appointment_id FROM appointment_confirmations LIMIT 1")
    document = db.scalar("SELECT id FROM documents ORDER BY id LIMIT 1")

    def call(method: str, url: str, **kwargs: Any) -> Any:
        return sandbox.call(method, url, **kwargs).json()

    found: dict[str, Any] = {
        "search": call("POST", "/v2/patients/search", json={"terms": ["sandbox"]}),
        "patient": call("GET", f"/v2/patients/{guarantor}"),
        "insurances": call("GET", f"/v2/patients/{guarantor}/insurances"),
        "balance": call("GET", f"/v2/patients/{guarantor}/balance"),
        "transactions": call(
            "GET",
            f"/v2/patients/{guarantor}/transactions",
            params={"start_date": "2026-01-01", "end_date": "2026-12-31"},
        ),
        "charges": call(
            "GET",
            f"/v2/patients/{guarantor}/charges",
            params={"start_date": "2026-01-01", "end_date": "2026-12-31"},
        ),
        "documents": call("GET", "/v2/documents", params={"patient_id": with_docs}),
        "document": call("GET", f"/v2/document/{document}"),
        "appointments": call(
            "GET", "/v2/appointments", params={"start_date": "2026-11-20", "end_date": "2026-11-27"}
        ),
        "by_patient": call(
            "GET", "/v2/appointments/listbypatient", params={"patient_id": guarantor}
        ),
        "appointment": call("GET", f"/v2/appointments/{cancelled}"),
        "confirmations": call("GET", f"/v2/appointments/{confirmed}/confirmations"),
        "statuses": call("GET", "/v2/appointment_statuses"),
        "cancellation_reasons": call("GET", "/v2/appointment_cancellation_reasons"),
        "availability": call(
            "GET",
            "/v2/appointment_availability",
            params={"start_date": "2026-11-25", "visit_reason_id": personas.VISIT_ESTABLISHED},
        ),
        "providers": call("GET", "/v2/providers"),
        "physician": call("GET", f"/v2/physicians/{personas.PROVIDER_NPI}"),
        "locations": call("GET", "/v2/locations"),
        "resources": call("GET", "/v2/appointment_resources"),
        "resource": call("GET", f"/v2/appointment_resources/{personas.RESOURCE_ID}"),
        "resource_visit_reasons": call(
            "GET", f"/v2/appointment_resources/{personas.RESOURCE_ID}/visit_reasons"
        ),
        "visit_reasons": call("GET", "/v2/visit_reasons"),
        "payers": call("GET", "/v2/payers"),
        "payer_search": call("POST", "/v2/payers/search", json={"name": "medi"}),
        "plans": call("GET", f"/v2/payers/{personas.PAYER_ID}/plans"),
    }
    found["eligibility_created"] = call(
        "POST", f"/v2/patients/{guarantor}/eligibility_request", json={}
    )
    sandbox.clock.advance(timedelta(seconds=6))
    request_id = found["eligibility_created"]["eligibility_request"]["id"]
    found["eligibility"] = call("GET", f"/v2/patients/{guarantor}/eligibility_request/{request_id}")
    start = sandbox.tenant.now() + timedelta(days=2)
    slot = next(
        g["slots"][0]
        for g in call(
            "GET",
            "/v2/appointment_availability",
            params={
                "start_date": start.date().isoformat(),
                "visit_reason_id": personas.VISIT_ESTABLISHED,
                "resource_ids": personas.RESOURCE_ID,
            },
        )
    )
    found["created"] = call(
        "POST",
        "/v2/appointments",
        json={
            "appointment": {
                "start_time": slot["start_time"],
                "provider_id": personas.PROVIDER_ID,
                "resource_id": personas.RESOURCE_ID,
                "location_id": personas.LOCATION_ID,
                "visit_reason_id": personas.VISIT_ESTABLISHED,
                "chief_complaint": "Follow-up",
                "patient": {"id": guarantor},
            }
        },
    )
    new = found["created"]["appointment"]
    found["confirm"] = call(
        "POST", f"/v2/appointments/{new}/confirm", json={"communication_method": "phone"}
    )
    found["check_in"] = call("PUT", f"/v2/appointments/{new}/check_in")
    found["pending"] = call("PUT", f"/v2/appointments/{new}/pending")
    found["cancel"] = call(
        "PUT",
        f"/v2/appointments/{new}/cancel",
        json={"appointment_cancellation_reason_id": "1", "cancellation_comments": "moved"},
    )
    return found


ENDPOINTS: list[tuple[str, type[BaseModel], bool]] = [
    ("search", v2.PatientSearchResponse, False),
    ("patient", v2.PatientShowResponse, False),
    ("insurances", v2.InsurancesResponse, False),
    ("balance", v2.BalancePayload, True),
    ("transactions", v2.TransactionPayload, True),
    ("charges", v2.TransactionPayload, True),
    ("documents", v2.DocumentsResponse, False),
    ("document", v2.DocumentResponse, False),
    ("appointments", v2.AppointmentEnvelope, True),
    ("by_patient", v2.AppointmentEnvelope, True),
    ("appointment", v2.AppointmentDetailResponse, False),
    ("confirmations", v2.ConfirmationEnvelope, True),
    ("statuses", v2.AppointmentStatusEnvelope, True),
    ("cancellation_reasons", v2.CancellationReasonEnvelope, True),
    ("availability", v2.AvailabilityGroupPayload, True),
    ("providers", v2.ProvidersResponse, False),
    ("physician", v2.PhysicianResponse, False),
    ("locations", v2.LocationsResponse, False),
    ("resources", v2.ResourceEnvelope, True),
    ("resource", v2.ResourceDetailResponse, False),
    ("resource_visit_reasons", v2.VisitReasonPayload, True),
    ("visit_reasons", v2.VisitReasonPayload, True),
    ("payers", v2.PayersResponse, False),
    ("payer_search", v2.PayersResponse, False),
    ("plans", v2.PlansResponse, False),
    ("eligibility_created", v2.EligibilityCreatedResponse, False),
    ("eligibility", v2.EligibilityResponse, False),
    ("created", v2.AppointmentCreatedResponse, False),
    ("confirm", v2.ConfirmationEnvelope, False),
    ("check_in", v2.AppointmentDetailResponse, False),
    ("pending", v2.AppointmentDetailResponse, False),
    ("cancel", v2.CancelAppointmentResponse, False),
]


@pytest.mark.parametrize(("name", "model", "many"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_the_wire_model_describes_the_endpoint_exactly(
    payloads: dict[str, Any], name: str, model: type[BaseModel], many: bool
) -> None:
    payload = payloads[name]
    assert payload, f"{name}: the sandbox returned nothing to compare"
    assert compare(payload, model, many=many) == []
    parsed = check_list(payload, model, name) if many else [check(payload, model, name)]
    assert parsed
    for item in parsed:
        assert item.model_extra == {}


def test_nested_payloads_keep_their_content(payloads: dict[str, Any]) -> None:
    patient = v2.PatientShowResponse.model_validate(payloads["patient"]).patient
    assert patient.responsible_party is not None
    assert patient.responsible_party.relationship not in (None, "self")
    assert patient.insurance_profiles[0].insurance_policies[0].payer.pending is False
    appointment = v2.AppointmentDetailResponse.model_validate(payloads["appointment"]).appointment
    assert appointment.appointment_status.code == "C"
    assert appointment.cancellation_details is not None
    eligibility = v2.EligibilityResponse.model_validate(payloads["eligibility"]).eligibility_request
    assert eligibility.status == "complete"
    assert eligibility.response is not None


def test_money_stays_the_upstreams_decimal_string(payloads: dict[str, Any]) -> None:
    rows = check_list(payloads["balance"], v2.BalancePayload, "balance")
    assert all(isinstance(r.total, str) and "." in r.total for r in rows)
    policy = v2.InsurancePolicyPayload.model_validate(
        v2.InsurancesResponse.model_validate(payloads["insurances"])
        .insurance_profiles[0]
        .insurance_policies[0]
        .model_dump(by_alias=True)
    )
    assert policy.co_payment is None or policy.co_payment.endswith((".0", "5", "0"))
    with pytest.raises(ValidationError):
        v2.BalancePayload.model_validate({**payloads["balance"][0], "total": 12.5})
    with pytest.raises(ValidationError):
        v2.BalancePayload.model_validate({**payloads["balance"][0], "total": "12,50"})


def test_timestamps_keep_the_practice_offset_and_must_carry_one(payloads: dict[str, Any]) -> None:
    appointment = v2.AppointmentDetailResponse.model_validate(payloads["appointment"]).appointment
    local = appointment.start_time.replace(tzinfo=None)
    assert appointment.start_time.utcoffset() == ZoneInfo(personas.PRACTICE_TZ).utcoffset(local)
    raw = dict(payloads["appointment"]["appointment"])
    with pytest.raises(ValidationError):
        v2.AppointmentDetailPayload.model_validate({**raw, "start_time": "2026-11-24T09:00:00"})
    minutes_only = v2.AppointmentDetailPayload.model_validate(
        {**raw, "start_time": "2015-04-25T09:00-05:00"}
    )
    assert minutes_only.start_time.utcoffset() == timedelta(hours=-5)


def test_dates_accept_iso_and_us_forms_and_empty_means_none() -> None:
    insured = v2.InsuredPayload.model_validate(
        {"relation_to_patient": "self", "date_of_birth": "03/14/1984"}
    )
    assert insured.date_of_birth == date(1984, 3, 14)
    assert (
        v2.InsuredPayload.model_validate(
            {"relation_to_patient": "self", "date_of_birth": ""}
        ).date_of_birth
        is None
    )
    with pytest.raises(ValidationError):
        v2.InsuredPayload.model_validate({"relation_to_patient": "self", "date_of_birth": "soon"})


def test_guid_ids_are_strings_and_the_rest_integers(payloads: dict[str, Any]) -> None:
    appointment = v2.AppointmentDetailResponse.model_validate(payloads["appointment"]).appointment
    assert isinstance(appointment.id, str)
    assert len(appointment.id) == 36
    assert isinstance(appointment.patient.id, str)
    assert isinstance(appointment.provider_id, int)
    assert isinstance(appointment.resource_id, int)
    upper = {**payloads["appointment"]["appointment"], "id": appointment.id.upper()}
    assert v2.AppointmentDetailPayload.model_validate(upper).id == appointment.id


def test_upstream_aliases_are_accepted_and_remembered(payloads: dict[str, Any]) -> None:
    raw = dict(payloads["appointment"]["appointment"])
    raw["nature_of_visit_id"] = raw.pop("visit_reason_id")
    raw["reason_for_visit"] = raw.pop("chief_complaint")
    aliased = v2.AppointmentDetailPayload.model_validate(raw)
    assert aliased.visit_reason_id == payloads["appointment"]["appointment"]["visit_reason_id"]
    assert aliased.chief_complaint == payloads["appointment"]["appointment"]["chief_complaint"]
    assert aliased.upstream_key("visit_reason_id") == "nature_of_visit_id"
    assert aliased.upstream_key("chief_complaint") == "reason_for_visit"
    assert compare(raw, v2.AppointmentDetailPayload) == []
    plain = v2.AppointmentDetailPayload.model_validate(payloads["appointment"]["appointment"])
    assert plain.upstream_key("visit_reason_id") == "visit_reason_id"


def test_both_phone_spellings_are_read(payloads: dict[str, Any]) -> None:
    location = v2.LocationsResponse.model_validate(payloads["locations"]).locations[0]
    patient = v2.PatientShowResponse.model_validate(payloads["patient"]).patient
    assert location.phones[0].phone_type == "B"
    assert location.phones[0].upstream_key("phone_type") == "phone_type"
    assert location.phones[0].upstream_key("extension") == "phone_ext"
    assert patient.phones[0].phone_type in ("C", "H", "B", "M")
    assert patient.phones[0].upstream_key("phone_type") == "phone_type_code"
    words = v2.PhonePayload.model_validate({"phone_number": "217-555-0100", "phone_type": "Fax"})
    assert words.phone_type == "Fax"


def test_unknown_fields_are_kept_as_extras(payloads: dict[str, Any]) -> None:
    raw = {**payloads["providers"]["providers"][0], "board_certified": True}
    provider = v2.ProviderPayload.model_validate(raw)
    assert provider.model_extra == {"board_certified": True}


def test_a_field_the_upstream_always_sends_is_required() -> None:
    with pytest.raises(ValidationError) as err:
        v2.SlotPayload.model_validate({"start_time": "2026-11-25T08:00:00-06:00"})
    assert err.value.errors()[0]["loc"] == ("end_time",)
    assert v2.AddressPayload.model_validate({}).line1 is None  # shapes vary: all optional


def test_validation_errors_do_not_echo_the_input(payloads: dict[str, Any]) -> None:
    raw = {**payloads["patient"]["patient"], "dob": "Jordan-Sandbox-secret"}
    with pytest.raises(ValidationError) as err:
        v2.PatientPayload.model_validate(raw)
    assert "Jordan-Sandbox-secret" not in str(err.value)


def test_upstream_keys_lists_every_spelling_preferred_first() -> None:
    assert v2.upstream_keys(v2.AppointmentPayload, "visit_reason_id") == (
        "visit_reason_id",
        "nature_of_visit_id",
    )
    assert v2.upstream_keys(v2.PolicyPayerPayload, "pending") == ("payer_pending?", "pending")
    assert v2.upstream_keys(v2.SlotPayload, "start_time") == ("start_time",)


def test_every_v2_model_is_a_frozen_wire_model() -> None:
    models = [
        getattr(v2, name)
        for name in v2.__all__
        if isinstance(getattr(v2, name), type) and issubclass(getattr(v2, name), BaseModel)
    ]
    assert len(models) > 40
    for model in models:
        assert issubclass(model, WireModel)
        assert model.model_config.get("frozen") is True
        assert model.model_config.get("extra") == "allow"


def _models() -> list[type[v2.V2Model]]:
    found: list[type[v2.V2Model]] = []
    for name in v2.__all__:
        model = getattr(v2, name)
        if isinstance(model, type) and issubclass(model, v2.V2Model):
            found.append(model)
    found.remove(v2.AliasedV2Model)  # the base of the models that remember, with no field
    return found


@pytest.mark.parametrize("model", _models(), ids=lambda model: model.__name__)
def test_a_model_remembers_the_key_sent_exactly_when_a_field_has_several(
    model: type[v2.V2Model],
) -> None:
    """A model with a field of several spellings remembers which one came (an
    ``AliasedV2Model``); any other model's keys are its fields' preferred spellings."""
    several = [n for n in model.model_fields if len(v2.upstream_keys(model, n)) > 1]
    assert model.remembers_spelling == bool(several)
    assert issubclass(model, v2.AliasedV2Model) == bool(several)
    assert v2.preferred_spelling(model) == {
        n: v2.upstream_keys(model, n)[0] for n in model.model_fields
    }


def test_a_model_with_a_field_of_several_spellings_must_remember_the_one_sent() -> None:
    with pytest.raises(TypeError, match="several spellings"):

        class Drifting(v2.V2Model):
            state_code: str | None = v2._either_or_none("state_code", "state")

    class Remembering(v2.AliasedV2Model):
        state_code: str | None = v2._either_or_none("state_code", "state")

    sent = Remembering.model_validate({"state": "NY"})
    assert sent.upstream_key("state_code") == "state"
    assert Remembering.model_validate({"state_code": "NY"}).upstream_key("state_code") == (
        "state_code"
    )


def test_a_model_of_one_spelling_per_field_reads_its_keys_without_a_validator_of_its_own(
    payloads: dict[str, Any],
) -> None:
    patient = v2.PatientShowResponse.model_validate(payloads["patient"]).patient
    assert patient.__pydantic_private__ is None
    assert patient.upstream_key("first_name") == "first_name"
    assert patient.upstream_key("not_a_field") == "not_a_field"
    assert patient.addresses[0].__pydantic_private__ is not None
