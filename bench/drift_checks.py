"""CPU per payload of the connector's drift checks (``drift.check`` / ``check_list`` /
``check_as``) on real sandbox payloads.

Run: ``PYTHONPATH=. .venv/bin/python bench/drift_checks.py`` (``ROUNDS``, 7; ``CAPTURE``, a
JSON file to keep the captured payloads in between runs).

An emulated tenant (seed 42, 300 patients, one practice) is generated in process and served
through the test harness: 200 patient shows (``GET /v2/patients/{id}``), their balances, one
page of appointments (``GET /v2/appointments``, up to 100) and the Connector's FHIR Patient
search as one bundle (``_count=1000``). Then, in interleaved rounds (CPU time,
``time.process_time``), each payload is checked as the connector checks it, into one drift
report, with ``compare`` and with ``compare_ordered`` (one object at a time, as ``compare`` was
before it went a level at a time), beside pydantic's validation alone (the floor of a check);
and, for the comparison alone, ``compare``, ``compare_ordered`` and ``compare_walk`` (the plain
walk). It prints µs of CPU per payload per kind: median and spread (min-max) of the rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.drift_compare import compare, compare_ordered, compare_walk
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import v2 as vw

ROUNDS = int(os.environ.get("ROUNDS", "7"))
CAPTURE = os.environ.get("CAPTURE", "")


def capture() -> dict[str, list[Any]]:
    """Real payloads of the four kinds, served by an in-process sandbox."""
    from tests.connectors.harness import open_tenant
    from tests.support.sandbox import ANCHOR, fhir_base, smart_token

    from carecloud_sandbox.config import SandboxConfig

    config = SandboxConfig(seed=42, patients=300, practices=1, anchor=ANCHOR)
    live, transport = open_tenant(config)
    try:
        token = live.credentials["practices"][0]["refresh_token"]
        with live.client() as c:
            grant = c.post(
                "/oauth2/access_token",
                auth=(live.credentials["client_id"], live.credentials["client_secret"]),
                data={"grant_type": "refresh_token", "refresh_token": token},
            )
        access = grant.json()["access_token"]
        with live.client(access) as c:
            rows = live.tenant.db.all("SELECT id FROM patients ORDER BY internal_id LIMIT 200")
            shows = [c.get(f"/v2/patients/{r[0]}").json() for r in rows]
            balances = [c.get(f"/v2/patients/{r[0]}/balance").json() for r in rows]
            page = c.get(
                "/v2/appointments",
                params={"start_date": "2026-11-01", "end_date": "2026-12-31", "per_page": 100},
            ).json()
        with live.client(smart_token(live)) as c:
            c.base_url = fhir_base(live)
            bundle = c.get(f"{fhir_base(live)}/Patient", params={"_count": 1000}).json()
    finally:
        transport.shut()
        live.tenant.db.close()
    return {"show": shows, "balance": balances, "appointments": [page], "fhir": [bundle]}


def payloads() -> dict[str, list[Any]]:
    if CAPTURE and Path(CAPTURE).exists():
        return dict(json.loads(Path(CAPTURE).read_text()))
    got = capture()
    if CAPTURE:
        Path(CAPTURE).write_text(json.dumps(got))
    return got


def checks(report: drift.DriftReport) -> dict[str, Callable[[Any], object]]:
    return {
        "show": lambda p: drift.check(p, vw.PatientShowResponse, "show", report),
        "balance": lambda p: drift.check_list(p, vw.BalancePayload, "balance", report),
        "appointments": lambda p: drift.check_list(p, vw.AppointmentEnvelope, "appts", report),
        "fhir": lambda p: drift.check_as(
            p, fw.PatientBundle, fw.PatientKeysBundle, "GET /Patient", report
        ),
    }


COMPARED = {
    "show": (vw.PatientShowResponse, False),
    "balance": (vw.BalancePayload, True),
    "appointments": (vw.AppointmentEnvelope, True),
    "fhir": (fw.PatientBundle, False),
}


def measure(run: Callable[[Any], object], items: list[Any], rounds: int = ROUNDS) -> list[float]:
    """µs of CPU per item, per round (after one warm-up pass)."""
    for item in items:
        run(item)
    per: list[float] = []
    repeat = max(1, 200 // len(items))
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            for item in items:
                run(item)
        per.append((time.process_time() - start) / (repeat * len(items)) * 1e6)
    return per


def line(name: str, per: list[float]) -> str:
    return (
        f"{name:36} {statistics.median(per):9.1f} µs"
        f"  ({min(per):.1f}-{max(per):.1f}, {len(per)} rounds)"
    )


def main() -> None:
    got = payloads()
    report = drift.DriftReport()
    sizes = {k: (len(v), sum(len(json.dumps(p)) for p in v) // len(v)) for k, v in got.items()}
    print("payloads (count, mean bytes):", sizes)
    validate = {
        "show": vw.PatientShowResponse.model_validate,
        "balance": drift._list_adapter(vw.BalancePayload).validate_python,
        "appointments": drift._list_adapter(vw.AppointmentEnvelope).validate_python,
        "fhir": fw.PatientKeysBundle.model_validate,
    }
    for kind, run in checks(report).items():
        rounds: dict[str, list[float]] = {"check": [], "check, compare_ordered": [], "validate": []}
        for _ in range(ROUNDS):  # interleaved: now, with the ordered memo (before), the floor
            rounds["check"] += measure(run, got[kind], 1)
            drift.compare = compare_ordered  # type: ignore[assignment]  # the A/B's other side
            try:
                rounds["check, compare_ordered"] += measure(run, got[kind], 1)
            finally:
                drift.compare = compare
            rounds["validate"] += measure(validate[kind], got[kind], 1)
        for name, per in rounds.items():
            print(line(f"{name} {kind}", per))
    for kind, (model, many) in COMPARED.items():
        ways = {
            "compare": compare,
            "compare_ordered": compare_ordered,
            "compare_walk": compare_walk,
        }
        rounds: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(ROUNDS):  # interleaved, one round of each at a time
            for name, way in ways.items():
                rounds[name] += measure(partial(way, model=model, many=many), got[kind], 1)
        for name, per in rounds.items():
            print(line(f"{name} {kind}", per))


if __name__ == "__main__":
    main()
