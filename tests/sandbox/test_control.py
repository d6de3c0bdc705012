"""The control plane: faults, drift, the hidden rate limit, settings and ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import orjson
import pytest
from tests.support.sandbox import ANCHOR, LiveTenant, start_live

from carecloud_sandbox import personas
from carecloud_sandbox.config import SandboxConfig


@pytest.fixture(autouse=True)
def _reset(live: LiveTenant) -> Iterator[None]:
    yield
    with live.client() as c:
        c.delete("/_sandbox/faults")
        c.delete("/_sandbox/drift")


def test_error_fault_answers_5xx_only_on_matching_routes(
    live: LiveTenant, api: httpx.Client
) -> None:
    with live.client() as c:
        rule = c.post(
            "/_sandbox/faults", json={"pattern": "/v2/providers", "error_rate": 1.0, "status": 502}
        )
    assert rule.status_code == 201
    hit = api.get("/v2/providers")
    assert hit.status_code == 502
    assert "error" in hit.json()
    assert api.get("/v2/locations").status_code == 200


def test_429_fault_carries_retry_after_and_expires_after_count(
    live: LiveTenant, api: httpx.Client
) -> None:
    with live.client() as c:
        c.post(
            "/_sandbox/faults",
            json={"pattern": "/v2/locations", "rate_429": 1.0, "retry_after": 7, "count": 2},
        )
    first, second, third = (api.get("/v2/locations") for _ in range(3))
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert second.status_code == 429
    assert third.status_code == 200


def test_dropped_connection_is_seen_by_the_client_as_a_protocol_error(
    live: LiveTenant, api: httpx.Client
) -> None:
    with live.client() as c:
        c.post(
            "/_sandbox/faults", json={"pattern": "/v2/visit_reasons", "drop_rate": 1.0, "count": 1}
        )
    with pytest.raises(httpx.TransportError):
        api.get("/v2/visit_reasons")
    assert api.get("/v2/visit_reasons").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"pattern": "v2"},
        {"pattern": "/v2", "error_rate": 2},
        {"pattern": "/v2", "status": 404},
        {"pattern": "/v2", "bogus": 1},
        {"pattern": "/v2", "count": 0},
    ],
)
def test_bad_fault_rules_are_refused(live: LiveTenant, body: dict[str, object]) -> None:
    with live.client() as c:
        r = c.post("/_sandbox/faults", json=body)
        assert r.status_code == 400
        assert c.get("/_sandbox/faults").json() == []


def test_drift_renames_retypes_and_adds_then_clears(live: LiveTenant, api: httpx.Client) -> None:
    url = f"/v2/patients/{personas.JORDAN.id}"
    with live.client() as c:
        r = c.post(
            "/_sandbox/drift",
            json={
                "endpoint": "GET /v2/patients/*",
                "rename": {"patient.first_name": "patient.given_name"},
                "retype": {"patient.status_id": "string"},
                "add": {"patient.pronouns": "they/them"},
            },
        )
    assert r.status_code == 201
    drifted = api.get(url).json()["patient"]
    assert "first_name" not in drifted
    assert drifted["given_name"] == personas.JORDAN.first_name
    assert drifted["status_id"] == "1"
    assert drifted["pronouns"] == "they/them"
    with live.client() as c:
        c.delete("/_sandbox/drift")
    assert api.get(url).json()["patient"]["first_name"] == personas.JORDAN.first_name


def test_drift_release_preset_reaches_into_list_items(live: LiveTenant, api: httpx.Client) -> None:
    with live.client() as c:
        assert c.post("/_sandbox/drift/releases/2026-12-breaking").status_code == 201
        assert c.post("/_sandbox/drift/releases/nope").status_code == 404
    items = api.get(
        "/v2/appointments", params={"start_date": "2026-11-02", "end_date": "2026-11-03"}
    ).json()
    assert items
    assert all(isinstance(i["appointment"]["provider_id"], str) for i in items)


def test_bad_drift_rules_are_refused(live: LiveTenant) -> None:
    with live.client() as c:
        assert c.post("/_sandbox/drift", json={"endpoint": "/v2"}).status_code == 400
        assert c.post("/_sandbox/drift", json={"endpoint": "GET /v2/x"}).status_code == 400
        assert (
            c.post(
                "/_sandbox/drift", json={"endpoint": "GET /v2/x", "retype": {"a": "date"}}
            ).status_code
            == 400
        )


def test_truth_dump_streams_every_row_as_ndjson(live: LiveTenant) -> None:
    with live.client() as c:
        index = c.get("/_sandbox/truth").json()
        lines = c.get("/_sandbox/truth/appointments").text.splitlines()
        practice_two = c.get(
            "/_sandbox/truth/patients", params={"practice_id": 2}
        ).text.splitlines()
        assert c.get("/_sandbox/truth/secrets").status_code == 404
    assert len(lines) == index["appointments"] > 1000
    assert len({orjson.loads(line)["id"] for line in lines}) == len(lines)
    assert {orjson.loads(line)["practice_id"] for line in practice_two} == {2}


def test_settings_change_token_ttl_at_run_time(live: LiveTenant) -> None:
    with live.client() as c:
        assert c.put("/_sandbox/settings", json={"access_token_ttl": "x"}).status_code == 400
        assert c.put("/_sandbox/settings", json={"nope": 1}).status_code == 400
        assert (
            c.put("/_sandbox/settings", json={"access_token_ttl": 90}).json()["access_token_ttl"]
            == 90
        )
    with live.client(live.token(0)) as c:
        assert c.get("/oauth2/token_info").json()["expires_in"] == 90
    with live.client() as c:
        c.put("/_sandbox/settings", json={"access_token_ttl": 3600})


@pytest.fixture(scope="module")
def limited() -> Iterator[LiveTenant]:
    config = SandboxConfig(
        seed=3, patients=10, practices=1, anchor=ANCHOR, rate_limit_rps=2, rate_limit_burst=3
    )
    live, stop = start_live(config)
    yield live
    stop()


def test_hidden_rate_limit_is_silent_until_exceeded_and_refills_with_the_clock(
    limited: LiveTenant,
) -> None:
    token = limited.token(0)  # spends one request of the token endpoint's own (IP) bucket
    with limited.client(token) as c:
        answers = [c.get("/v2/locations") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].json() == {"message": "Too Many Requests"}
        assert not any(
            "ratelimit" in h.lower() or h.lower() == "retry-after" for h in answers[0].headers
        )
        limited.clock.advance(timedelta(seconds=1))
        assert c.get("/v2/locations").status_code == 200
