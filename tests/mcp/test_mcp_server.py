"""The MCP server in process, with the SDK's own client: every tool, the two-phase writes
(preview, confirm, replay, expiry, tampering, another caller, a person's approval), the
scope-filtered tool list, tenant isolation, the audit entry of each call, and the limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.support.mcp import Bed, bed

from carebridge.domain.scheduling import Location
from carebridge.errors import ConfirmationRefused, Forbidden
from carebridge.mcp.server import READ_SCOPES, WRITE_OPERATIONS
from carebridge.services.agents import AgentLimits
from carebridge.services.writes import NewCharge
from mcp import Client

pytestmark = pytest.mark.anyio

ALL_TOOLS = set(READ_SCOPES) | set(WRITE_OPERATIONS)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bed]:
    path = Path(tmp_path_factory.mktemp("mcp")) / "store.db"
    async with bed(str(path), patients=8) as here:
        await here.key("ten_a", "admin", "admin_a")
        await here.key("ten_a", "admin", "other_a")
        await here.key("ten_a", "admin", "careful_a")
        await here.key("ten_b", "admin", "admin_b")
        await here.key("ten_a", "patient.read", "reader_a")
        await here.key("ten_a", "appointment.read,appointment.write", "desk_a")
        yield here


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured answer (the call must succeed)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """A tool error's text (the call must fail as a tool error, not a protocol error)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return result.content[0].text  # type: ignore[union-attr]


async def audit(live: Bed, tenant: str = "ten_a") -> list[dict[str, Any]]:
    return [
        e
        for e in await live.deployment.audit.events(tenant, after=0, limit=10_000)
        if str(e["route"]).startswith("MCP ")
    ]


async def booking(client: Client, patient: str, nth: int = 0) -> dict[str, Any]:
    """Arguments of book_appointment into the ``nth`` free slot of the first resource's second
    visit reason on 2026-11-25."""
    resource = (await call(client, "list_practice", kind="resource"))["items"][0]
    reason = resource["visit_reason_ids"][1]
    slots = (
        await call(
            client,
            "find_availability",
            visit_reason_id=reason,
            start="2026-11-25",
            end="2026-11-26",
            resource_id=resource["id"],
        )
    )["slots"]
    slot = slots[nth]
    return {
        "patient_id": patient,
        "resource_id": slot["resource_id"],
        "location_id": slot["location_id"],
        "visit_reason_id": reason,
        "start": slot["start"],
    }


def booked(live: Bed, start: str) -> int:
    """Live bookings in the emulator's own database at ``start``."""
    at = datetime.fromisoformat(start).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = live.truth(
        "SELECT COUNT(*) AS n FROM appointments WHERE start_time = ? AND status_code "
        "NOT IN ('C', 'R')",
        (at,),
    )
    return int(rows[0]["n"])


async def first_patient(client: Client) -> str:
    return str((await call(client, "search_patients", limit=3))["patients"][0]["id"])


async def test_a_key_sees_only_the_tools_its_scopes_allow(live: Bed) -> None:
    async with live.client("admin_a") as client:
        assert {t.name for t in (await client.list_tools()).tools} == ALL_TOOLS
    async with live.client("reader_a") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"search_patients", "get_patient_summary"}
        text = await refused(client, "list_denials")
        assert "Forbidden" in text
        assert "claim.read" in text
    async with live.client("desk_a") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "book_appointment" in names
        assert "submit_claim" not in names


async def test_every_tool_has_an_input_schema_and_an_output_schema(live: Bed) -> None:
    async with live.client("admin_a") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    book = tools["book_appointment"]
    assert {"patient_id", "start", "confirmation"} <= set(book.input_schema["properties"])
    assert set(book.input_schema["required"]) >= {"patient_id", "resource_id", "start"}
    assert all(t.output_schema for t in tools.values())
    assert tools["search_patients"].annotations.read_only_hint is True  # type: ignore[union-attr]


async def test_the_read_tools_answer_compact_records(live: Bed) -> None:
    async with live.client("admin_a") as client:
        patients = (await call(client, "search_patients", limit=5))["patients"]
        assert patients
        assert set(patients[0]) == {"id", "name", "birth_date", "active"}
        patient = patients[0]["id"]
        summary = await call(client, "get_patient_summary", patient_id=patient)
        assert summary["id"] == patient
        assert "coverages" in summary
        assert "balances" in summary
        assert "ssn" not in summary
        assert "addresses" not in summary
        chart = await call(client, "get_chart_summary", patient_id=patient)
        assert chart["patient_id"] == patient
        assert isinstance(chart["encounters"], list)
        eligibility = await call(client, "check_eligibility", patient_id=patient)
        assert eligibility["patient_id"] == patient
        assert "member_number" not in eligibility
        statements = await call(client, "get_statements", patient_id=patient)
        assert statements["patient_id"] == patient
        assert isinstance(statements["balances"], list)
        appointments = await call(
            client, "list_appointments", start="2026-11-17", end="2026-12-20", limit=20
        )
        assert appointments["appointments"], "the sandbox's schedule has appointments"
        denials = await call(client, "list_denials", limit=10)
        assert all(c["status"] == "denied" for c in denials["claims"])
        claims = await live.deployment.live.records.page(
            "ten_a", "claim", filters={}, updated_since=None, starts_from=None,
            starts_before=None, limit=1, cursor=None,
        )  # fmt: skip
        if claims.items:
            status = await call(client, "get_claim_status", claim_id=claims.items[0]["id"])
            assert status["id"] == claims.items[0]["id"]
            assert status["status"]
        events = await call(client, "recent_events", after=0, limit=5)
        assert isinstance(events["events"], list)
        reasons = await call(client, "list_practice", kind="visit_reason")
        assert reasons["items"]
        assert reasons["items"][0]["id"].startswith("vr_")


async def _guid(live: Bed, patient: str) -> str:
    record = await live.deployment.live.records.get("ten_a", "patient", patient)
    assert record is not None
    return next(str(s["upstream_id"]) for s in record["sources"] if s["surface"] == "v2")


async def test_the_chart_summary_has_problems_medications_and_allergies_phi_minimized(
    live: Bed,
) -> None:
    async with live.client("admin_a") as client:
        patients = [p["id"] for p in (await call(client, "search_patients", limit=10))["patients"]]
        guids = {await _guid(live, p): p for p in patients}
        marks = ",".join("?" * len(guids))
        rows = live.truth(
            f"SELECT patient_id, COUNT(*) AS n FROM medications WHERE patient_id IN ({marks}) "
            "GROUP BY patient_id ORDER BY n DESC, patient_id LIMIT 1",
            tuple(guids),
        )
        guid = str(rows[0]["patient_id"])
        chart = await call(client, "get_chart_summary", patient_id=guids[guid])
    medications = live.truth(
        "SELECT rxnorm_code, status FROM medications WHERE patient_id = ?", (guid,)
    )
    assert medications, "the busiest patient has medications"
    assert sorted(x["rxnorm_code"] for x in chart["medications"]) == sorted(
        x["rxnorm_code"] for x in medications if x["status"] != "entered_in_error"
    )
    allergies = live.truth("SELECT allergen_code FROM allergies WHERE patient_id = ?", (guid,))
    assert sorted(a["allergen_code"] for a in chart["allergies"]) == sorted(
        a["allergen_code"] for a in allergies
    )
    problems = live.truth("SELECT icd10_code FROM problems WHERE patient_id = ?", (guid,))
    assert sorted(p["code"] for p in chart["problems"]) == sorted(p["icd10_code"] for p in problems)
    statuses = [x["status"] for x in chart["medications"]]
    assert statuses == sorted(statuses, key=lambda s: s != "active"), "current ones first"
    for item in chart["medications"]:
        assert set(item) == {"name", "rxnorm_code", "status", "start_date", "end_date"}
    for item in chart["allergies"]:
        assert set(item) == {
            "allergen", "allergen_code", "allergen_system", "category", "severity", "status"
        }  # fmt: skip
    text = json.dumps(chart)
    assert "sig" not in chart["medications"][0]
    assert "reaction" not in text
    assert any(
        e["patient_ids"] == [guids[guid]]
        for e in await audit(live)
        if e["route"].startswith("MCP get_chart_summary ok args:")
    )


async def test_a_write_previews_then_books_once_with_its_token(live: Bed) -> None:
    async with live.client("admin_a") as client:
        patient = await first_patient(client)
        args = await booking(client, patient, nth=0)
        before = booked(live, args["start"])
        preview = await call(client, "book_appointment", **args)
        assert preview["stage"] == "preview"
        assert preview["confirmation_token"]
        assert preview["checks"][0] == {
            "name": "availability", "ok": True, "detail": "a free slot starts then"
        }  # fmt: skip
        assert preview["upstream_effects"]
        assert preview["would_change"]["appointment"]
        assert booked(live, args["start"]) == before, "a preview writes nothing"
        token = preview["confirmation_token"]
        done = await call(client, "book_appointment", **args, confirmation=token)
        assert done["stage"] == "done"
        assert done["confirmation"] == "confirmed"
        assert done["record"]["patient_id"] == patient
        assert done["ledger_id"]
        assert booked(live, args["start"]) == before + 1
        # the same token again: refused, nothing written
        text = await refused(client, "book_appointment", **args, confirmation=token)
        assert "ConfirmationRefused" in text
        assert "used already" in text
        assert booked(live, args["start"]) == before + 1
    entries = await audit(live)
    routes = [e["route"] for e in entries if "book_appointment" in e["route"]]
    assert any(r.startswith("MCP book_appointment preview args:") for r in routes)
    assert any(r.startswith("MCP book_appointment done args:") for r in routes)
    assert any("error:ConfirmationRefused" in r for r in routes)
    done_entry = next(e for e in entries if e["route"].startswith("MCP book_appointment done"))
    assert done_entry["principal"] == "key_admin_a"
    assert done_entry["patient_ids"] == [patient]


async def test_a_token_is_refused_with_other_arguments_another_caller_or_once_expired(
    live: Bed,
) -> None:
    async with live.client("admin_a") as client:
        patient = await first_patient(client)
        args = await booking(client, patient, nth=3)
        token = (await call(client, "book_appointment", **args))["confirmation_token"]
        tampered = args | {"start": (await booking(client, patient, nth=4))["start"]}
        text = await refused(client, "book_appointment", **tampered, confirmation=token)
        assert "other arguments" in text
        assert "is_error" not in text
        wrong_tool = await refused(
            client, "cancel_appointment", appointment_id="apt_x1", confirmation=token
        )
        assert "ConfirmationRefused" in wrong_tool or "NotFound" in wrong_tool
    async with live.client("other_a") as client:
        text = await refused(client, "book_appointment", **args, confirmation=token)
        assert "another caller" in text
    async with live.client("admin_b") as client:  # another tenant: the token is unknown there
        text = await refused(client, "book_appointment", **args, confirmation=token)
        assert "NotFound" in text or "unknown confirmation token" in text
    async with live.client("admin_a") as client:
        live.clock.advance(timedelta(minutes=6))
        try:
            text = await refused(client, "book_appointment", **args, confirmation=token)
        finally:
            live.clock.advance(timedelta(seconds=0))
        assert "expired" in text
        assert booked(live, args["start"]) == 0
        forged = await refused(
            client, "book_appointment", **args, confirmation=token.split(".")[0] + ".forged"
        )
        assert "unknown confirmation token" in forged


async def test_a_keys_policy_makes_its_writes_wait_for_a_person(live: Bed) -> None:
    services = live.services
    careful = await live.principal("careful_a")
    admin = await live.principal("admin_a")
    await services.confirmations.set_policy(admin, careful.id, True)
    async with live.client("careful_a") as client:
        patient = await first_patient(client)
        args = await booking(client, patient, nth=6)
        preview = await call(client, "book_appointment", **args)
        assert preview["needs_person_approval"] is True
        token, token_id = preview["confirmation_token"], preview["token_id"]
        text = await refused(client, "book_appointment", **args, confirmation=token)
        assert "waits for a person's approval" in text
        assert token_id in text
        with pytest.raises(Forbidden):  # the agent cannot approve its own write
            await services.confirmations.approve(careful, token_id)
        approved = await services.confirmations.approve(admin, token_id)
        assert approved.approved_by == admin.id
        with pytest.raises(ConfirmationRefused):
            await services.confirmations.approve(admin, token_id)
        done = await call(client, "book_appointment", **args, confirmation=token)
        assert done["stage"] == "done"
    await services.confirmations.set_policy(admin, careful.id, False)


async def test_the_appointment_verbs_and_the_chart_writes_run_two_phase(live: Bed) -> None:
    async with live.client("admin_a") as client:

        async def confirmed(tool: str, **args: Any) -> dict[str, Any]:
            preview = await call(client, tool, **args)
            assert preview["stage"] == "preview", preview
            return await call(client, tool, **args, confirmation=preview["confirmation_token"])

        patient = await first_patient(client)
        args = await booking(client, patient, nth=8)
        appointment = (await confirmed("book_appointment", **args))["record"]["id"]
        moved = await booking(client, patient, nth=10)
        rebooked = await confirmed(
            "reschedule_appointment",
            appointment_id=appointment,
            **{k: moved[k] for k in ("resource_id", "location_id", "visit_reason_id", "start")},
        )
        assert rebooked["stage"] == "done"
        assert rebooked["record"]["start"]
        appointment = rebooked["record"]["id"]
        arrived = await confirmed("check_in", appointment_id=appointment)
        assert arrived["record"]["status"] == "arrived"
        left = await confirmed("check_out", appointment_id=appointment)
        assert left["record"]["status"] == "checked_out"
        other = await booking(client, patient, nth=12)
        second = (await confirmed("book_appointment", **other))["record"]["id"]
        cancelled = await confirmed("cancel_appointment", appointment_id=second)
        assert cancelled["record"]["status"] == "cancelled"
        encounter = await confirmed(
            "create_encounter", patient_id=patient, diagnoses=["J06.9"], procedures=["99213"]
        )
        assert encounter["record"]["status"] == "open"
        signed = await confirmed("sign_encounter", encounter_id=encounter["record"]["id"])
        assert signed["record"]["status"] == "signed"
        claim = await call(client, "submit_claim", patient_id=patient, charge_ids=["chg_none1"])
        assert claim["stage"] == "preview"
        assert claim["checks"][0]["ok"] is False


def addenda(live: Bed, text: str) -> int:
    """Addenda with ``text`` in the emulator's own database."""
    rows = live.truth("SELECT COUNT(*) AS n FROM encounter_addenda WHERE text = ?", (text,))
    return int(rows[0]["n"])


async def test_an_addendum_goes_on_a_signed_encounter_two_phase_and_reaches_upstream(
    live: Bed,
) -> None:
    async with live.client("admin_a") as client:

        async def confirmed(tool: str, **args: Any) -> dict[str, Any]:
            preview = await call(client, tool, **args)
            return await call(client, tool, **args, confirmation=preview["confirmation_token"])

        patient = await first_patient(client)
        made = await confirmed("create_encounter", patient_id=patient, diagnoses=["J06.9"])
        encounter = made["record"]["id"]
        early = "Addendum written while the encounter is still open."
        preview = await call(client, "add_addendum", encounter_id=encounter, text=early)
        assert preview["checks"] == [
            {
                "name": "encounter_state",
                "ok": False,
                "detail": "the encounter is open; addenda go on signed encounters",
            }
        ]
        token = preview["confirmation_token"]
        text = await refused(
            client, "add_addendum", encounter_id=encounter, text=early, confirmation=token
        )
        assert "InvalidTransition: " in text
        assert addenda(live, early) == 0
        await confirmed("sign_encounter", encounter_id=encounter)
        note = "Culture result reviewed after signing; plan unchanged."
        preview = await call(client, "add_addendum", encounter_id=encounter, text=note)
        assert preview["stage"] == "preview"
        assert preview["checks"][0]["ok"] is True
        assert preview["would_change"]["addendum"] == {"text": note}
        assert preview["would_change"]["encounter"]["status"] == "signed"
        assert addenda(live, note) == 0, "a preview writes nothing"
        token = preview["confirmation_token"]
        done = await call(
            client, "add_addendum", encounter_id=encounter, text=note, confirmation=token
        )
        assert done["stage"] == "done"
        assert done["operation"] == "add_addendum"
        assert done["confirmation"] == "confirmed"
        assert done["record"]["id"] == encounter
        assert len(done["record"]["addenda"]) == 1
        assert set(done["record"]["addenda"][0]) == {"author_id", "created_at"}
        assert addenda(live, note) == 1
        again = await refused(
            client, "add_addendum", encounter_id=encounter, text=note, confirmation=token
        )
        assert "used already" in again
        assert addenda(live, note) == 1
        empty = await refused(client, "add_addendum", encounter_id=encounter, text="")
        assert "text" in empty
    routes = [e["route"] for e in await audit(live) if "add_addendum" in e["route"]]
    assert any(r.startswith("MCP add_addendum done args:") for r in routes)
    assert any(r.startswith("MCP add_addendum error:InvalidTransition") for r in routes)


async def test_bad_arguments_and_foreign_ids_are_tool_errors_and_write_nothing(live: Bed) -> None:
    ledger_before = await _ledger(live)
    async with live.client("admin_b") as client:
        foreign = await first_patient(client)
    async with live.client("admin_a") as client:
        text = await refused(client, "get_patient_summary", patient_id=foreign)
        assert "NotFound: " in text
        assert "Forbidden" not in text
        text = await refused(client, "get_patient_summary", patient_id="not-an-id")
        assert "patient_id" in text
        text = await refused(client, "book_appointment", patient_id="pat_x", start="tomorrow")
        assert "start" in text or "resource_id" in text
        mine = await first_patient(client)
        args = await booking(client, mine, nth=14)
        text = await refused(client, "book_appointment", **(args | {"patient_id": foreign}))
        assert "NotFound: " in text
        text = await refused(client, "book_appointment", **args, confirmation="mct_nope")
        assert "unknown confirmation token" in text
    assert await _ledger(live) == ledger_before


async def _ledger(live: Bed) -> int:
    from sqlalchemy import text

    async with live.deployment.engine.connect() as conn:
        return int((await conn.execute(text("SELECT COUNT(*) FROM write_ledger"))).scalar_one())


async def test_the_limits_refuse_calls_and_patients_with_clear_tool_errors(live: Bed) -> None:
    tight = live.limited(AgentLimits(calls_per_minute=3, patients_per_call=2, patients_per_hour=2))
    async with live.client("admin_a", tight) as client:
        found = (await call(client, "search_patients", limit=10))["patients"]
        assert len(found) == 2, "a call reads at most patients_per_call patients"
        text = await refused(client, "search_patients", limit=10)
        assert "AgentLimitExceeded" in text
        assert "patients an hour" in text
        seen = found[0]["id"]  # a patient read this hour counts once
        await call(client, "get_patient_summary", patient_id=seen)
        text = await refused(client, "get_patient_summary", patient_id=seen)
        assert "AgentLimitExceeded" in text
        assert "tool calls a minute" in text
        live.clock.advance(timedelta(minutes=1))
        await call(client, "get_patient_summary", patient_id=seen)


async def test_the_chart_resource_and_the_prompts(live: Bed) -> None:
    async with live.client("admin_a") as client:
        patient = await first_patient(client)
        templates = await client.list_resource_templates()
        uris = {t.uri_template for t in templates.resource_templates}
        assert "carebridge://patients/{patient_id}/chart" in uris
        read = await client.read_resource(f"carebridge://patients/{patient}/chart")
        body = json.loads(read.contents[0].text)  # type: ignore[union-attr]
        assert body["patient_id"] == patient
        location = (await call(client, "list_practice", kind="location"))["items"][0]["id"]
        day = await client.read_resource(f"carebridge://locations/{location}/schedule/2026-11-25")
        assert "appointments" in json.loads(day.contents[0].text)  # type: ignore[union-attr]
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"prepare_tomorrow_schedule", "work_denials_queue"} <= prompts
        got = await client.get_prompt(
            "prepare_tomorrow_schedule", {"location_id": location, "day": "2026-11-25"}
        )
        assert location in got.messages[0].content.text  # type: ignore[union-attr]


async def _schedule(client: Client, location: str, day: str) -> dict[str, Any]:
    read = await client.read_resource(f"carebridge://locations/{location}/schedule/{day}")
    return dict(json.loads(read.contents[0].text))  # type: ignore[union-attr]


async def test_the_days_schedule_is_counted_from_midnight_in_the_locations_zone(
    live: Bed,
) -> None:
    """A visit at 15:00 UTC or later is the next day in Tokyo: the location's day there holds
    it, and the UTC day of the same date would not."""
    records, tokyo = live.deployment.live.records, ZoneInfo("Asia/Tokyo")

    def starts(a: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(a["start"])

    async with live.client("admin_a") as client:
        some = await call(client, "list_appointments", start="2026-11-17", end="2026-12-20")
        visit = next(a for a in some["appointments"] if a["location_id"] and starts(a).hour >= 15)
        location, local_day = visit["location_id"], starts(visit).astimezone(tokyo).date()
        plain = await _schedule(client, location, local_day.isoformat())
        assert plain["time_zone"] == "UTC", "the upstream names no zone: UTC midnight"
        assert plain["starts_at"] == f"{local_day.isoformat()}T00:00:00+00:00"
        stored = await records.get("ten_a", "location", location)
        assert stored is not None
        zoned = Location.model_validate(stored | {"time_zone": "Asia/Tokyo"})
        await live.deployment.live.writer.put("ten_a", "location", [zoned], live.clock.now())
        try:
            day = await _schedule(client, location, local_day.isoformat())
        finally:
            back = Location.model_validate(stored | {"time_zone": None})
            await live.deployment.live.writer.put("ten_a", "location", [back], live.clock.now())
        around = await call(
            client,
            "list_appointments",
            start=(local_day - timedelta(days=1)).isoformat(),
            end=(local_day + timedelta(days=1)).isoformat(),
            location_id=location,
            limit=100,
        )
    before = local_day - timedelta(days=1)
    assert day["time_zone"] == "Asia/Tokyo"
    assert (day["starts_at"], day["ends_at"]) == (
        f"{before.isoformat()}T15:00:00+00:00",
        f"{local_day.isoformat()}T15:00:00+00:00",
    )
    seen = around["appointments"]
    local = [a["id"] for a in seen if starts(a).astimezone(tokyo).date() == local_day]
    by_utc = [a["id"] for a in seen if starts(a).astimezone(UTC).date() == local_day]
    assert [a["id"] for a in day["appointments"]] == local
    assert visit["id"] in local
    assert visit["id"] not in by_utc, "UTC midnight would have counted it on another day"
    assert [a["id"] for a in plain["appointments"]] == by_utc


async def test_a_claim_from_an_unbilled_charge_is_submitted_once_confirmed(live: Bed) -> None:
    admin = await live.principal("admin_a")
    async with live.client("admin_a") as client:
        patients = (await call(client, "search_patients", limit=8))["patients"]
        summaries = [
            await call(client, "get_patient_summary", patient_id=p["id"]) for p in patients
        ]
        patient = next(s["id"] for s in summaries if s["coverages"])
        provider = (await call(client, "list_practice", kind="provider"))["items"][0]["id"]
        command = NewCharge(
            patient_id=patient,
            procedure_code="99213",
            diagnosis_codes=("J06.9",),
            service_date=date(2026, 11, 23),
            provider_id=provider,
        )
        charge = await live.services.writes.create_charge(
            admin, command, key="mcp-test-charge", request=command.model_dump(mode="json")
        )
        charge_id = charge.value["id"]
        args = {"patient_id": patient, "charge_ids": [charge_id]}
        preview = await call(client, "submit_claim", **args)
        assert preview["checks"] == [
            {"name": "charges", "ok": True, "detail": "every charge is the patient's and unbilled"}
        ]
        claims_before = live.truth("SELECT COUNT(*) AS n FROM claims")[0]["n"]
        token = preview["confirmation_token"]
        done = await call(client, "submit_claim", **args, confirmation=token)
        assert done["stage"] == "done"
        assert done["operation"] == "submit_claim"
        assert done["confirmation"] == "confirmed"
        assert done["record"]["patient_id"] == patient
        number = done["record"]["claim_number"]
        upstream = live.truth("SELECT status FROM claims WHERE claim_number = ?", (number,))
        assert len(upstream) == 1, "the claim is in the emulator's own database"
        assert live.truth("SELECT COUNT(*) AS n FROM claims")[0]["n"] == claims_before + 1
        again = await call(client, "submit_claim", **args)
        assert again["checks"][0]["ok"] is False, "the charge is on a claim now"
        assert "already on a claim" in again["checks"][0]["detail"]
