"""Appointments of the v2 surface, over real HTTP."""

from __future__ import annotations

import httpx
from tests.support.sandbox import LiveTenant

from carecloud_sandbox import personas

FUTURE = "2026-12-01"  # a Tuesday


def _book(api: httpx.Client, start: str, **extra: object) -> httpx.Response:
    appointment = {
        "start_time": start,
        "provider_id": personas.PROVIDER_ID,
        "resource_id": personas.RESOURCE_ID,
        "location_id": personas.LOCATION_ID,
        "visit_reason_id": personas.VISIT_ESTABLISHED,
        "patient": {"id": personas.JORDAN.id},
        **extra,
    }
    return api.post("/v2/appointments", json={"appointment": appointment})


def test_create_computes_end_from_visit_reason_and_aliases_fields(
    api: httpx.Client, live: LiveTenant
) -> None:
    start = live.free_start(FUTURE)
    r = _book(api, start, chief_complaint="cough", unknown_key="dropped")
    assert r.status_code == 201
    guid = r.json()["appointment"]
    shown = api.get(f"/v2/appointments/{guid}").json()["appointment"]
    assert shown["start_time"] == start
    assert shown["end_time"].endswith(":00-06:00")
    assert shown["visit_reason_id"] == personas.VISIT_ESTABLISHED
    assert shown["chief_complaint"] == "cough"
    assert shown["appointment_status"]["code"] == "P"
    assert "unknown_key" not in shown


def test_double_booking_is_refused_unless_forced(api: httpx.Client, live: LiveTenant) -> None:
    start = live.free_start("2026-12-02")
    assert _book(api, start).status_code == 201
    again = _book(api, start)
    assert again.status_code == 409
    assert again.json()["error"].startswith("Appointment Creation Failed - ")
    assert _book(api, start, is_force_overbook=True).status_code == 201


def test_provider_is_required(api: httpx.Client) -> None:
    r = api.post("/v2/appointments", json={"appointment": {"start_time": "2026-12-01T09:00:00"}})
    assert (r.status_code, r.json()) == (400, {"error": "Provider id must be passed in"})


def test_bad_inputs_are_refused_without_writing(api: httpx.Client, live: LiveTenant) -> None:
    before = live.tenant.db.scalar("SELECT COUNT(*) FROM appointments")
    cases = [
        _book(api, "not-a-time"),
        _book(api, "2026-12-01T09:00:00", patient={"id": "nope"}),
        _book(api, "2026-12-01T09:00:00", provider_id=personas.INACTIVE_PROVIDER_ID),
        _book(api, "2026-12-01T09:00:00", resource_id=personas.INACTIVE_RESOURCE_ID),
        _book(api, "2026-12-01T09:00:00", visit_reason_id="abc"),
        _book(api, "2026-12-01T09:00:00", end_time="2026-12-01T08:00:00"),
        api.post("/v2/appointments", content=b"[1]", headers={"content-type": "application/json"}),
    ]
    assert [c.status_code for c in cases] == [400, 400, 400, 400, 400, 400, 400]
    assert live.tenant.db.scalar("SELECT COUNT(*) FROM appointments") == before


def test_lifecycle_check_in_check_out_and_refused_cancel(
    api: httpx.Client, live: LiveTenant
) -> None:
    guid = _book(api, live.free_start("2026-12-03")).json()["appointment"]
    arrived = api.put(f"/v2/appointments/{guid}/check_in")
    assert arrived.json()["appointment"]["appointment_status"]["code"] == "I"
    assert arrived.json()["appointment"]["arrived_at"] is not None
    assert api.put(f"/v2/appointments/{guid}/check_in").status_code == 422
    out = api.put(f"/v2/appointments/{guid}/check_out")
    assert out.json()["appointment"]["appointment_status"]["code"] == "O"
    refused = api.put(
        f"/v2/appointments/{guid}/cancel", json={"appointment_cancellation_reason_id": "4"}
    )
    assert refused.status_code == 422
    assert "Checked Out" in refused.json()["error"]


def test_cancel_frees_the_slot_and_validates_the_method(
    api: httpx.Client, live: LiveTenant
) -> None:
    start = live.free_start("2026-12-04")
    guid = _book(api, start).json()["appointment"]
    bad = api.put(
        f"/v2/appointments/{guid}/cancel",
        json={"appointment_cancellation_reason_id": "4", "communication_method": "pigeon"},
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "Invalid communication method."})
    ok = api.put(
        f"/v2/appointments/{guid}/cancel",
        json={"appointment_cancellation_reason_id": "4", "cancellation_comments": "sick"},
    )
    assert ok.status_code == 200
    assert set(ok.json()) == {
        "appointment_id",
        "start_time",
        "appointment_cancellation_reason_id",
        "cancellation_details",
        "cancellation_comments",
        "updated_at",
    }
    assert _book(api, start).status_code == 201


def test_list_filters_by_status_resource_and_patient(api: httpx.Client) -> None:
    r = api.get(
        "/v2/appointments",
        params={
            "start_date": "2026-11-01",
            "end_date": "2026-11-20",
            "status": "O",
            "resource_id": personas.RESOURCE_ID,
        },
    )
    items = [i["appointment"] for i in r.json()]
    assert items
    assert {i["appointment_status"]["code"] for i in items} == {"O"}
    assert {i["resource_id"] for i in items} == {personas.RESOURCE_ID}
    assert api.get("/v2/appointments", params={"status": "X"}).status_code == 400
    assert api.get("/v2/appointments", params={"patient_ids": "x"}).status_code == 400
    assert api.get("/v2/appointments", params={"start_date": "2026-02-30"}).status_code == 400


def test_other_practices_appointment_is_not_found(live: LiveTenant) -> None:
    guid = live.tenant.db.scalar("SELECT id FROM appointments WHERE practice_id = 1 LIMIT 1")
    with live.client(live.token(1)) as other:
        assert other.get(f"/v2/appointments/{guid}").status_code == 404


def test_confirm_marks_confirmed_and_history_lists_attempts(
    api: httpx.Client, live: LiveTenant
) -> None:
    guid = _book(api, live.free_start("2026-12-10")).json()["appointment"]
    attempt = api.post(
        f"/v2/appointments/{guid}/confirmation",
        json={"communication_method": "phone", "communication_outcome": "no_answer"},
    )
    assert attempt.status_code == 201
    assert api.get(f"/v2/appointments/{guid}").json()["appointment"]["is_confirmed"] is False
    refused = api.post(
        f"/v2/appointments/{guid}/confirm",
        json={"communication_method": "phone", "communication_outcome": "confirmed"},
    )
    assert refused.status_code == 400, "confirm rejects communication_outcome"
    ok = api.post(f"/v2/appointments/{guid}/confirm", json={"communication_method": "email"})
    assert ok.status_code == 201
    assert ok.json()["appointment_confirmation"]["communication_outcome"] == "confirmed"
    assert api.get(f"/v2/appointments/{guid}").json()["appointment"]["is_confirmed"] is True
    history = api.get(f"/v2/appointments/{guid}/confirmations").json()
    assert [h["appointment_confirmation"]["communication_outcome"] for h in history] == [
        "no_answer",
        "confirmed",
    ]


def test_communication_must_not_be_a_confirmation_and_methods_are_checked(
    api: httpx.Client, live: LiveTenant
) -> None:
    guid = _book(api, live.free_start("2026-12-11")).json()["appointment"]
    assert (
        api.post(
            f"/v2/appointments/{guid}/communication",
            json={"communication_method": "text_message", "communication_outcome": "confirmed"},
        ).status_code
        == 400
    )
    assert (
        api.post(
            f"/v2/appointments/{guid}/communication",
            json={"communication_method": "text_message", "communication_outcome": "message_sent"},
        ).status_code
        == 201
    )
    bad = api.post(f"/v2/appointments/{guid}/confirmation", json={"communication_method": "owl"})
    assert bad.json() == {"error": "Invalid communication method."}


def test_list_by_patient(api: httpx.Client) -> None:
    items = api.get(
        "/v2/appointments/listbypatient", params={"patient_id": personas.JORDAN.id}
    ).json()
    assert items
    assert {i["appointment"]["patient"]["id"] for i in items} == {personas.JORDAN.id}
    assert api.get("/v2/appointments/listbypatient", params={"patient_id": "x"}).status_code == 400
