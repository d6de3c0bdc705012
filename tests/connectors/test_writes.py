"""Writes through the connector against a live emulated tenant (uvicorn on loopback), each
confirmed by a read-back and checked against the tenant's ground truth.

The tenant runs on a manual clock; stamina's test mode removes backoff sleeps and the throttle
runs on a fake clock, so nothing here sleeps. Eligibility polling moves the tenant clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import stamina
from tests.support.clock import FakeTime
from tests.support.sandbox import LiveTenant, start_live

from carebridge.connectors.carecloud import scheduling, writes
from carebridge.connectors.carecloud.mfa import TotpSource
from carebridge.connectors.carecloud.surfaces import (
    Connection,
    PortalSecrets,
    V2Secrets,
    connect,
)
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.connectors.carecloud.writes import (
    ClaimRejected,
    SlotTaken,
    WriteContext,
)
from carebridge.domain import AppointmentStatus, EligibilityRequest
from carebridge.domain.values import (
    AppointmentId,
    ChargeId,
    LocationId,
    PatientId,
    ResourceId,
    VisitReasonId,
)
from carebridge.errors import InvalidTransition
from carebridge.ports.upstream import NewAppointment, NewCharge, NewClaim, NewEncounter
from carecloud_sandbox import personas
from carecloud_sandbox.config import SandboxConfig

pytestmark = pytest.mark.anyio

TENANT = "tnt-writes"
ANCHOR = date(2026, 11, 24)
TOMORROW = "2026-11-25"


class LoseResponse(httpx.AsyncBaseTransport):
    """Forwards every request, but loses the response of the next ``POST`` to ``path``: the
    write lands upstream and the client sees a dropped connection."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.armed: str | None = None
        self.posts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            self.posts.append(request.url.path)
        if request.method == "POST" and request.url.path == self.armed:
            self.armed = None
            await response.aclose()
            raise httpx.ReadError("connection lost after the request was sent", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def live() -> Iterator[LiveTenant]:
    config = SandboxConfig(seed=7, patients=40, practices=1, anchor=ANCHOR)
    tenant, stop = start_live(config)
    yield tenant
    stop()


@dataclass
class Env:
    live: LiveTenant
    wctx: WriteContext
    transport: LoseResponse
    control: httpx.AsyncClient

    def truth(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.live.tenant.db.all(sql, params)]

    def patient(self, persona: personas.PatientPersona) -> PatientId:
        ctx = self.wctx.ctx("v2", "test")
        return self.wctx.index.add_patient(ctx, persona.id, persona.chart_number)

    def ids(self) -> tuple[ResourceId, LocationId, VisitReasonId]:
        ctx = self.wctx.ctx("v2", "test")
        index = self.wctx.index
        return (
            index.resource_of(ctx, personas.RESOURCE_ID),
            index.location_of(ctx, personas.LOCATION_ID),
            index.visit_reason_of(ctx, personas.VISIT_ESTABLISHED),
        )

    async def free_slots(self, n: int = 1) -> list[datetime]:
        """The next ``n`` free starts on the persona resource tomorrow (from availability)."""
        assert self.wctx.conn.v2 is not None
        r = await self.wctx.conn.v2.request(
            "GET",
            f"{self.wctx.v2_url}/appointment_availability",
            params={
                "start_date": TOMORROW,
                "visit_reason_id": personas.VISIT_ESTABLISHED,
                "location_ids": personas.LOCATION_ID,
                "resource_ids": personas.RESOURCE_ID,
            },
        )
        starts = [datetime.fromisoformat(s["start_time"]) for g in r.json() for s in g["slots"]]
        assert len(starts) >= n
        return starts[:n]

    async def command(self, persona: personas.PatientPersona, start: datetime) -> NewAppointment:
        resource, location, reason = self.ids()
        return NewAppointment(
            patient_id=self.patient(persona),
            resource_id=resource,
            location_id=location,
            visit_reason_id=reason,
            start=start,
            end=start + timedelta(minutes=20),
            chief_complaint="Follow-up",
            comments="booked by test",
        )

    def bookings(self, persona: personas.PatientPersona, start: datetime) -> list[dict[str, Any]]:
        return self.truth(
            "SELECT * FROM appointments WHERE patient_id = ? AND resource_id = ? AND start_time = ?",
            (
                persona.id,
                personas.RESOURCE_ID,
                start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )


@pytest.fixture
async def env(live: LiveTenant) -> AsyncIterator[Env]:
    creds = live.credentials
    practice = creds["practices"][0]
    user = next(u for u in practice["users"] if u["username"] == personas.USERNAME)
    live.clock.advance(timedelta(seconds=31))  # a TOTP step nobody used yet
    transport = LoseResponse(httpx.AsyncHTTPTransport())
    t = FakeTime()
    gate = AimdThrottle(ThrottleConfig(start_rate=50), clock=t.clock, sleep=t.sleep)
    with stamina.set_testing(True, attempts=8):
        conn: Connection = connect(
            clock=live.clock.now,
            transport=transport,
            throttle=gate,
            v2=V2Secrets(
                creds["token_url"],
                creds["client_id"],
                creds["client_secret"],
                practice["refresh_token"],
            ),
            portal=PortalSecrets(
                api_url=f"{live.base_url}/portal/api",
                username=user["username"],
                password=user["password"],
                codes=[TotpSource(user["totp_seed"], live.clock.now)],
                methods=("totp",),
            ),
        )
        wctx = WriteContext(
            conn=conn,
            tenant=TENANT,
            v2_url=f"{live.base_url}/v2",
            portal_url=f"{live.base_url}/portal/api",
            clock=live.clock.now,
        )
        async with httpx.AsyncClient(base_url=live.base_url) as control:
            yield Env(live, wctx, transport, control)
            await control.delete("/_sandbox/faults")
            await control.delete("/_sandbox/drift")
        await conn.aclose()


# --- appointments ----------------------------------------------------------------------------


async def test_create_appointment_is_confirmed_and_matches_the_ground_truth(env: Env) -> None:
    await writes.index_practice(env.wctx)
    (start,) = await env.free_slots()
    command = await env.command(personas.JORDAN, start)
    result = await writes.create_appointment(env.wctx, command)
    assert (result.confirmation, result.diverged, result.attempts) == ("confirmed", (), 1)
    a = result.value
    assert (a.patient_id, a.resource_id, a.location_id, a.visit_reason_id) == (
        command.patient_id,
        command.resource_id,
        command.location_id,
        command.visit_reason_id,
    )
    assert (a.start, a.end, a.status) == (start, command.end, AppointmentStatus.SCHEDULED)
    (row,) = env.bookings(personas.JORDAN, start)
    assert env.wctx.index.appointments[a.id] == row["id"]
    assert a.id == AppointmentId.new(f"{TENANT}:appointment:{row['id']}")
    assert (row["status_code"], row["reason_for_visit"], row["comments"]) == (
        "P",
        "Follow-up",
        "booked by test",
    )
    assert row["provider_id"] == personas.PROVIDER_ID  # the resource's default provider


async def test_a_taken_slot_raises_slot_taken(env: Env) -> None:
    (start,) = await env.free_slots()
    await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, start))
    with pytest.raises(SlotTaken):
        await writes.create_appointment(env.wctx, await env.command(personas.CASEY, start))
    assert env.bookings(personas.CASEY, start) == []


async def test_the_upstreams_409_is_a_slot_taken_too(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    (start,) = await env.free_slots()
    await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, start))

    async def stale(wctx: WriteContext, booking: Any) -> bool:  # availability read before a race
        return True

    monkeypatch.setattr(scheduling, "_slot_free", stale)
    with pytest.raises(SlotTaken) as err:
        await writes.create_appointment(env.wctx, await env.command(personas.CASEY, start))
    assert err.value.status == 409
    assert env.bookings(personas.CASEY, start) == []


@pytest.mark.parametrize(
    "fault",
    [
        {"error_rate": 1.0, "status": 502},
        {"drop_rate": 1.0},
    ],
    ids=["502", "dropped"],
)
async def test_a_failed_post_is_looked_up_and_sent_once_more(
    env: Env, fault: dict[str, Any]
) -> None:
    (start,) = await env.free_slots()
    rule = {"pattern": "/v2/appointments", "methods": ["POST"], "count": 1, **fault}
    assert (await env.control.post("/_sandbox/faults", json=rule)).is_success
    result = await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, start))
    assert (result.confirmation, result.attempts) == ("confirmed", 2)
    assert len(env.bookings(personas.JORDAN, start)) == 1
    assert env.transport.posts.count("/v2/appointments") == 2


async def test_a_write_that_landed_but_lost_its_answer_is_not_sent_again(env: Env) -> None:
    (start,) = await env.free_slots()
    env.transport.armed = "/v2/appointments"
    result = await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, start))
    assert (result.confirmation, result.attempts) == ("confirmed", 1)
    (row,) = env.bookings(personas.JORDAN, start)
    assert env.wctx.index.appointments[result.value.id] == row["id"]
    assert env.transport.posts.count("/v2/appointments") == 1


async def test_a_field_the_upstream_changed_is_reported_as_diverged(env: Env) -> None:
    (start,) = await env.free_slots()
    rule = {"endpoint": "GET /v2/appointments/*", "add": {"appointment.comments": "moved"}}
    assert (await env.control.post("/_sandbox/drift", json=rule)).is_success
    result = await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, start))
    assert (result.confirmation, result.diverged) == ("diverged", ("comments",))
    assert result.value.comments == "moved"
    (row,) = env.bookings(personas.JORDAN, start)
    assert row["comments"] == "booked by test"


async def test_check_in_check_out_and_wrong_state(env: Env) -> None:
    (start,) = await env.free_slots()
    booked = await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, start))
    aid = booked.value.id
    with pytest.raises(InvalidTransition):
        await writes.check_out(env.wctx, aid)
    arrived = await writes.check_in(env.wctx, aid)
    assert (arrived.confirmation, arrived.value.status) == ("confirmed", AppointmentStatus.ARRIVED)
    assert arrived.value.arrived_at == env.live.clock.now().replace(microsecond=0)
    with pytest.raises(InvalidTransition):
        await writes.check_in(env.wctx, aid)
    out = await writes.check_out(env.wctx, aid)
    assert (out.confirmation, out.value.status) == ("confirmed", AppointmentStatus.CHECKED_OUT)
    (row,) = env.bookings(personas.JORDAN, start)
    assert row["status_code"] == "O"
    with pytest.raises(InvalidTransition):
        await writes.cancel_appointment(env.wctx, aid)


async def test_cancel_and_reschedule(env: Env) -> None:
    first, second, third = await env.free_slots(3)
    a = await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, first))
    cancelled = await writes.cancel_appointment(
        env.wctx, a.value.id, reason_code="PR", comments="asked to"
    )
    assert cancelled.confirmation == "confirmed"
    assert cancelled.value.status == AppointmentStatus.CANCELLED
    assert cancelled.value.cancellation is not None
    assert cancelled.value.cancellation.reason_code == "PR"
    (row,) = env.bookings(personas.JORDAN, first)
    assert (row["status_code"], row["cancellation_reason_id"]) == ("C", 1)

    b = await writes.create_appointment(env.wctx, await env.command(personas.JORDAN, second))
    moved = await writes.reschedule_appointment(
        env.wctx, b.value.id, await env.command(personas.JORDAN, third)
    )
    assert (moved.confirmation, moved.value.start) == ("confirmed", third)
    (old,) = env.bookings(personas.JORDAN, second)
    (new,) = env.bookings(personas.JORDAN, third)
    assert (old["status_code"], old["cancellation_reason_id"]) == ("C", 7)  # Rescheduled
    assert new["status_code"] == "P"


# --- charges, encounters, claims ----------------------------------------------------------------


async def test_create_charge_is_confirmed_against_the_ledger(env: Env) -> None:
    command = NewCharge(
        patient_id=env.patient(personas.JORDAN),
        procedure_code="99213",
        units=1,
        diagnosis_codes=("J06.9",),
        service_date=ANCHOR - timedelta(days=1),
    )
    result = await writes.create_charge(env.wctx, command)
    assert (result.confirmation, result.diverged) == ("confirmed", ())
    upstream = env.wctx.index.charges[result.value.id]
    (row,) = env.truth("SELECT * FROM transactions WHERE id = ?", (upstream,))
    assert (row["procedure_code"], row["units"], row["service_date"], row["billed"]) == (
        "99213",
        1,
        command.service_date.isoformat(),
        0,
    )
    assert result.value.amount * 100 == row["amount_cents"]


async def test_a_charge_whose_answer_was_lost_is_not_posted_twice(env: Env) -> None:
    command = NewCharge(
        patient_id=env.patient(personas.CASEY),
        procedure_code="99214",
        diagnosis_codes=("J06.9",),
        service_date=ANCHOR - timedelta(days=2),
    )
    path = f"/v2/patients/{personas.CASEY.id}/charge"
    env.transport.armed = path
    result = await writes.create_charge(env.wctx, command)
    assert (result.confirmation, result.attempts) == ("confirmed", 1)
    rows = env.truth(
        "SELECT id FROM transactions WHERE patient_id = ? AND procedure_code = ? "
        "AND service_date = ?",
        (personas.CASEY.id, "99214", command.service_date.isoformat()),
    )
    assert [r["id"] for r in rows] == [env.wctx.index.charges[result.value.id]]
    assert env.transport.posts.count(path) == 1


async def test_encounter_push_sign_addendum_and_claim(env: Env) -> None:
    patient = env.patient(personas.JORDAN)
    pushed = await writes.push_encounter(
        env.wctx,
        NewEncounter(
            patient_id=patient,
            chief_complaint="Cough",
            note={"subjective": "Cough for a week", "plan": "Rest"},
            diagnoses=("J06.9",),
            procedures=(("99213", 1),),
        ),
    )
    assert (pushed.confirmation, pushed.value.status) == ("confirmed", "open")
    eid = pushed.value.id
    number = env.wctx.index.encounters[eid]
    (row,) = env.truth("SELECT * FROM encounters WHERE id = ?", (number,))
    assert (row["status"], row["chief_complaint"]) == ("open", "Cough")

    with pytest.raises(InvalidTransition):  # addenda go on signed encounters
        await writes.add_addendum(env.wctx, eid, "Too early.")
    signed = await writes.sign_encounter(env.wctx, eid)
    assert (signed.confirmation, signed.value.status) == ("confirmed", "signed")
    with pytest.raises(InvalidTransition):
        await writes.sign_encounter(env.wctx, eid)
    env.live.clock.advance(timedelta(minutes=5))
    added = await writes.add_addendum(env.wctx, eid, "Called back.")
    assert added.confirmation == "confirmed"
    assert [a.text for a in added.value.addenda] == ["Called back."]

    charges = env.truth("SELECT id FROM transactions WHERE encounter_id = ?", (number,))
    ctx = env.wctx.ctx("portal", "test")
    charge_ids = []
    for c in charges:
        cid = ChargeId.new(ctx.key("transaction", str(c["id"])))
        env.wctx.index.charges[cid] = c["id"]
        charge_ids.append(cid)
    claim = await writes.submit_claim(
        env.wctx, NewClaim(patient_id=patient, charge_ids=tuple(charge_ids))
    )
    assert claim.confirmation == "confirmed"
    assert claim.value.encounter_id == eid
    (truth,) = env.truth("SELECT * FROM claims WHERE claim_number = ?", (claim.value.claim_number,))
    assert truth["status"] == "submitted"

    with pytest.raises(ClaimRejected) as err:  # already billed
        await writes.submit_claim(
            env.wctx, NewClaim(patient_id=patient, charge_ids=tuple(charge_ids))
        )
    assert err.value.fields[0] == "chargeIds[0]"


# --- eligibility ---------------------------------------------------------------------------------


async def test_eligibility_polls_until_the_answer_is_ready(env: Env) -> None:
    polls: list[float] = []

    async def tick(seconds: float) -> None:
        polls.append(seconds)
        env.live.clock.advance(timedelta(seconds=seconds))

    env.wctx.sleep = tick
    env.wctx.poll_interval = 2.0
    result = await writes.check_eligibility(
        env.wctx, env.patient(personas.JORDAN), EligibilityRequest(service_date=ANCHOR)
    )
    assert (result.confirmation, result.value.status) == ("confirmed", "complete")
    assert polls == [2.0, 2.0, 2.0]  # ready 5 s of tenant time after the request
    (row,) = env.truth(
        "SELECT * FROM eligibility_requests WHERE patient_id = ? ORDER BY id DESC LIMIT 1",
        (personas.JORDAN.id,),
    )
    assert row["status"] == "complete"
    assert result.value.coverage_status in ("active", "inactive")


async def test_eligibility_without_time_passing_stays_pending(env: Env) -> None:
    env.wctx.poll_attempts = 3
    result = await writes.check_eligibility(
        env.wctx, env.patient(personas.CASEY), EligibilityRequest(service_date=ANCHOR)
    )
    assert (result.confirmation, result.value.status) == ("pending", "pending")


async def test_a_pushed_encounter_whose_answer_was_lost_is_not_pushed_twice(env: Env) -> None:
    env.transport.armed = "/portal/api/encounters"
    result = await writes.push_encounter(
        env.wctx,
        NewEncounter(
            patient_id=env.patient(personas.CASEY),
            chief_complaint="Rash",
            diagnoses=("L30.9",),
        ),
    )
    assert (result.confirmation, result.attempts) == ("confirmed", 1)
    rows = env.truth(
        "SELECT id FROM encounters WHERE patient_id = ? AND chief_complaint = 'Rash'",
        (personas.CASEY.id,),
    )
    assert [r["id"] for r in rows] == [env.wctx.index.encounters[result.value.id]]
    assert env.transport.posts.count("/portal/api/encounters") == 1
