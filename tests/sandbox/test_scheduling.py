"""Reference lists and the availability search, over real HTTP."""

from __future__ import annotations

import httpx
from tests.support.sandbox import LiveTenant

from carecloud_sandbox import personas


def test_lists_are_active_only_and_wrapped(api: httpx.Client) -> None:
    resources = api.get("/v2/appointment_resources").json()
    ids = {r["resource"]["id"] for r in resources}
    assert personas.RESOURCE_ID in ids
    assert personas.INACTIVE_RESOURCE_ID not in ids
    reasons = api.get("/v2/visit_reasons").json()
    assert {r["id"] for r in reasons} >= {v.id for v in personas.VISIT_REASONS}
    assert personas.INACTIVE_VISIT_REASON not in {r["id"] for r in reasons}
    providers = api.get("/v2/providers").json()["providers"]
    assert personas.INACTIVE_PROVIDER_ID not in {p["id"] for p in providers}
    assert api.get(f"/v2/appointment_resources/{personas.INACTIVE_RESOURCE_ID}").status_code == 404


def test_resource_show_has_default_provider(api: httpx.Client) -> None:
    body = api.get(f"/v2/appointment_resources/{personas.RESOURCE_ID}").json()["resource"]
    assert body["default_provider"]["id"] == personas.PROVIDER_ID
    assert api.get("/v2/appointment_resources/abc").status_code == 400


def test_aliases_answer_like_their_paths(api: httpx.Client) -> None:
    assert api.get("/v2/nature_of_visits").json() == api.get("/v2/visit_reasons").json()
    assert api.get("/v2/provider/list").json() == api.get("/v2/providers").json()
    assert api.get("/v2/appointment/statuses").json() == api.get("/v2/appointment_statuses").json()


def test_cancellation_reasons_global_only(api: httpx.Client) -> None:
    everything = api.get("/v2/appointment_cancellation_reasons").json()
    only_global = api.get(
        "/v2/appointment_cancellation_reasons", params={"global_only": "true"}
    ).json()
    assert len(only_global) < len(everything)
    assert all(
        r["appointment_cancellation_reason"]["business_entity_id"] is None for r in only_global
    )


def test_templates_page_size_is_twenty(api: httpx.Client) -> None:
    r = api.get("/v2/appointment_templates")
    assert len(r.json()) <= 20
    assert 'rel="first", ' in r.headers["link"]


def _search(api: httpx.Client, **params: object) -> httpx.Response:
    base = {
        "start_date": "2026-11-30",
        "visit_reason_id": personas.VISIT_ESTABLISHED,
        "resource_ids": personas.RESOURCE_ID,
    }
    return api.get("/v2/appointment_availability", params={**base, **params})


def test_availability_is_capped_at_100_slots(api: httpx.Client) -> None:
    r = _search(api, end_date="2027-01-20")
    slots = [s for group in r.json() for s in group["slots"]]
    assert len(slots) == 100


def test_availability_subtracts_booked_slots(api: httpx.Client, live: LiveTenant) -> None:
    before = [s for g in _search(api, end_date="2026-12-07").json() for s in g["slots"]]
    first = before[0]
    booked = api.post(
        "/v2/appointments",
        json={
            "appointment": {
                "start_time": first["start_time"],
                "provider_id": personas.PROVIDER_ID,
                "resource_id": personas.RESOURCE_ID,
                "location_id": personas.LOCATION_ID,
                "visit_reason_id": personas.VISIT_ESTABLISHED,
                "patient": {"id": personas.MIA.id},
            }
        },
    )
    assert booked.status_code == 201
    after = [s for g in _search(api, end_date="2026-12-07").json() for s in g["slots"]]
    assert first not in after


def test_availability_respects_dow_and_blockouts(api: httpx.Client) -> None:
    none = _search(api, dow="1000001", end_date="2026-12-13").json()
    assert none == []
    holiday = _search(api, start_date="2026-11-26", end_date="2026-11-26").json()
    assert holiday == [], "the generated holiday blocks the whole day"


def test_availability_bad_input(api: httpx.Client) -> None:
    assert _search(api, dow="0111").status_code == 400
    assert _search(api, start_date="2026-02-30").status_code == 400
    assert _search(api, visit_reason_id="x").status_code == 400
    assert _search(api, meridian="noon").status_code == 400
    assert api.get("/v2/appointment_availability").status_code == 400


def test_payer_search_and_plans(api: httpx.Client) -> None:
    found = api.post("/v2/payers/search", json={"name": "aet"}).json()["payers"]
    assert [p["id"] for p in found] == [personas.PAYER_ID]
    plans = api.get(f"/v2/payers/{personas.PAYER_ID}/plans").json()["plans"]
    assert plans
    assert {"id", "name", "insurance_policy_type"} <= set(plans[0])
    assert api.post("/v2/payers/search", json={"name": "a"}).status_code == 400
    assert (
        api.post(
            "/v2/payers/search", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert api.get("/v2/payers/abc/plans").status_code == 400
    assert api.get("/v2/payers/999999/plans").status_code == 404


def test_template_and_blockout_occurrences_are_local_and_follow_their_days(
    api: httpx.Client,
) -> None:
    template = api.get(
        f"/v2/appointment_resources/{personas.RESOURCE_ID}/appointment_templates"
    ).json()[0]["appointment_template"]
    occurrences = template["occurrences"]
    assert occurrences, "weekday templates occur in the next two weeks"
    assert all(o["start_at"].endswith("-06:00") for o in occurrences)
    assert {o["start_at"][11:16] for o in occurrences} == {f"{template['start_at']}"[:5]}
    holiday = next(
        b["appointment_blockout"]
        for b in api.get("/v2/appointment_blockouts").json()
        if b["appointment_blockout"]["name"] == "Office closed"
    )
    assert [o["start_at"][:10] for o in holiday["occurrences"]] == ["2026-11-26"]
