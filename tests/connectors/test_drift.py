"""Drift detection against the sandbox's simulated upstream releases: additive drift is tolerated
and reported, breaking drift raises ``UnexpectedPayload`` naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.connectors.harness import Sandbox

from carebridge.connectors.carecloud.drift import (
    ROOT,
    DriftReport,
    Finding,
    Observation,
    check,
    check_list,
    compare,
    loc_path,
    shape_of,
)
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.mapping.v2 import map_appointment, map_patient
from carebridge.connectors.carecloud.wire import v2
from carebridge.errors import UnexpectedPayload

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
BASE = "http://sandbox.test"
SHOW = "GET /v2/patients/{id}"
LIST = "GET /v2/appointments"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(seed=31)
    yield box
    box.tenant.db.close()


@pytest.fixture(autouse=True)
def _no_drift_rules_left(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.control("DELETE", "/_sandbox/drift")


@pytest.fixture
def clock() -> list[datetime]:
    """The report's clock: the last element is now; tests append to move it."""
    return [START]


@pytest.fixture
def report(clock: list[datetime]) -> DriftReport:
    return DriftReport(clock=lambda: clock[-1])


@pytest.fixture(scope="module")
def patient(sandbox: Sandbox) -> Any:
    return sandbox.tenant.db.one(
        "SELECT * FROM patients WHERE practice_id = 1 AND dob IS NOT NULL ORDER BY internal_id"
    )


def ctx(endpoint: str) -> Context:
    return Context(tenant="tnt1", surface="v2", endpoint=endpoint, fetched_at=START)


def appointments(sandbox: Sandbox) -> Any:
    return sandbox.get("/v2/appointments", start_date="2026-11-24", end_date="2026-11-24")


# --- the sandbox's simulated releases -----------------------------------------------------------


def test_an_additive_release_is_tolerated_and_reported(
    sandbox: Sandbox, report: DriftReport, clock: list[datetime], patient: Any
) -> None:
    sandbox.control("POST", "/_sandbox/drift/releases/2026-12-additive")
    payload = sandbox.get(f"/v2/patients/{patient['id']}")
    wire = check(payload, v2.PatientShowResponse, SHOW, report).patient
    assert wire.model_extra == {"preferred_pronouns": None, "portal_status": "invited"}
    seen = report.endpoint(SHOW)
    assert seen is not None
    status = seen.find("unknown", "patient.portal_status")
    assert status is not None
    assert (status.actual, status.breaking, status.count, status.first_seen) == (
        "string",
        False,
        1,
        START,
    )
    pronouns = seen.find("unknown", "patient.preferred_pronouns")
    assert pronouns is not None
    assert pronouns.actual == "null"
    assert (seen.checks, seen.breaking) == (1, 0)

    mapped = map_patient(wire, ctx(SHOW))
    assert "portal_status" in mapped.dropped
    assert "preferred_pronouns" not in mapped.dropped  # null carries nothing

    listed = check_list(appointments(sandbox), v2.AppointmentEnvelope, LIST, report)
    assert listed
    assert map_appointment(listed[0].appointment, ctx(LIST)).dropped
    telehealth = report.endpoint(LIST)
    assert telehealth is not None
    assert telehealth.find("unknown", "[].appointment.telehealth_url") is not None

    clock.append(START + timedelta(minutes=5))
    check(sandbox.get(f"/v2/patients/{patient['id']}"), v2.PatientShowResponse, SHOW, report)
    again = seen.find("unknown", "patient.portal_status")
    assert again is not None
    assert (again.count, again.first_seen, again.last_seen) == (2, START, clock[-1])
    rendered = report.as_dict()
    assert rendered["drifted"] is True
    assert rendered["endpoints"][SHOW]["unknown"] == 2
    assert rendered["endpoints"][SHOW]["checks"] == 2
    json.dumps(rendered)


def test_a_breaking_release_raises_naming_the_field(
    sandbox: Sandbox, report: DriftReport, patient: Any
) -> None:
    sandbox.control("POST", "/_sandbox/drift/releases/2026-12-breaking")
    payload = sandbox.get(f"/v2/patients/{patient['id']}")
    with pytest.raises(UnexpectedPayload) as renamed:
        check(payload, v2.PatientShowResponse, SHOW, report)
    assert renamed.value.field_path == "patient.dob"
    assert renamed.value.endpoint == SHOW
    for phi in (patient["dob"], patient["first_name"], patient["last_name"], patient["ssn"]):
        assert phi not in str(renamed.value)
    seen = report.endpoint(SHOW)
    assert seen is not None
    assert (seen.checks, seen.breaking) == (1, 1)
    missing = seen.find("missing", "patient.dob")
    assert missing is not None
    assert missing.breaking
    assert seen.find("unknown", "patient.date_of_birth") is not None

    with pytest.raises(UnexpectedPayload) as retyped:
        check_list(appointments(sandbox), v2.AppointmentEnvelope, LIST, report)
    assert retyped.value.field_path == "[].appointment.provider_id"
    observed = report.endpoint(LIST)
    assert observed is not None
    finding = observed.find("retyped", "[].appointment.provider_id")
    assert finding is not None
    assert (finding.expected, finding.actual, finding.breaking) == ("integer", "string", True)


def test_a_retyped_timestamp_on_the_show_endpoint_is_breaking(
    sandbox: Sandbox, report: DriftReport
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {"endpoint": "GET /v2/appointments/*", "retype": {"appointment.start_time": "integer"}},
    )
    guid = sandbox.tenant.db.scalar("SELECT id FROM appointments ORDER BY internal_id LIMIT 1")
    with pytest.raises(UnexpectedPayload) as err:
        check(
            sandbox.get(f"/v2/appointments/{guid}"),
            v2.AppointmentDetailResponse,
            "GET /v2/appointments/{id}",
            report,
        )
    assert err.value.field_path == "appointment.start_time"


def test_a_rename_to_a_documented_alias_is_not_drift(sandbox: Sandbox, report: DriftReport) -> None:
    before = check_list(appointments(sandbox), v2.AppointmentEnvelope, LIST)
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {
            "endpoint": "GET /v2/appointments",
            "rename": {
                "[].appointment.visit_reason_id": "nature_of_visit_id",
                "[].appointment.chief_complaint": "reason_for_visit",
            },
        },
    )
    payload = appointments(sandbox)
    assert "nature_of_visit_id" in payload[0]["appointment"]
    after = check_list(payload, v2.AppointmentEnvelope, LIST, report)
    entry = report.endpoint(LIST)
    assert entry is not None
    assert entry.observations == {}
    old = [map_appointment(e.appointment, ctx(LIST)).value for e in before]
    new = [map_appointment(e.appointment, ctx(LIST)).value for e in after]
    assert [(a.visit_reason_id, a.chief_complaint) for a in new] == [
        (a.visit_reason_id, a.chief_complaint) for a in old
    ]


def test_additions_inside_arrays_are_reported_with_array_paths(
    sandbox: Sandbox, report: DriftReport, patient: Any
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {"endpoint": "GET /v2/patients/*", "add": {"patient.addresses.[].geo": {"lat": 1}}},
    )
    check(sandbox.get(f"/v2/patients/{patient['id']}"), v2.PatientShowResponse, SHOW, report)
    entry = report.endpoint(SHOW)
    assert entry is not None
    geo = entry.find("unknown", "patient.addresses[].geo")
    assert geo is not None
    assert geo.actual == "object"


def test_a_retyped_field_deep_in_lists_names_its_whole_path(
    sandbox: Sandbox, report: DriftReport, patient: Any
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {
            "endpoint": "GET /v2/patients/*/insurances",
            "retype": {"insurance_profiles.[].insurance_policies.[].member_number": "integer"},
        },
    )
    holder = sandbox.tenant.db.scalar("SELECT patient_id FROM insurance_policies LIMIT 1")
    with pytest.raises(UnexpectedPayload) as err:
        check(
            sandbox.get(f"/v2/patients/{holder}/insurances"),
            v2.InsurancesResponse,
            "GET /v2/patients/{id}/insurances",
            report,
        )
    assert err.value.field_path == "insurance_profiles[].insurance_policies[].member_number"
    del patient


def test_a_retyped_optional_field_is_tolerated_while_it_still_validates(
    sandbox: Sandbox, report: DriftReport
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {
            "endpoint": "GET /v2/locations",
            "retype": {"locations.[].phones.[].is_primary": "string"},
        },
    )
    parsed = check(sandbox.get("/v2/locations"), v2.LocationsResponse, "GET /v2/locations", report)
    assert parsed.locations[0].phones[0].is_primary is True
    entry = report.endpoint("GET /v2/locations")
    assert entry is not None
    found = entry.find("retyped", "locations[].phones[].is_primary")
    assert found is not None
    assert (found.expected, found.actual, found.breaking) == ("boolean|null", "string", False)
    assert entry.breaking == 0


def test_a_retyped_optional_field_that_no_longer_validates_is_refused(
    sandbox: Sandbox, report: DriftReport
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {"endpoint": "GET /v2/locations", "retype": {"locations.[].address.zip_code": "integer"}},
    )
    with pytest.raises(UnexpectedPayload) as err:
        check(sandbox.get("/v2/locations"), v2.LocationsResponse, "GET /v2/locations", report)
    assert err.value.field_path == "locations[].address.zip_code"


def test_a_value_of_the_right_type_that_does_not_validate_is_invalid(
    sandbox: Sandbox, report: DriftReport
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/drift",
        {"endpoint": "GET /v2/appointments", "add": {"[].appointment.end_time": "10:30 AM"}},
    )
    with pytest.raises(UnexpectedPayload) as err:
        check_list(appointments(sandbox), v2.AppointmentEnvelope, LIST, report)
    assert err.value.field_path == "[].appointment.end_time"
    entry = report.endpoint(LIST)
    assert entry is not None
    invalid = entry.find("invalid", "[].appointment.end_time")
    assert invalid is not None
    assert invalid.breaking
    assert invalid.expected is not None
    assert "datetime" in invalid.expected
    assert "10:30" not in str(err.value)


def test_a_list_endpoint_answering_an_object_is_retyped_at_the_root(report: DriftReport) -> None:
    with pytest.raises(UnexpectedPayload) as err:
        check_list({"error": "Resource not found."}, v2.AppointmentEnvelope, LIST, report)
    assert err.value.field_path == ROOT


# --- compare, pure ------------------------------------------------------------------------------


def test_null_where_the_upstream_never_sends_null_is_breaking() -> None:
    findings = compare(
        {"start_time": None, "end_time": "2026-11-25T08:20:00-06:00"}, v2.SlotPayload
    )
    assert findings == [Finding("retyped", "start_time", "string", "null", breaking=True)]


def test_a_required_field_inside_a_present_optional_object_is_checked() -> None:
    payload = {
        "id": 1,
        "npi": "1245319599",
        "name": None,
        "email": None,
        "phone_number": None,
        "specialty": {"name": "Family Medicine"},
        "last_name": "Quinnfield",
        "first_name": "Avery",
    }
    assert compare(payload, v2.ProviderPayload) == [
        Finding("missing", "specialty.taxonomy", breaking=True)
    ]
    assert compare({**payload, "specialty": None}, v2.ProviderPayload) == []


def test_one_unknown_key_in_many_items_is_one_finding() -> None:
    slots = [
        {"start_time": "2026-11-25T08:00:00-06:00", "end_time": "2026-11-25T08:20:00-06:00", "x": i}
        for i in range(5)
    ]
    group = {
        "location": {"id": 1, "name": None},
        "visit_reason": {"id": 2, "name": None},
        "resource": {"id": 3, "name": None},
        "slots": slots,
    }
    assert compare([group, group], v2.AvailabilityGroupPayload, many=True) == [
        Finding("unknown", "[].slots[].x", actual="integer")
    ]


def test_json_shapes_follow_the_annotations() -> None:
    assert shape_of(int | None).expected() == "integer|null"
    assert shape_of(float).accepts("integer")
    assert not shape_of(int).accepts("number")
    assert shape_of(Any).expected() == "any"
    assert shape_of(list[v2.SlotPayload]).item is not None
    assert loc_path(("patients", 3, "dob")) == "patients[].dob"
    assert loc_path(()) == ROOT


def test_check_without_a_report_still_guards(sandbox: Sandbox) -> None:
    parsed = check_list(sandbox.get("/v2/appointment_statuses"), v2.AppointmentStatusEnvelope, "s")
    assert {e.appointment_status.code for e in parsed} >= {"P", "I", "O", "C", "R"}
    with pytest.raises(UnexpectedPayload):
        check_list(
            [{"appointment_status": {"id": 1, "name": "x"}}], v2.AppointmentStatusEnvelope, "s"
        )


# --- the report ---------------------------------------------------------------------------------


def test_the_report_announces_each_new_finding_once() -> None:
    seen: list[tuple[str, Observation]] = []
    report = DriftReport(clock=lambda: START, on_new=lambda e, o: seen.append((e, o)))
    findings = [Finding("unknown", "a", actual="string"), Finding("missing", "b", breaking=True)]
    report.record("GET /x", findings)
    report.record("GET /x", findings[:1])
    report.record("GET /y", findings[:1])
    assert [(e, o.kind, o.path) for e, o in seen] == [
        ("GET /x", "unknown", "a"),
        ("GET /x", "missing", "b"),
        ("GET /y", "unknown", "a"),
    ]
    entry = report.endpoint("GET /x")
    assert entry is not None
    assert entry.checks == 2
    found = entry.find("unknown", "a")
    assert found is not None
    assert found.count == 2
    assert report.endpoints == ("GET /x", "GET /y")


def test_the_report_keeps_a_bounded_number_of_paths() -> None:
    report = DriftReport(clock=lambda: START, max_paths=3)
    report.record("GET /x", [Finding("unknown", f"k{i}") for i in range(10)])
    entry = report.endpoint("GET /x")
    assert entry is not None
    assert (len(entry.observations), entry.overflow) == (3, 7)
    assert report.as_dict()["endpoints"]["GET /x"]["overflow"] == 7


def test_a_clean_report_has_not_drifted(sandbox: Sandbox, report: DriftReport) -> None:
    check(sandbox.get("/v2/providers"), v2.ProvidersResponse, "GET /v2/providers", report)
    assert report.drifted is False
    assert report.as_dict() == {
        "drifted": False,
        "endpoints": {
            "GET /v2/providers": {
                "checks": 1,
                "breaking": 0,
                "last_checked": START.isoformat(),
                "unknown": 0,
                "missing": 0,
                "retyped": 0,
                "invalid": 0,
                "overflow": 0,
                "observations": [],
            }
        },
    }
