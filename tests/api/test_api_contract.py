"""The API's contract, route by route: scopes, tenant isolation, bad input, idempotency, sessions.

Every check runs against the live harness (carebridge over a SQLite store, reaching the
in-process sandbox). Refusals must be RFC 9457 problems and must write nothing: neither an
upstream write nor a ledger entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.api import START, Live, running

from carebridge.services.keys import SCOPES
from carebridge.store.people import add_user
from carebridge.store.tenants import revoke_key

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
TENANT_IDS = ("ten_a", "ten_b")
UNSCOPED = {
    ("GET", "/health"),
    ("GET", "/health/upstream"),
    ("POST", "/authenticate"),
    ("POST", "/tenants"),
    ("POST", "/mcp/confirmations/{token_id}/approve"),
    ("PUT", "/mcp/policies/{principal_id}"),
}
"""Routes outside the scope matrix: liveness, sign-in, the operator's onboarding, and the MCP
server's approval and policy routes (the scope they need depends on the write or is ``admin``;
tests/mcp covers them)."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


# --- helpers --------------------------------------------------------------------------------------


def problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of ``reply``, which must answer ``status`` as application/problem+json."""
    where = f"{reply.request.method} {reply.request.url.path}"
    assert reply.status_code == status, (where, reply.status_code, reply.text[:500])
    assert reply.headers["content-type"] == PROBLEM, where
    body = reply.json()
    assert isinstance(body, dict)
    assert body["status"] == status, where
    return body


def fields(body: dict[str, Any]) -> set[str]:
    """The fields a problem's ``errors`` name."""
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    return {str(e["field"]) for e in errors}


def strings(value: Any) -> set[str]:
    """Every string anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            found |= strings(item)
    return found


async def written(live: Live) -> tuple[int, int, int]:
    """Upstream writes so far, and the ledger sizes of both tenants."""
    ledger = live.deployment.ledger
    sizes = [len(await ledger.entries(tenant)) for tenant in TENANT_IDS]
    return live.upstream.writes(), sizes[0], sizes[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def data(live: Live, path: str, key: str = "admin_a", **params: Any) -> list[dict[str, Any]]:
    reply = await live.get(path, key=key, **params)
    assert reply.status_code == 200, (path, reply.text[:300])
    found = reply.json()["data"]
    assert isinstance(found, list)
    return found


async def session(live: Live, tenant: str, username: str, scopes: set[str]) -> str:
    """A user of ``tenant`` with ``scopes`` (no MFA), signed in: their ``cbs_`` token."""
    password = f"{username}-Secret-Passphrase-9"
    await add_user(
        live.deployment.engine,
        live.deployment.vault,
        tenant_id=tenant,
        username=username,
        password=password,
        scopes=scopes,
        now=START,
    )
    reply = await live.client.post(
        "/authenticate", json={"tenant": tenant, "username": username, "password": password}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "authenticated"
    token = str(body["token"])
    assert token.startswith("cbs_")
    return token


@dataclass(frozen=True)
class Ids:
    """Real ids of one tenant, read through the API."""

    patient: str
    claim: str
    appointment: str
    encounter: str
    charge: str
    provider: str
    visit_reason: str
    resource: str
    location: str
    start: str


async def tenant_ids(live: Live, key: str) -> Ids:
    """A patient with encounters and charges, and a free slot, of the key's tenant."""
    charges = await data(live, "/charges", key, limit=500)
    appointments = await data(live, "/appointments", key, limit=500)
    claims = await data(live, "/claims", key, limit=500)
    patients = [p["id"] for p in await data(live, "/patients", key, limit=500)]
    encounter = None
    for patient in patients:
        found = await data(live, "/encounters", key, patient_id=patient)
        if found and any(c["patient_id"] == patient for c in charges):
            encounter = found[0]
            break
    assert encounter is not None
    patient = str(encounter["patient_id"])
    charge = next(c["id"] for c in charges if c["patient_id"] == patient)
    providers = await data(live, "/providers", key)
    reasons = await data(live, "/visit_reasons", key)
    slots: list[dict[str, Any]] = []
    for reason in reasons:
        slots = await data(
            live, "/availability", key, visit_reason_id=reason["id"], start="2026-11-25",
            end="2026-11-27",
        )  # fmt: skip
        if slots:
            break
    assert slots
    slot = slots[-1]
    return Ids(
        patient=patient,
        claim=str(claims[0]["id"]),
        appointment=str(appointments[0]["id"]),
        encounter=str(encounter["id"]),
        charge=str(charge),
        provider=str(providers[0]["id"]),
        visit_reason=str(slot["visit_reason_id"]),
        resource=str(slot["resource_id"]),
        location=str(slot["location_id"]),
        start=str(slot["start"]),
    )


# --- valid write bodies ------------------------------------------------------------------------


def booking(ids: Ids) -> dict[str, Any]:
    return {
        "resource_id": ids.resource,
        "location_id": ids.location,
        "visit_reason_id": ids.visit_reason,
        "start": ids.start,
    }


def create_appointment(ids: Ids) -> dict[str, Any]:
    return {"patient_id": ids.patient, **booking(ids), "chief_complaint": "follow-up"}


def reschedule(ids: Ids) -> dict[str, Any]:
    return {"appointment_id": ids.appointment, **booking(ids)}


def appointment_ref(ids: Ids) -> dict[str, Any]:
    return {"appointment_id": ids.appointment}


def create_encounter(ids: Ids) -> dict[str, Any]:
    return {
        "patient_id": ids.patient,
        "chief_complaint": "cough",
        "note": {"subjective": "3 days of cough", "plan": "fluids, rest"},
        "diagnoses": ["J06.9"],
        "procedures": [{"code": "99213", "units": 1}],
    }


def encounter_ref(ids: Ids) -> dict[str, Any]:
    return {"encounter_id": ids.encounter}


def create_charge(ids: Ids) -> dict[str, Any]:
    return {
        "patient_id": ids.patient,
        "procedure_code": "99213",
        "diagnosis_codes": ["J06.9"],
        "service_date": "2026-11-24",
    }


def submit_claim(ids: Ids) -> dict[str, Any]:
    return {"patient_id": ids.patient, "charge_ids": [ids.charge]}


WRITES: dict[str, Callable[[Ids], dict[str, Any]]] = {
    "/create_appointment": create_appointment,
    "/reschedule_appointment": reschedule,
    "/cancel_appointment": appointment_ref,
    "/check_in": appointment_ref,
    "/check_out": appointment_ref,
    "/create_encounter": create_encounter,
    "/sign_encounter": encounter_ref,
    "/create_charge": create_charge,
    "/submit_claim": submit_claim,
    "/sync": lambda _ids: {"streams": ["providers"]},
    "/webhooks": lambda _ids: {"url": "https://hooks.example.com/hook", "event_types": []},
    "/webhooks/{webhook_id}/rotate_secret": lambda _ids: {},
    "/webhooks/{webhook_id}/replay": lambda _ids: {},
}
PATH_WRITES: dict[str, Callable[[Ids], dict[str, Any]]] = {
    "/encounters/{id}/addenda": lambda _ids: {"text": "Culture reviewed; plan unchanged."},
}
"""Writes whose path names the object (their body does not)."""
NAMES_NO_ID = {"/sync", "/webhooks", "/webhooks/{webhook_id}/rotate_secret"}
NAMES_NO_ID |= {"/webhooks/{webhook_id}/replay"}


# --- 1. the scope matrix -------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A route, how to call it with real ids, and the one scope it needs."""

    method: str
    template: str
    scope: str
    params: Callable[[Ids], dict[str, str]] = field(default=lambda _ids: {})
    ident: Callable[[Ids], str] = field(default=lambda _ids: "zzz_unknown")
    """The ``{id}`` of a get-by-id route: a real one where the tenant has it, else unknown
    (a 404 once the scope is granted)."""

    def path(self, ids: Ids) -> str:
        return (
            self.template.replace("{patient_id}", ids.patient)
            .replace("{claim_id}", ids.claim)
            .replace("{webhook_id}", "whk_00000000000000000000000000000000")
            .replace("{id}", self.ident(ids))
        )

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def of_patient(ids: Ids) -> dict[str, str]:
    return {"patient_id": ids.patient}


def slots_of(ids: Ids) -> dict[str, str]:
    return {"visit_reason_id": ids.visit_reason, "start": "2026-11-25", "end": "2026-11-27"}


ROUTES = [
    Route("GET", "/patients", "patient.read"),
    Route("GET", "/patients/{patient_id}", "patient.read"),
    Route("GET", "/appointments", "appointment.read"),
    Route("GET", "/encounters", "encounter.read", of_patient),
    Route("GET", "/claims", "claim.read"),
    Route("GET", "/claims/{claim_id}", "claim.read"),
    Route("GET", "/charges", "charge.read"),
    Route("GET", "/payments", "payment.read"),
    Route("GET", "/remittances", "payment.read"),
    Route("GET", "/statements", "payment.read"),
    Route("GET", "/labs", "encounter.read", of_patient),
    Route("GET", "/immunizations", "encounter.read", of_patient),
    Route("GET", "/documents", "document.read", of_patient),
    Route("GET", "/balances", "payment.read", of_patient),
    Route("GET", "/eligibility", "eligibility.read", of_patient),
    Route("GET", "/availability", "appointment.read", slots_of),
    Route("GET", "/providers", "practice.read"),
    Route("GET", "/locations", "practice.read"),
    Route("GET", "/resources", "practice.read"),
    Route("GET", "/visit_reasons", "practice.read"),
    Route("GET", "/appointments/{id}", "appointment.read", ident=lambda ids: ids.appointment),
    Route("GET", "/encounters/{id}", "encounter.read", ident=lambda ids: ids.encounter),
    Route("GET", "/labs/{id}", "encounter.read"),
    Route("GET", "/immunizations/{id}", "encounter.read"),
    Route("GET", "/documents/{id}", "document.read"),
    Route("GET", "/charges/{id}", "charge.read", ident=lambda ids: ids.charge),
    Route("GET", "/payments/{id}", "payment.read"),
    Route("GET", "/remittances/{id}", "payment.read"),
    Route("GET", "/statements/{id}", "payment.read"),
    Route("GET", "/providers/{id}", "practice.read", ident=lambda ids: ids.provider),
    Route("GET", "/locations/{id}", "practice.read", ident=lambda ids: ids.location),
    Route("GET", "/resources/{id}", "practice.read", ident=lambda ids: ids.resource),
    Route("GET", "/visit_reasons/{id}", "practice.read", ident=lambda ids: ids.visit_reason),
    Route("GET", "/audit_events", "audit.read"),
    Route("GET", "/events", "event.read"),
    Route("POST", "/create_appointment", "appointment.write"),
    Route("POST", "/reschedule_appointment", "appointment.write"),
    Route("POST", "/cancel_appointment", "appointment.write"),
    Route("POST", "/check_in", "appointment.write"),
    Route("POST", "/check_out", "appointment.write"),
    Route("POST", "/create_encounter", "encounter.write"),
    Route("POST", "/sign_encounter", "encounter.write"),
    Route("POST", "/create_charge", "charge.write"),
    Route("POST", "/submit_claim", "claim.write"),
    Route("POST", "/encounters/{id}/addenda", "encounter.write", ident=lambda ids: ids.encounter),
    Route("POST", "/sync", "sync.write"),
    Route("POST", "/webhooks", "webhook.write"),
    Route("GET", "/webhooks", "webhook.read"),
    Route("GET", "/webhooks/{webhook_id}", "webhook.read"),
    Route("DELETE", "/webhooks/{webhook_id}", "webhook.write"),
    Route("POST", "/webhooks/{webhook_id}/rotate_secret", "webhook.write"),
    Route("GET", "/webhooks/{webhook_id}/deliveries", "webhook.read"),
    Route("POST", "/webhooks/{webhook_id}/replay", "webhook.write", lambda _ids: {"from_seq": "1"}),
]


def slug(scope: str) -> str:
    return scope.replace(".", "_")


@dataclass
class Matrix:
    live: Live
    ids: Ids


@pytest.fixture(scope="module")
async def matrix(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Matrix]:
    """One harness for the whole matrix, with an "all but" and an "only" key per scope."""
    db = tmp_path_factory.mktemp("matrix") / "store.db"
    async with running(str(db)) as live:
        for scope in sorted({r.scope for r in ROUTES}):
            others = sorted(SCOPES - {scope, "admin"})
            await live.key("ten_a", ",".join(others), f"all_but_{slug(scope)}")
            await live.key("ten_a", scope, f"only_{slug(scope)}")
        yield Matrix(live, await tenant_ids(live, "admin_a"))


async def call(live: Live, route: Route, ids: Ids, key: str) -> httpx.Response:
    headers = live.auth(key)
    if route.method == "GET":
        return await live.client.get(route.path(ids), params=route.params(ids), headers=headers)
    if route.method == "DELETE":
        return await live.client.delete(route.path(ids), headers=headers)
    return await live.client.post(
        route.path(ids),
        json=(WRITES | PATH_WRITES)[route.template](ids),
        params=route.params(ids),
        headers=headers,
    )


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_each_route_needs_exactly_its_scope(matrix: Matrix, route: Route) -> None:
    live, ids = matrix.live, matrix.ids
    before = await written(live)
    denied = problem(await call(live, route, ids, f"all_but_{slug(route.scope)}"), 403)
    assert route.scope in denied["detail"]
    assert denied["type"].endswith("/missing-scope")
    assert await written(live) == before  # a refusal writes nothing
    allowed = await call(live, route, ids, f"only_{slug(route.scope)}")
    assert allowed.status_code != 403, allowed.text[:300]


async def test_the_matrix_covers_every_route(matrix: Matrix) -> None:
    spec = (await matrix.live.client.get("/openapi.json")).json()
    served = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert served - UNSCOPED == {(r.method, r.template) for r in ROUTES}


async def test_write_routes_check_their_scope_before_looking_anything_up(tmp_path: Path) -> None:
    async with running(str(tmp_path / "store.db")) as live:
        ids = await tenant_ids(live, "admin_a")
        lacking = SCOPES - {"admin", "appointment.write", "encounter.write", "claim.write"}
        await live.key("ten_a", ",".join(sorted(lacking)), "no_writes")
        missing = replace(ids, appointment="apt_zzzz", encounter="enc_zzzz", patient="pat_zzzz")
        before = await written(live)
        seen: dict[str, tuple[int, int, int]] = {}
        for path in (
            "/reschedule_appointment",
            "/cancel_appointment",
            "/check_in",
            "/check_out",
            "/sign_encounter",
            "/submit_claim",
        ):
            seen[path] = await scope_probe(live, path, ids, missing)
        assert await written(live) == before
        assert seen == dict.fromkeys(seen, (403, 0, 403))


async def scope_probe(live: Live, path: str, ids: Ids, missing: Ids) -> tuple[int, int, int]:
    """(status with a real id, upstream requests it made, status with an unknown id)."""
    requests = sum(live.upstream.seen.values())
    real = await live.post(path, WRITES[path](ids), key="no_writes")
    spent = sum(live.upstream.seen.values()) - requests
    unknown = await live.post(path, WRITES[path](missing), key="no_writes")
    return real.status_code, spent, unknown.status_code


# --- 2. tenant isolation -----------------------------------------------------------------------

LISTS = (
    "/patients",
    "/appointments",
    "/claims",
    "/charges",
    "/payments",
    "/remittances",
    "/statements",
    "/providers",
    "/locations",
    "/resources",
    "/visit_reasons",
)
FILTERED = (
    "/appointments",
    "/encounters",
    "/claims",
    "/charges",
    "/payments",
    "/remittances",
    "/statements",
    "/labs",
    "/immunizations",
    "/documents",
)


async def every_id(live: Live, key: str, ids: Ids) -> set[str]:
    """The ids of every record the key's tenant lists (and the chart of one patient)."""
    found: set[str] = set()
    for path in LISTS:
        found |= {str(r["id"]) for r in await data(live, path, key, limit=500)}
    for path in ("/encounters", "/documents", "/labs", "/immunizations"):
        found |= {str(r["id"]) for r in await data(live, path, key, patient_id=ids.patient)}
    return found


async def test_another_tenants_ids_are_404_and_nothing_is_written(tmp_path: Path) -> None:
    async with running(str(tmp_path / "store.db")) as live:
        a = await tenant_ids(live, "admin_a")
        b = await tenant_ids(live, "admin_b")
        theirs = await every_id(live, "admin_a", a)
        ours = await every_id(live, "admin_b", b)
        assert theirs
        assert ours
        assert not theirs & ours
        a_audit = await data(live, "/audit_events", "admin_a", limit=500)
        before = await written(live)

        for path in (f"/patients/{a.patient}", f"/claims/{a.claim}"):
            problem(await live.get(path, key="admin_b"), 404)
        for path in ("/balances", "/eligibility"):
            problem(await live.get(path, key="admin_b", patient_id=a.patient), 404)
        # A's patient, appointment and encounter ids in B's writes; the rest of the body is B's
        mixed = replace(
            b, patient=a.patient, appointment=a.appointment, encounter=a.encounter, charge=a.charge
        )
        for path, make in WRITES.items():
            if path in NAMES_NO_ID:
                continue  # names no patient, appointment, encounter or charge
            problem(await live.post(path, make(mixed), key="admin_b", idem=f"iso-{path}"), 404)

        for path in FILTERED:  # a filter naming A's patient finds nothing of A's
            reply = await live.get(path, key="admin_b", patient_id=a.patient)
            assert reply.status_code in (200, 404), (path, reply.text[:300])
            if reply.status_code == 200:
                assert reply.json()["data"] == [], path
        for path in (*LISTS, "/encounters", "/audit_events"):
            reply = await live.get(path, key="admin_b", limit=500)
            assert reply.status_code == 200, path
            assert not strings(reply.json()) & theirs, path

        assert await written(live) == before
        assert await data(live, "/audit_events", "admin_a", limit=500) == a_audit

        # A's ids nested in B's write bodies (B's own patient): refused, and nothing upstream
        upstream_writes = live.upstream.writes()
        for path, payload in nested(a, b).items():
            reply = await live.post(path, payload, key="admin_b")
            assert 400 <= reply.status_code < 500, (path, reply.text[:300])
            assert reply.status_code != 403, path
            assert not strings(reply.json()) & theirs, path
        assert live.upstream.writes() == upstream_writes


def nested(a: Ids, b: Ids) -> dict[str, dict[str, Any]]:
    """Write bodies of B's patient (or appointment) naming A's practice, encounter or charge."""
    a_slot = booking(a)
    return {
        "/create_appointment": {"patient_id": b.patient, **a_slot},
        "/reschedule_appointment": {"appointment_id": b.appointment, **a_slot},
        "/create_encounter": {"patient_id": b.patient, "provider_id": a.provider},
        "/create_charge": create_charge(b) | {"encounter_id": a.encounter},
        "/submit_claim": {"patient_id": b.patient, "charge_ids": [a.charge]},
    }


async def test_a_chart_route_for_another_tenants_patient_is_404(tmp_path: Path) -> None:
    async with running(str(tmp_path / "store.db")) as live:
        a = await tenant_ids(live, "admin_a")
        answers = {
            path: (await live.get(path, key="admin_b", patient_id=a.patient)).status_code
            for path in ("/labs", "/immunizations", "/documents")
        }
        assert answers == {"/labs": 404, "/immunizations": 404, "/documents": 404}


async def test_another_tenants_ids_inside_a_write_body_are_404_and_not_ledgered(
    tmp_path: Path,
) -> None:
    async with running(str(tmp_path / "store.db")) as live:
        a = await tenant_ids(live, "admin_a")
        b = await tenant_ids(live, "admin_b")
        before = await written(live)
        answers = {
            path: (await live.post(path, body, key="admin_b")).status_code
            for path, body in nested(a, b).items()
        }
        assert (answers, await written(live)) == (dict.fromkeys(answers, 404), before)


# --- 3. bad input --------------------------------------------------------------------------------


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as opened:
        yield opened


async def test_bad_bodies_are_problems_naming_the_field_and_write_nothing(
    live: Live,
) -> None:
    ids = await tenant_ids(live, "admin_a")
    headers = live.auth("admin_a") | {"Content-Type": "application/json"}
    before = await written(live)

    # malformed JSON, on every write route that takes a body: malformed syntax is a 400
    for path in WRITES:
        if "{" in path:
            continue
        reply = await live.client.post(path, content=b"{not json", headers=headers)
        assert fields(problem(reply, 400)) == {"body"}, path
    assert await written(live) == before

    # wrong types
    wrong: list[tuple[str, dict[str, Any], str]] = [
        ("/create_charge", create_charge(ids) | {"units": "three"}, "units"),
        ("/create_charge", create_charge(ids) | {"diagnosis_codes": "J06.9"}, "diagnosis_codes"),
        ("/submit_claim", submit_claim(ids) | {"charge_ids": "chg_x"}, "charge_ids"),
        ("/create_encounter", create_encounter(ids) | {"diagnoses": 7}, "diagnoses"),
        (
            "/create_encounter",
            create_encounter(ids) | {"procedures": [{"code": "99213", "units": "three"}]},
            "procedures.0.units",
        ),
        ("/check_in", {"appointment_id": 42}, "appointment_id"),
        ("/sign_encounter", {"encounter_id": ["enc_x"]}, "encounter_id"),
        ("/create_appointment", create_appointment(ids) | {"patient_id": None}, "patient_id"),
    ]
    for path, body, name in wrong:
        assert name in fields(problem(await live.post(path, body), 422)), path
    assert await written(live) == before

    # unknown fields, in every write body (and inside a nested one)
    for path, make in WRITES.items():
        if "{" in path:
            continue  # no body to add a field to
        body = make(ids) | {"surprise": "field"}
        assert "surprise" in fields(problem(await live.post(path, body), 422)), path
    inner = create_encounter(ids) | {"procedures": [{"code": "99213", "units": 1, "x": 1}]}
    assert "procedures.0.x" in fields(problem(await live.post("/create_encounter", inner), 422))
    assert await written(live) == before

    # impossible dates, and a datetime without a time zone
    dates: list[tuple[str, dict[str, Any], str]] = [
        ("/create_appointment", create_appointment(ids) | {"start": "2026-02-30T10:00:00Z"}, "start"),
        ("/reschedule_appointment", reschedule(ids) | {"start": "2026-02-30T10:00:00Z"}, "start"),
        ("/create_encounter", create_encounter(ids) | {"start": "2026-02-30T10:00:00Z"}, "start"),
        ("/create_charge", create_charge(ids) | {"service_date": "2026-13-01"}, "service_date"),
        ("/create_charge", create_charge(ids) | {"service_date": "2026-02-30"}, "service_date"),
        ("/create_appointment", create_appointment(ids) | {"start": "2026-12-01T10:00:00"}, "start"),
        ("/reschedule_appointment", reschedule(ids) | {"start": "2026-12-01T10:00:00"}, "start"),
        ("/create_encounter", create_encounter(ids) | {"start": "2026-12-01T10:00:00"}, "start"),
        ("/create_appointment", create_appointment(ids) | {"end": "2026-12-01T10:30"}, "end"),
    ]  # fmt: skip
    for path, body, name in dates:
        assert name in fields(problem(await live.post(path, body), 422)), (path, body)
    assert await written(live) == before


async def test_bad_query_parameters_are_problems_naming_the_parameter(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    before = await written(live)
    # an impossible date is well-formed but invalid: 422 (the deprecated alias keeps its name)
    assert fields(problem(await live.get("/patients", dob="2026-02-30"), 422)) == {"dob"}
    assert fields(problem(await live.get("/patients", birth_date="2026-02-30"), 422)) == {
        "birth_date"
    }
    assert fields(problem(await live.get("/patients", dob="30/02/2026"), 422)) == {"dob"}
    assert fields(problem(await live.get("/appointments", start="2026-02-30T10:00:00Z"), 422)) == {
        "start"
    }
    reply = await live.get(
        "/availability", visit_reason_id=ids.visit_reason, start="2026-02-30", end="2026-03-02"
    )
    assert "start" in fields(problem(reply, 422))
    reply = await live.get("/eligibility", patient_id=ids.patient, service_date="2026-13-01")
    assert fields(problem(reply, 422)) == {"service_date"}
    for path in ("/patients", "/claims", "/charges", "/providers"):
        assert fields(problem(await live.get(path, cursor="!!!"), 400)) == {"cursor"}, path
        for limit in (0, 100_000):
            assert fields(problem(await live.get(path, limit=limit), 422)) == {"limit"}, path
    assert fields(problem(await live.get("/audit_events", limit=0), 422)) == {"limit"}
    assert await written(live) == before


async def test_bad_idempotency_keys_are_400_and_write_nothing(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    auth = live.auth("admin_a")["Authorization"].encode()
    before = await written(live)
    bad: list[bytes] = [b"k" * 300, b"k" * 256, b"has space", b"tab\there", "clé".encode()]
    for path in ("/create_charge", "/check_in", "/create_encounter"):
        for idem in bad:
            reply = await live.client.post(
                path,
                json=WRITES[path](ids),
                headers=[(b"Authorization", auth), (b"Idempotency-Key", idem)],
            )
            body = problem(reply, 400)
            assert fields(body) == {"Idempotency-Key"}, (path, idem)
            assert "Idempotency-Key" in body["detail"]
    assert await written(live) == before


async def test_bad_credentials_are_401_and_write_nothing(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    b = await tenant_ids(live, "admin_b")
    await live.key("ten_a", "admin", "to_revoke")
    await live.key("ten_b", "admin", "b_reader")
    token = await session(live, "ten_a", "ana", {"patient.read", "charge.write"})
    foreign = await session(
        live, "ten_b", "bea", {"patient.read", "claim.read", "appointment.write", "charge.write"}
    )
    assert (await live.client.get("/patients", headers=bearer(token))).status_code == 200
    assert (await live.client.get("/patients", headers=bearer(foreign))).status_code == 200
    assert (await live.get("/patients", key="to_revoke")).status_code == 200
    assert await revoke_key(live.deployment.engine, "ten_a", "key_to_revoke", now=START)

    before = await written(live)
    # a session of tenant B on tenant A's ids: not found, and nothing of A's in the answer
    for reply in (
        await live.client.get(f"/patients/{ids.patient}", headers=bearer(foreign)),
        await live.client.get(f"/claims/{ids.claim}", headers=bearer(foreign)),
        await live.client.post("/check_in", json=appointment_ref(ids), headers=bearer(foreign)),
        await live.client.post("/create_charge", json=create_charge(ids), headers=bearer(foreign)),
    ):
        problem(reply, 404)
    listed = await live.client.get("/patients", headers=bearer(foreign))
    assert ids.patient not in listed.text
    assert b.patient in listed.text

    live.clock.advance(timedelta(hours=13))  # the sessions have expired (12 h)
    credentials: dict[str, dict[str, str]] = {
        "missing": {},
        "empty": {"Authorization": ""},
        "not bearer": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "malformed": bearer("not-a-key"),
        "truncated key": bearer(live.keys["admin_a"][:-3]),
        "unknown key": bearer("cbk_AAAAAAAAAAAA_" + "a" * 43),
        "wrong secret": bearer(live.keys["admin_a"][:17] + "b" * 43),
        "revoked key": live.auth("to_revoke"),
        "unknown session": bearer("cbs_AAAAAAAAAAAA_" + "a" * 43),
        "malformed session": bearer("cbs_x"),
        "expired session": bearer(token),
        "expired foreign session": bearer(foreign),
    }
    for name, headers in credentials.items():
        for reply in (
            await live.client.get("/patients", headers=headers),
            await live.client.get(f"/patients/{ids.patient}", headers=headers),
            await live.client.post("/create_charge", json=create_charge(ids), headers=headers),
            await live.client.post("/create_charge", json={"bad": 1}, headers=headers),
        ):
            body = problem(reply, 401)
            assert reply.headers["www-authenticate"] == "Bearer", name
            assert ids.patient not in reply.text, name
            assert body["title"] == "Unauthorized", name
    assert await written(live) == before


async def test_an_unauthenticated_malformed_body_is_401(live: Live) -> None:
    reply = await live.client.post(
        "/create_charge", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    problem(reply, 401)


# --- 4. idempotency edges ------------------------------------------------------------------------


async def test_a_key_replays_its_answer_and_refuses_another_body(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    body = create_charge(ids)
    before = await written(live)

    first = await live.post("/create_charge", body, idem="charge-0001")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    once = await written(live)
    assert once == (before[0] + 1, before[1] + 1, before[2])

    again = await live.post("/create_charge", body, idem="charge-0001")
    assert again.status_code == first.status_code
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.content == first.content
    assert await written(live) == once

    for other in (body | {"units": 2}, body | {"service_date": "2026-11-23"}):
        refused = problem(await live.post("/create_charge", other, idem="charge-0001"), 422)
        assert refused["type"].endswith("/idempotency-key-reused")
    # the same key and body on another route is another request, too
    problem(await live.post("/create_encounter", create_encounter(ids), idem="charge-0001"), 422)
    assert await written(live) == once

    # a refusal does not spend the key: the original still replays
    last = await live.post("/create_charge", body, idem="charge-0001")
    assert (last.status_code, last.json()) == (201, first.json())
    assert last.headers["idempotent-replayed"] == "true"
    assert await written(live) == once


async def test_a_key_belongs_to_the_principal_that_used_it(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    b = await tenant_ids(live, "admin_b")
    await live.key("ten_a", "charge.write", "biller_x")
    await live.key("ten_a", "charge.write", "biller_y")
    body = create_charge(ids)

    x = await live.post("/create_charge", body, key="biller_x", idem="shared-key")
    assert x.status_code == 201, x.text
    after_x = await written(live)

    # Y, same tenant, same key string and body: runs (no replay of X's answer)
    y = await live.post("/create_charge", body, key="biller_y", idem="shared-key")
    assert y.status_code == 201, y.text
    assert "idempotent-replayed" not in y.headers
    assert y.json()["data"]["id"] != x.json()["data"]["id"]
    assert y.json()["ledger_id"] != x.json()["ledger_id"]
    after_y = await written(live)
    assert after_y == (after_x[0] + 1, after_x[1] + 1, after_x[2])

    # admin_a, same key string with another body: runs (no mismatch with X's request)
    other = await live.post("/create_charge", body | {"units": 2}, idem="shared-key")
    assert other.status_code == 201, other.text
    assert "idempotent-replayed" not in other.headers

    # another tenant, same key string: runs
    theirs = await live.post("/create_charge", create_charge(b), key="admin_b", idem="shared-key")
    assert theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    after = await written(live)
    assert after == (after_y[0] + 2, after_y[1] + 1, after_y[2] + 1)

    # and each principal's key still replays its own answer
    for key, reply in (("biller_x", x), ("biller_y", y)):
        replay = await live.post("/create_charge", body, key=key, idem="shared-key")
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == reply.json()
    assert await written(live) == after


async def test_a_rejected_write_replays_its_problem(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    made = await live.post("/create_charge", create_charge(ids))
    assert made.status_code == 201, made.text
    body = {"patient_id": ids.patient, "charge_ids": [made.json()["data"]["id"]]}
    first = await live.post("/submit_claim", body, idem="claim-0001")
    assert first.status_code >= 400, first.text  # the sandbox's scrubber refuses it
    assert first.headers["content-type"] == PROBLEM
    once = await written(live)
    again = await live.post("/submit_claim", body, idem="claim-0001")

    def answered(reply: httpx.Response) -> tuple[int, dict[str, Any]]:
        """The status and problem, less its ``request_id`` (each request has its own)."""
        problem_body = reply.json()
        assert problem_body.pop("request_id") == reply.headers["x-request-id"]
        return reply.status_code, problem_body

    assert answered(again) == answered(first)
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert again.headers["content-type"] == PROBLEM
    assert again.headers["idempotent-replayed"] == "true"
    assert await written(live) == once


# --- write bodies take the ids the read routes answer --------------------------------------


async def test_writes_take_the_ids_the_read_routes_answer(live: Live) -> None:
    patients = [p["id"] for p in await data(live, "/patients")]
    opened = [
        e
        for patient in patients
        for e in await data(live, "/encounters", patient_id=patient)
        if e["status"] == "open"
    ]
    unbilled = [c for c in await data(live, "/charges", limit=500) if c["status"] == "not_posted"]
    assert opened
    assert unbilled
    signed = await live.post("/sign_encounter", {"encounter_id": opened[0]["id"]})
    claim = {"patient_id": unbilled[0]["patient_id"], "charge_ids": [unbilled[0]["id"]]}
    submitted = await live.post("/submit_claim", claim)
    kinds = {
        "sign": signed.json().get("type", "answered"),
        "submit": submitted.json().get("type", "answered"),
    }
    assert not [k for k, kind in kinds.items() if str(kind).endswith("/unknown-id")], kinds


# --- 5. session tokens ---------------------------------------------------------------------------


async def test_a_session_token_reads_within_its_scopes(live: Live) -> None:
    ids = await tenant_ids(live, "admin_a")
    token = await session(live, "ten_a", "reader", {"patient.read"})
    before = await written(live)

    listed = await live.client.get("/patients", headers=bearer(token))
    assert listed.status_code == 200
    assert ids.patient in {p["id"] for p in listed.json()["data"]}
    one = await live.client.get(f"/patients/{ids.patient}", headers=bearer(token))
    assert (one.status_code, one.json()["id"]) == (200, ids.patient)

    for reply, scope in (
        (await live.client.get("/claims", headers=bearer(token)), "claim.read"),
        (await live.client.get(f"/claims/{ids.claim}", headers=bearer(token)), "claim.read"),
        (
            await live.client.post(
                "/create_charge", json=create_charge(ids), headers=bearer(token)
            ),
            "charge.write",
        ),
    ):
        assert scope in problem(reply, 403)["detail"]
    assert await written(live) == before
