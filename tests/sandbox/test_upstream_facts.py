"""One test per [SRC] fact of upstream/carecloud.md §2 that the emulated tenant implements.

Each docstring cites the section. Behaviour beyond these facts lives in the other test modules.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
from tests.support.sandbox import LiveTenant

from carecloud_sandbox import personas

LINK_ENTRY = re.compile(r'<([^>]+)>; rel="(first|prev|last|next)", ?')


def test_oauth_token_uses_basic_client_auth_and_access_token_comes_first(live: LiveTenant) -> None:
    """§2.2 Token: client auth is HTTP Basic; access_token is the first field."""
    creds = live.credentials
    with live.client() as c:
        r = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={
                "grant_type": "refresh_token",
                "refresh_token": creds["practices"][0]["refresh_token"],
            },
        )
    assert next(iter(r.json())) == "access_token"
    assert r.json()["token_type"] == "Bearer"


def test_missing_authorization_header_is_401_access_token_is_required(live: LiveTenant) -> None:
    """§2.2 step 3: a missing header gives 401 {"error": "Access token is required"}."""
    with live.client() as c:
        r = c.get("/v2/providers")
    assert (r.status_code, r.json()) == (401, {"error": "Access token is required"})


def test_token_info_and_authorization_shapes(api: httpx.Client) -> None:
    """§2.2 step 4: OAuth2TokenInfo_Response and OAuth2Authorization_Response fields."""
    assert set(api.get("/oauth2/token_info").json()) == {
        "access_token",
        "type",
        "expires_in",
        "scope",
    }
    assert set(api.get("/v2/oauth2/authorization").json()) == {
        "access_token",
        "type",
        "expires_in",
        "scopes",
        "business_entity",
        "application",
        "user",
    }


def test_error_bodies_have_a_single_error_key(api: httpx.Client) -> None:
    """§2.3 Error body: always JSON with a single key, "error" for status >= 400."""
    r = api.get("/v2/appointments/not-a-guid")
    assert list(r.json()) == ["error"]


def test_call_failed_pattern(api: httpx.Client) -> None:
    """§2.3 Error body: "<Call description> Failed - <detail>"."""
    r = api.post(
        "/v2/appointments",
        json={
            "appointment": {
                "provider_id": personas.PROVIDER_ID,
                "patient": {"id": personas.JORDAN.id},
            }
        },
    )
    assert r.json()["error"].startswith("Appointment Creation Failed - ")


def test_literal_error_strings(api: httpx.Client) -> None:
    """§2.3 literal examples: provider id, appointment/patient GUIDs, resource not found."""
    assert api.post("/v2/appointments", json={"appointment": {}}).json() == {
        "error": "Provider id must be passed in"
    }
    assert api.get("/v2/appointments/123").json() == {
        "error": "Appointment ID must be a valid GUID."
    }
    assert api.get("/v2/patients/abc").json() == {"error": "Patient ID must be a valid GUID."}
    assert api.get("/v2/patients/00000000-0000-4000-8000-000000000000").json() == {
        "error": "Resource not found."
    }


def test_invalid_communication_method(api: httpx.Client) -> None:
    """§2.3 literal example: {"error":"Invalid communication method."}."""
    guid = api.get(
        "/v2/appointments",
        params={"start_date": "2026-12-01", "end_date": "2026-12-20", "status": "P"},
    ).json()[0]["appointment"]["id"]
    r = api.put(
        f"/v2/appointments/{guid}/cancel",
        json={"appointment_cancellation_reason_id": "4", "communication_method": "owl"},
    )
    assert r.json() == {"error": "Invalid communication method."}


def test_link_header_order_and_trailing_comma(api: httpx.Client) -> None:
    """§2.3 Pagination: first, prev, last, next, each followed by ", " (trailing comma)."""
    r = api.get(
        "/v2/appointments", params={"start_date": "2026-10-01", "end_date": "2026-11-20", "page": 2}
    )
    header = r.headers["link"]
    # HTTP parsers trim trailing whitespace from header values, so the comma is what survives.
    assert header.endswith('",')
    rels = [m.group(2) for m in LINK_ENTRY.finditer(header)]
    assert rels == ["first", "prev", "last", "next"]
    assert "".join(m.group(0) for m in LINK_ENTRY.finditer(header)) == header


def test_appointments_page_size_is_100_and_pages_are_numbered(api: httpx.Client) -> None:
    """§2.3 Pagination: page param, appointments 100 a page, bare JSON arrays."""
    params = {"start_date": "2026-10-01", "end_date": "2026-11-20"}
    first = api.get("/v2/appointments", params=params)
    assert isinstance(first.json(), list)
    assert len(first.json()) == 100
    last_url = next(
        m.group(1) for m in LINK_ENTRY.finditer(first.headers["link"]) if m.group(2) == "last"
    )
    last_page = int(parse_qs(urlsplit(last_url).query)["page"][0])
    last = api.get("/v2/appointments", params={**params, "page": last_page})
    assert 1 <= len(last.json()) <= 100
    assert 'rel="next"' not in last.headers["link"]


def test_transactions_page_size_is_50(api: httpx.Client, live: LiveTenant) -> None:
    """§2.3 Pagination: patient transactions/charges 50 a page."""
    pid = live.tenant.db.scalar(
        "SELECT patient_id FROM transactions WHERE practice_id = 1 GROUP BY patient_id "
        "ORDER BY COUNT(*) DESC LIMIT 1"
    )
    r = api.get(
        f"/v2/patients/{pid}/transactions",
        params={"start_date": "2020-01-01", "end_date": "2030-01-01"},
    )
    total = live.tenant.db.scalar("SELECT COUNT(*) FROM transactions WHERE patient_id = ?", (pid,))
    assert len(r.json()) == min(50, total)


def test_appointments_default_to_today(api: httpx.Client) -> None:
    """§2.3 Filtering by date: appointments default to today when no dates are given."""
    items = api.get("/v2/appointments").json()
    assert items
    assert {i["appointment"]["start_time"][:10] for i in items} == {"2026-11-24"}


def test_transactions_end_date_alone_is_400(api: httpx.Client) -> None:
    """§2.3 Filtering by date: end_date alone gives 400 with the documented text."""
    r = api.get(
        f"/v2/patients/{personas.JORDAN.id}/transactions", params={"end_date": "2026-11-01"}
    )
    assert (r.status_code, r.json()) == (
        400,
        {"error": "Both start_date and end_date parameters are required for date filtering"},
    )


def test_money_is_a_string(api: httpx.Client) -> None:
    """§2.5 Ledger/Balance: money is a string formatted '%.2f'."""
    rows = api.get(f"/v2/patients/{personas.JORDAN.id}/balance").json()
    assert all(re.fullmatch(r"-?\d+\.\d{2}", r["total"]) for r in rows)


def test_timestamps_are_practice_local_with_offsets(api: httpx.Client) -> None:
    """§2.1 release notes 2015-05: timestamps converted to the practice's local time zone."""
    item = api.get("/v2/appointments").json()[0]["appointment"]
    assert re.fullmatch(r"2026-11-24T\d\d:\d\d:\d\d-06:00", item["start_time"])


def test_guids_for_patients_and_appointments_integers_for_the_rest(api: httpx.Client) -> None:
    """§2.1: patients and appointments use GUIDs; providers, locations, resources integers."""
    item = api.get("/v2/appointments").json()[0]["appointment"]
    assert re.fullmatch(r"[0-9a-f-]{36}", item["id"])
    assert re.fullmatch(r"[0-9a-f-]{36}", item["patient"]["id"])
    assert all(isinstance(item[k], int) for k in ("provider_id", "resource_id", "visit_reason_id"))


def test_lists_are_active_only_and_show_on_inactive_is_404(api: httpx.Client) -> None:
    """§2.1 release notes 2015-06: only Active visit reasons, resources, providers."""
    assert personas.INACTIVE_VISIT_REASON not in {
        v["id"] for v in api.get("/v2/visit_reasons").json()
    }
    assert api.get(f"/v2/appointment_resources/{personas.INACTIVE_RESOURCE_ID}").status_code == 404


def test_legacy_aliases_inside_v2(api: httpx.Client) -> None:
    """§2.1: /v2/appointment/statuses, /v2/nature_of_visits, /v2/provider/list aliases."""
    for alias, path in (
        ("/v2/appointment/statuses", "/v2/appointment_statuses"),
        ("/v2/nature_of_visits", "/v2/visit_reasons"),
        ("/v2/provider/list", "/v2/providers"),
        ("/v2/appointment/resources", "/v2/appointment_resources"),
        ("/v2/appointment/locations", "/v2/locations"),
    ):
        assert api.get(alias).json() == api.get(path).json()


def test_create_appointment_permit_list_aliases_and_end_from_duration(
    api: httpx.Client, live: LiveTenant
) -> None:
    """§2.5 Create appointment: visit_reason_id -> nature_of_visit_id, chief_complaint ->
    reason_for_visit, patient or patients, unknown keys dropped, end time from duration."""
    start = live.free_start("2026-12-08", minutes=40)
    r = api.post(
        "/v2/appointments",
        json={
            "appointment": {
                "start_time": start,
                "provider_id": personas.PROVIDER_ID,
                "resource_id": personas.RESOURCE_ID,
                "visit_reason_id": personas.VISIT_NEW,
                "chief_complaint": "new",
                "nonsense": 1,
                "patients": [{"id": personas.CASEY.id, "comments": "from patients[0]"}],
            }
        },
    )
    assert r.status_code == 201
    assert set(r.json()) == {"appointment"}
    shown = api.get(f"/v2/appointments/{r.json()['appointment']}").json()["appointment"]
    assert shown["visit_reason_id"] == personas.VISIT_NEW
    assert shown["chief_complaint"] == "new"
    assert shown["comments"] == "from patients[0]"
    assert (
        shown["end_time"][11:16]
        == f"{int(start[11:13]) + (int(start[14:16]) + 40) // 60:02d}:{(int(start[14:16]) + 40) % 60:02d}"
    )


def test_top_level_comments_override_patients_comments(api: httpx.Client, live: LiveTenant) -> None:
    """§2.5 Create appointment: top-level comments overrides patients[0].comments."""
    r = api.post(
        "/v2/appointments",
        json={
            "appointment": {
                "start_time": live.free_start("2026-12-09", minutes=15),
                "provider_id": personas.PROVIDER_ID,
                "resource_id": personas.RESOURCE_ID,
                "visit_reason_id": personas.VISIT_FOLLOW_UP,
                "comments": "top",
                "patients": [{"id": personas.MIA.id, "comments": "inner"}],
            }
        },
    )
    assert (
        api.get(f"/v2/appointments/{r.json()['appointment']}").json()["appointment"]["comments"]
        == "top"
    )


def test_search_needs_exactly_one_of_terms_or_fields(api: httpx.Client) -> None:
    """§2.5 Search patients: exactly one of terms/fields, else 400 with the documented text."""
    text = (
        "You must search by either a list of terms, by creation date, or specific terms "
        "against specific fields."
    )
    for body in ({}, {"terms": ["a"], "fields": {"last_name": "a"}}):
        r = api.post("/v2/patients/search", json=body)
        assert (r.status_code, r.json()) == (400, {"error": text})


def test_search_dob_accepts_every_documented_format(api: httpx.Client) -> None:
    """§2.5 Search patients: dob as MM/DD/YYYY, MM-DD-YYYY, MMDDYYYY, MMDDYY, MM/DD/YY, MM-DD-YY."""
    for dob in ("03/14/1984", "03-14-1984", "03141984", "031484", "03/14/84", "03-14-84"):
        found = api.post(
            "/v2/patients/search", json={"fields": {"last_name": "Sandbox", "dob": dob}}
        )
        assert [p["id"] for p in found.json()["patients"]] == [personas.JORDAN.id], dob


def test_create_patient_returns_201_guid_and_drops_invalid_codes(api: httpx.Client) -> None:
    """§2.5 Create patient: 201 {"patient": "<guid>"}; an invalid code option does not fail."""
    r = api.post(
        "/v2/patients",
        json={
            "patient": {
                "first_name": "Lee",
                "last_name": "Codetest",
                "gender_code": "Z",
                "ethnicity_code": "Q",
            }
        },
    )
    assert r.status_code == 201
    shown = api.get(f"/v2/patients/{r.json()['patient']}").json()["patient"]
    assert (shown["gender_code"], shown["ethnicity_code"]) == (None, None)


def test_insurance_profile_shape_and_ruby_decimal_money(api: httpx.Client) -> None:
    """§2.5 Insurance: insurance_profiles with policies; co_payment like "25.0"; payer_pending?."""
    profiles = api.get(f"/v2/patients/{personas.JORDAN.id}/insurances").json()["insurance_profiles"]
    policy = profiles[0]["insurance_policies"][0]
    assert re.fullmatch(r"\d+\.\d{1,2}", policy["co_payment"])
    assert "payer_pending?" in policy["payer"]


def test_statuses_wrapper_and_codes(api: httpx.Client) -> None:
    """§2.5 Statuses and §2.6: [{"appointment_status": {id, code, name}}] with P I O C R."""
    codes = {s["appointment_status"]["code"] for s in api.get("/v2/appointment_statuses").json()}
    assert {"P", "I", "O", "C", "R"} <= codes


def test_visit_reasons_are_a_bare_array(api: httpx.Client) -> None:
    """§2.5 Visit reasons: a bare array of {id, name, description}."""
    reasons = api.get("/v2/visit_reasons").json()
    assert set(reasons[0]) == {"id", "name", "description"}


def test_providers_and_locations_wrappers(api: httpx.Client) -> None:
    """§2.5 Providers {"providers": [...]} and Locations {"locations": [...]}."""
    provider = api.get("/v2/providers").json()["providers"][0]
    assert set(provider) == {
        "id",
        "npi",
        "name",
        "email",
        "phone_number",
        "specialty",
        "last_name",
        "first_name",
    }
    location = api.get("/v2/locations").json()["locations"][0]
    assert {"place_of_service_code", "address", "phones"} <= set(location)


def test_resource_show_exposes_default_provider(api: httpx.Client) -> None:
    """§2.5 Create appointment: GET /appointment_resources/{id} exposes default_provider{id,name}."""
    body = api.get(f"/v2/appointment_resources/{personas.RESOURCE_ID}").json()["resource"]
    assert set(body["default_provider"]) == {"id", "name"}


def test_availability_dow_default_and_100_slot_cap(api: httpx.Client) -> None:
    """§2.5 Availability: dow default 0111110 (no weekend slots); at most 100 slots."""
    groups = api.get(
        "/v2/appointment_availability",
        params={
            "start_date": "2026-11-30",
            "end_date": "2027-02-01",
            "visit_reason_id": personas.VISIT_FOLLOW_UP,
        },
    ).json()
    slots = [s for g in groups for s in g["slots"]]
    assert len(slots) == 100
    assert set(groups[0]) == {"location", "visit_reason", "resource", "slots"}


def test_cancel_after_check_out_is_422(api: httpx.Client) -> None:
    """§2.3 / §6.1: cancel of a non-cancellable appointment gives 422 with a detailed message."""
    guid = api.get(
        "/v2/appointments",
        params={"start_date": "2026-11-02", "end_date": "2026-11-20", "status": "O"},
    ).json()[0]["appointment"]["id"]
    r = api.put(f"/v2/appointments/{guid}/cancel", json={"appointment_cancellation_reason_id": "4"})
    assert r.status_code == 422
    assert "Checked Out" in r.json()["error"]


def test_rate_limit_body_is_api_gateways_default(live: LiveTenant) -> None:
    """§2.3 Rate limits [INF]: 429 {"message":"Too Many Requests"} is API Gateway's default."""
    with live.client() as c:
        c.post("/_sandbox/faults", json={"pattern": "/v2/payers", "rate_429": 1.0, "count": 1})
    with live.client(live.token(0)) as c:
        r = c.get("/v2/payers")
    assert (r.status_code, r.json()) == (429, {"message": "Too Many Requests"})
