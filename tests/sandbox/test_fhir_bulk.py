"""Bulk Data export of the Connector: kick-off, polling on the tenant clock, manifest, NDJSON
files, ``_type``, ``_since`` and cancellation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from tests.support.sandbox import LiveTenant, fhir_base, smart_credentials, smart_token


@pytest.fixture(scope="module")
def live(fhir_live: LiveTenant) -> LiveTenant:
    """The Connector modules share one tenant (see ``fhir_live``)."""
    return fhir_live


ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture
def headers(live: LiveTenant, fhir_http: httpx.Client) -> dict[str, str]:
    """Fresh bearer headers (tests move the clock past a token's lifetime)."""
    return {"Authorization": f"Bearer {smart_token(live, http=fhir_http)}"}


def _group_url(live: LiveTenant) -> str:
    group = smart_credentials(live)["practices"][0]["group_id"]
    return f"{fhir_base(live)}/Group/{group}/$export"


def _kickoff(http: httpx.Client, url: str, headers: dict[str, str], **params: str) -> str:
    r = http.get(url, params=params, headers={**headers, **ASYNC})
    assert r.status_code == 202, r.text
    location = r.headers["content-location"]
    assert location.startswith(url.split("/Group/")[0].split("/Patient/")[0])
    return str(location)


def _finish(
    live: LiveTenant, http: httpx.Client, status_url: str, headers: dict[str, str]
) -> dict[str, Any]:
    live.clock.advance(timedelta(seconds=live.tenant.config.bulk_export_seconds))
    r = http.get(status_url, headers=headers)
    assert r.status_code == 200, r.text
    manifest: dict[str, Any] = r.json()
    return manifest


def _lines(http: httpx.Client, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = http.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+ndjson")
    return [orjson.loads(line) for line in r.content.splitlines() if line.strip()]


def test_group_export_polls_on_the_tenant_clock_then_serves_the_manifest(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    url = _group_url(live)
    started = live.clock.now()
    status_url = _kickoff(fhir_http, url, headers, _type="Patient,Condition")
    poll = fhir_http.get(status_url, headers=headers)
    assert poll.status_code == 202
    assert poll.headers["x-progress"]
    assert int(poll.headers["retry-after"]) == live.tenant.config.bulk_export_seconds
    live.clock.advance(timedelta(seconds=live.tenant.config.bulk_export_seconds - 1))
    almost = fhir_http.get(status_url, headers=headers)
    assert almost.status_code == 202
    assert almost.headers["retry-after"] == "1"
    manifest = _finish(live, fhir_http, status_url, headers)
    assert manifest["transactionTime"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert manifest["request"] == f"{url}?_type=Patient%2CCondition"
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Condition"]
    patients = _lines(fhir_http, manifest["output"][0]["url"], headers)
    truth = live.tenant.db.scalar("SELECT COUNT(*) FROM patients WHERE practice_id = 1")
    assert len(patients) == truth == manifest["output"][0]["count"]
    assert {p["resourceType"] for p in patients} == {"Patient"}
    assert len({p["id"] for p in patients}) == len(patients)
    conditions = _lines(fhir_http, manifest["output"][1]["url"], headers)
    assert len(conditions) == live.tenant.db.scalar(
        "SELECT COUNT(*) FROM problems WHERE practice_id = 1"
    )


def test_files_need_the_token_of_the_exporting_client(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    status_url = _kickoff(fhir_http, _group_url(live), headers, _type="Location")
    manifest = _finish(live, fhir_http, status_url, headers)
    file_url = manifest["output"][0]["url"]
    anonymous = fhir_http.get(file_url)
    assert anonymous.status_code == 401
    assert anonymous.json()["resourceType"] == "OperationOutcome"
    assert fhir_http.get(status_url).status_code == 401
    missing = fhir_http.get(file_url.replace("Location.ndjson", "Patient.ndjson"), headers=headers)
    assert missing.status_code == 404


def test_patient_level_export_of_every_type(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    url = f"{fhir_base(live)}/Patient/$export"
    manifest = _finish(live, fhir_http, _kickoff(fhir_http, url, headers), headers)
    types = [o["type"] for o in manifest["output"]]
    assert {"Patient", "Encounter", "Observation", "Coverage", "Organization"} <= set(types)
    for output in manifest["output"]:
        if output["type"] in ("Observation", "Encounter"):
            continue
        lines = _lines(fhir_http, output["url"], headers)
        assert len(lines) == output["count"]
        assert {r["resourceType"] for r in lines} == {output["type"]}


def test_since_exports_only_what_changed(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    url = _group_url(live)
    first = _finish(live, fhir_http, _kickoff(fhir_http, url, headers, _type="Patient"), headers)
    since = first["transactionTime"]
    changed = live.tenant.db.scalar(
        "SELECT id FROM patients WHERE practice_id = 1 ORDER BY internal_id LIMIT 1 OFFSET 3"
    )
    with live.tenant.db.transaction() as conn:
        conn.execute(
            "UPDATE patients SET updated_at = ? WHERE id = ?", (live.tenant.now_db(), changed)
        )
    live.clock.advance(timedelta(seconds=1))
    second = _finish(
        live, fhir_http, _kickoff(fhir_http, url, headers, _type="Patient", _since=since), headers
    )
    lines = _lines(fhir_http, second["output"][0]["url"], headers)
    assert len(lines) == 1
    assert lines[0]["meta"]["lastUpdated"] > since
    nothing = _finish(
        live,
        fhir_http,
        _kickoff(fhir_http, url, headers, _type="Patient", _since=second["transactionTime"]),
        headers,
    )
    assert nothing["output"] == []


def test_delete_cancels_an_export(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    status_url = _kickoff(fhir_http, _group_url(live), headers, _type="Patient")
    cancelled = fhir_http.delete(status_url, headers=headers)
    assert cancelled.status_code == 202
    assert fhir_http.get(status_url, headers=headers).status_code == 404
    assert fhir_http.delete(status_url, headers=headers).status_code == 404
    live.clock.advance(timedelta(seconds=live.tenant.config.bulk_export_seconds))
    gone = fhir_http.get(status_url, headers=headers)
    assert gone.status_code == 404
    assert gone.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("params", "prefer", "status"),
    [
        ({}, False, 400),
        ({"_type": "Patient,Spaceship"}, True, 400),
        ({"_type": "Procedure"}, True, 400),
        ({"_type": ""}, True, 400),
        ({"_since": "last week"}, True, 400),
        ({"_outputFormat": "text/csv"}, True, 400),
        ({"_typeFilter": "Patient?active=true"}, True, 400),
    ],
)
def test_bad_kickoffs_are_operation_outcomes(
    live: LiveTenant,
    fhir_http: httpx.Client,
    headers: dict[str, str],
    params: dict[str, str],
    prefer: bool,
    status: int,
) -> None:
    extra = ASYNC if prefer else {"Accept": "application/fhir+json"}
    r = fhir_http.get(_group_url(live), params=params, headers={**headers, **extra})
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_export_respects_scopes_and_groups(live: LiveTenant, fhir_http: httpx.Client) -> None:
    narrow = {"Authorization": f"Bearer {smart_token(live, 'system/Patient.read', http=fhir_http)}"}
    url = _group_url(live)
    denied = fhir_http.get(url, params={"_type": "Observation"}, headers={**narrow, **ASYNC})
    assert denied.status_code == 403
    manifest = _finish(live, fhir_http, _kickoff(fhir_http, url, narrow), narrow)
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    wrong_group = url.replace("/Group/grp-", "/Group/other-")
    assert fhir_http.get(wrong_group, headers={**narrow, **ASYNC}).status_code == 404


def test_group_read(live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]) -> None:
    group_id = smart_credentials(live)["practices"][0]["group_id"]
    r = fhir_http.get(f"{fhir_base(live)}/Group/{group_id}", headers=headers)
    assert r.status_code == 200
    group = r.json()
    assert group["id"] == group_id
    assert group["type"] == "person"
    assert group["actual"] is True
    truth = live.tenant.db.scalar("SELECT COUNT(*) FROM patients WHERE practice_id = 1")
    assert group["quantity"] == len(group["member"]) == truth
