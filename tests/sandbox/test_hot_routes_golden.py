"""The routes a sync reads most answer byte for byte what the recorded golden file says.

A fresh tenant (seed 42, 60 patients, 60 visits each, 2 practices) on the fixed manual clock
answers a fixed sequence of requests over HTTP: a patient's show and balance, patient search,
appointment pages with their ``Link`` header, providers, locations, visit reasons, a Connector
``Patient`` search page and the next one, the portal's patient list, and the error answers (an
unknown patient, a malformed id, a missing or unknown token, a missing privilege, an unknown
path, a wrong method, the hidden rate limit's 429, injected faults, a drift release). Each
answer is recorded as its status, its headers in order (``date`` left out, the tenant's base
URL written ``{base}``) and the SHA-256 and length of its body (a searchset Bundle's random
``id`` written as zeros).

The golden file (``golden/hot_routes.json``) pins the emulator's wire answers while its hot
paths are made cheaper. When a change is meant to alter an answer, rewrite it with
``.venv/bin/python -m tests.sandbox.test_hot_routes_golden`` and review the diff.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.support.sandbox import (
    ANCHOR,
    LiveTenant,
    fhir_base,
    portal_login,
    portal_persona,
    smart_token,
    start_live,
)

from carecloud_sandbox import personas
from carecloud_sandbox.config import SandboxConfig

GOLDEN = Path(__file__).with_name("golden") / "hot_routes.json"
BUNDLE_ID = re.compile(rb'^\{"resourceType":"Bundle","id":"[0-9a-f-]{36}"')
ZERO_BUNDLE_ID = b'{"resourceType":"Bundle","id":"00000000-0000-0000-0000-000000000000"'
UNKNOWN_GUID = "00000000-0000-4000-8000-000000000000"


def _record(name: str, response: httpx.Response, base_url: str) -> dict[str, Any]:
    body = BUNDLE_ID.sub(ZERO_BUNDLE_ID, response.content)
    headers = [
        [k.decode("latin-1"), v.decode("latin-1").replace(base_url, "{base}")]
        for k, v in response.headers.raw
        if k.lower() != b"date"
    ]
    return {
        "name": name,
        "status": response.status_code,
        "headers": headers,
        "body_sha256": hashlib.sha256(body.replace(base_url.encode(), b"{base}")).hexdigest(),
        "body_length": len(body),
    }


def capture(live: LiveTenant) -> list[dict[str, Any]]:
    """Make the fixed sequence of requests and record each answer."""
    base = live.base_url
    db = live.tenant.db
    guids = [personas.JORDAN.id] + [
        str(r["id"])
        for r in db.all(
            "SELECT id FROM patients WHERE practice_id = 1 AND id != ? ORDER BY internal_id "
            "LIMIT 6",
            (personas.JORDAN.id,),
        )
    ]
    internal = int(db.scalar("SELECT internal_id FROM patients WHERE id = ?", (guids[1],)))
    token = live.token(0)
    limited = live.token(0, live.credentials["limited_client"]["client_id"])
    out: list[dict[str, Any]] = []

    with live.client(token) as v2, live.client() as anon, live.client(limited) as ro:

        def get(name: str, client: httpx.Client, path: str, **params: Any) -> httpx.Response:
            response = client.get(path, params=params or None)
            out.append(_record(name, response, base))
            return response

        for guid in guids:
            get(f"show {guid}", v2, f"/v2/patients/{guid}")
            get(f"balance {guid}", v2, f"/v2/patients/{guid}/balance")
        get("show by internal id", v2, f"/v2/patients/{internal}")
        get("show upper-case guid", v2, f"/v2/patients/{guids[2].upper()}")
        get("show, limited client", ro, f"/v2/patients/{guids[0]}")
        get("balance, limited client", ro, f"/v2/patients/{guids[0]}/balance")
        for name, body in (
            ("search by a term", {"terms": [personas.JORDAN.last_name]}),
            ("search by two terms", {"terms": ["a", "e"], "limit": 100}),
            ("search by fields", {"fields": {"last_name": personas.JORDAN.last_name}}),
            ("search without terms or fields", {}),
        ):
            out.append(_record(name, v2.post("/v2/patients/search", json=body), base))
        window = {"start_date": "2026-09-01", "end_date": "2027-01-31"}
        first = get("appointments page 1", v2, "/v2/appointments", **window)
        get("appointments page 2", v2, "/v2/appointments", **window, page="2")
        last = re.search(r'<([^>]*)>; rel="last"', first.headers["link"])
        assert last is not None
        get("appointments last page", v2, last.group(1))
        get("appointments page past the end", v2, "/v2/appointments", **window, page="999")
        get("providers", v2, "/v2/providers")
        get("locations", v2, "/v2/locations")
        get("visit reasons", v2, "/v2/visit_reasons")
        get("appointment resources", v2, "/v2/appointment_resources")

        get("unknown patient", v2, f"/v2/patients/{UNKNOWN_GUID}")
        get("unknown patient balance", v2, f"/v2/patients/{UNKNOWN_GUID}/balance")
        get("malformed patient id", v2, "/v2/patients/not-a-guid")
        get("no token", anon, f"/v2/patients/{guids[0]}")
        with live.client("not-a-real-token") as bad:
            get("unknown token", bad, f"/v2/patients/{guids[0]}")
            get("unknown token, balance", bad, f"/v2/patients/{guids[0]}/balance")
        response = ro.post("/v2/patients", json={"first_name": "A", "last_name": "B"})
        out.append(_record("create without the privilege", response, base))
        get("unknown path", v2, "/v2/nothing-here")
        out.append(_record("wrong method", v2.delete("/v2/providers"), base))

        # The hidden limit: a bucket of 2 on a clock that does not move.
        anon.put("/_sandbox/settings", json={"rate_limit_rps": 1, "rate_limit_burst": 2})
        for i in range(3):
            get(f"rate limited {i}", v2, f"/v2/patients/{guids[0]}")
        anon.put("/_sandbox/settings", json={"rate_limit_rps": 0})

        anon.post(
            "/_sandbox/faults", json={"pattern": "/v2/locations", "error_rate": 1, "count": 1}
        )
        get("fault 503", v2, "/v2/locations")
        anon.post(
            "/_sandbox/faults",
            json={"pattern": "/v2/patients/*", "rate_429": 1, "retry_after": 7, "count": 1},
        )
        get("fault 429", v2, f"/v2/patients/{guids[0]}")
        get("after the faults", v2, f"/v2/patients/{guids[0]}")
        anon.post("/_sandbox/drift/releases/2026-12-additive")
        get("drift show", v2, f"/v2/patients/{guids[0]}")
        get("drift appointments", v2, "/v2/appointments", **window)
        anon.delete("/_sandbox/drift")

    with httpx.Client(timeout=10) as fhir:
        fhir.headers["Authorization"] = f"Bearer {smart_token(live, http=fhir)}"
        url = f"{fhir_base(live)}/Patient"
        response = fhir.get(url, params={"_count": "25"})
        out.append(_record("fhir Patient page 1", response, base))
        following = [link["url"] for link in response.json()["link"] if link["relation"] == "next"]
        out.append(_record("fhir Patient page 2", fhir.get(following[0]), base))
        response = fhir.get(url, params={"_count": "1000"})
        out.append(_record("fhir Patient page of 1000", response, base))
        response = fhir.get(url, params={"_count": "25", "family": personas.JORDAN.last_name})
        out.append(_record("fhir Patient by family", response, base))

    with live.client() as portal:
        portal_login(live, portal, portal_persona(live))
        for page in ("1", "2"):
            response = portal.get("/portal/api/patients", params={"page": page, "pageSize": "25"})
            out.append(_record(f"portal patients page {page}", response, base))
        response = portal.get("/portal/api/patients", params={"pageSize": "100"})
        out.append(_record("portal patients page of 100", response, base))
    return out


def _run() -> list[dict[str, Any]]:
    config = SandboxConfig(
        seed=42, patients=60, practices=2, anchor=ANCHOR, appointments_per_patient=60
    )
    live, stop = start_live(config)
    try:
        return capture(live)
    finally:
        stop()


def test_hot_routes_answer_the_recorded_bytes() -> None:
    answers = _run()
    golden = orjson.loads(GOLDEN.read_bytes())
    assert [a["name"] for a in answers] == [g["name"] for g in golden]
    for answer, recorded in zip(answers, golden, strict=True):
        assert answer == recorded, answer["name"]


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_bytes(orjson.dumps(_run(), option=orjson.OPT_INDENT_2) + b"\n")
