"""No PHI in the logs: a full read through the facade, with a killed portal session and a 429
storm on the way, logs endpoints, counts and latencies, never a patient's name, date of birth,
member number, phone number or e-mail address."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
import stamina
from tests.connectors.test_facade_truth import Box, Read, collect, open_box

from carecloud_sandbox import personas

pytestmark = pytest.mark.anyio

LOGGERS = (
    "",
    "carebridge",
    "carebridge.connector",
    "httpx",
    "httpcore",
    "uvicorn",
    "uvicorn.error",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def box() -> AsyncIterator[Box]:
    with stamina.set_testing(True, attempts=8):
        b = open_box(40, seed=3)
        yield b
        await b.close()


LITERALS: dict[re.Pattern[str], str] = {}
"""The value each PHI pattern looks for: a pattern can only match a text that holds it (ignoring
case), so a plain substring test rules most patterns out before the regex runs."""


def phi(box: Box) -> list[re.Pattern[str]]:
    """Patterns of every patient's identifying values, from the ground truth and the personas."""

    def bounded(text: str, flags: int = 0) -> re.Pattern[str]:
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(text)}(?![0-9A-Za-z])", flags)
        LITERALS[pattern] = text
        return pattern

    names: set[str] = set()
    dobs: set[date] = set()
    members: set[str] = set()
    phones: set[str] = set()
    emails: set[str] = set()
    for r in box.rows("SELECT * FROM patients"):
        names |= {r["first_name"], r["last_name"]}
        if r["dob"]:
            dobs.add(date.fromisoformat(r["dob"]))
        if r["email"]:
            emails.add(r["email"])
        data = json.loads(r["data_json"])
        party = data.get("responsible_party") or {}
        for ph in [*data.get("phones", []), *party.get("phones", [])]:
            phones.add(ph["phone_number"])
        if party.get("relationship") not in (None, "self"):
            names |= {party["first_name"], party["last_name"]}
    for persona in personas.FAMILY:
        names |= {persona.first_name, persona.last_name}
        dobs.add(persona.dob)
        members.add(persona.member_number)
    members |= {
        r["member_number"] for r in box.rows("SELECT member_number FROM insurance_policies")
    }
    patterns = [bounded(n) for n in names if n and len(n) >= 3]
    for d in dobs:
        for text in (
            d.isoformat(),
            d.strftime("%m/%d/%Y"),
            f"{d.month}/{d.day}/{d.year}",
            d.strftime("%Y%m%d"),
            d.strftime("%m-%d-%Y"),
            d.strftime("%d.%m.%Y"),
        ):
            patterns.append(bounded(text))
    patterns += [bounded(m, re.IGNORECASE) for m in members if m]
    for number in phones:
        digits = re.sub(r"\D", "", number)[-10:]
        patterns += [bounded(number), bounded(digits), bounded(f"+1{digits}")]
        patterns.append(bounded(f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"))
    for e in emails:
        pattern = re.compile(re.escape(e), re.IGNORECASE)
        LITERALS[pattern] = e
        patterns.append(pattern)
    return patterns


def found(patterns: list[re.Pattern[str]], text: str) -> list[str]:
    """The patterns that match ``text``."""
    lowered = text.lower()
    return sorted(
        {p.pattern for p in patterns if LITERALS[p].lower() in lowered and p.search(text)}
    )


async def read_with_faults(box: Box) -> Read:
    """A full read; a 429 storm on v2 patient reads, and the portal session killed midway."""
    rule = {"pattern": "/v2/patients/*", "rate_429": 0.3, "retry_after": 1}
    assert (await box.control("POST", "/_sandbox/faults", json=rule)).is_success
    f = box.facade
    read = Read()
    read.providers = await collect(f.providers())
    read.locations = await collect(f.locations())
    read.visit_reasons = await collect(f.visit_reasons())
    read.appointments = await collect(f.appointments(date(2020, 1, 1), date(2028, 12, 31)))
    async for p in f.patients():
        read.patients.append(p)
        if len(read.patients) == 5:
            box.clock.advance(timedelta(seconds=31))  # a fresh TOTP step for the re-login
            assert (await box.control("POST", "/_sandbox/sessions/kill", json={})).is_success
    for p in read.patients:
        read.coverages[p.id] = await f.coverages(p.id)
        read.balances[p.id] = await f.balance(p.id)
        read.problems += await collect(f.problems(p.id))
        read.medications += await collect(f.medications(p.id))
        read.allergies += await collect(f.allergies(p.id))
        read.labs += await collect(f.labs(p.id))
        read.immunizations += await collect(f.immunizations(p.id))
        read.documents += await collect(f.documents(p.id))
    read.details = [await f.appointment(a.id) for a in read.appointments[:5]]
    read.encounters = await collect(f.encounters())
    read.charges = await collect(f.charges())
    read.claims = await collect(f.claims())
    read.payments = await collect(f.payments())
    read.remittances = await collect(f.remittances())
    read.statements = await collect(f.statements())
    return read


async def test_a_full_read_with_faults_logs_no_phi(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    read = await read_with_faults(box)
    assert len(read.patients) == box.tenant.db.scalar("SELECT COUNT(*) FROM patients")
    assert read.encounters
    assert read.claims
    # The faults happened: a second portal sign-in, and refused v2 attempts that were retried.
    health = box.facade.health()
    assert health["brokers"]["portal"]["renewals"] == 2
    refused = [r for r in caplog.records if r.name == "httpx" and " 429 " in r.getMessage()]
    assert refused
    # The connector logged each fetch (so this test has something to inspect).
    fetches = [r for r in caplog.records if r.name == "carebridge.connector"]
    assert fetches
    assert {getattr(r, "endpoint", None) for r in fetches} >= {
        "GET /v2/patients/{id}",
        "GET /portal/api/patients/{chartNumber}/problems",
        "GET /portal/api/encounters/{id}",
    }
    assert any(r.name.startswith("httpx") for r in caplog.records)
    text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.__dict__!r}" for r in caplog.records
    )
    text += "\n" + json.dumps(health, default=str)
    leaks = found(phi(box), text)
    assert leaks == [], f"PHI patterns found in the logs: {len(leaks)}"


def test_the_phi_patterns_catch_a_leak() -> None:
    """The detector itself: a logged name, date of birth or phone number is found."""
    with stamina.set_testing(True):
        b = open_box(5, seed=3)
    try:
        row = b.rows("SELECT * FROM patients LIMIT 1")[0]
        patterns = phi(b)
        dob = date.fromisoformat(row["dob"])
        for leak in (
            f"GET /x name={row['last_name']}",
            f"born {dob.strftime('%m/%d/%Y')}",
            f"born {dob.isoformat()}",
            f"member {personas.JORDAN.member_number}",
        ):
            assert found(patterns, leak), leak
        assert not found(patterns, "fetched v2 GET /v2/patients/{id}: 1 records")
    finally:
        b.tenant.db.close()
