"""The write service, over in-memory ports: a refusal by the rules is kept under its key in a
neutral form and replayed as :class:`RefusedReplay` with the first refusal's code, status and
fields; an outcome replays as itself; the scope is checked before anything is looked up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import ChargeId, PatientId
from carebridge.errors import ClaimRejected, Forbidden, RefusedReplay, SlotTaken
from carebridge.ports.upstream import NewAppointment, NewClaim, WriteResult
from carebridge.ports.writes import InFlight, Mismatch, Outcome, Replay, Start
from carebridge.services.reads import Backend, Reads
from carebridge.services.records import Principal
from carebridge.services.writes import Writes

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TENANT = "ten_a"
PATIENT = "pat_1"
ADMIN = Principal("key_a", TENANT, frozenset({"admin"}))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Booked(DomainModel):
    id: str
    patient_id: str


@dataclass
class Store:
    """Records, audit, record writer, idempotency and ledger in memory."""

    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    audited: list[tuple[str, list[str]]] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    # records
    async def page(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - not read
        raise NotImplementedError

    async def get(self, tenant_id: str, kind: str, entity_id: str) -> dict[str, Any] | None:
        return self.rows.get((kind, entity_id)) if tenant_id == TENANT else None

    # audit
    async def record(
        self, tenant_id: str, principal: str, route: str, patient_ids: Sequence[str], at: datetime
    ) -> int:
        self.audited.append((route, list(patient_ids)))
        return len(self.audited)

    # record writer
    async def put(self, tenant_id: str, kind: str, records: Sequence[Any], fetched_at: Any) -> int:
        for r in records:
            self.rows[(kind, r.id)] = r.model_dump(mode="json")
        return len(records)

    async def refreshed_at(self, tenant_id: str, kind: str, scope: str) -> datetime | None:
        return NOW

    async def mark_refreshed(self, tenant_id: str, kind: str, scope: str, at: datetime) -> None:
        return None

    # idempotency
    async def begin(
        self, tenant_id: str, principal: str, key: str, fingerprint: str, now: datetime
    ) -> Outcome:
        found = self.keys.get(key)
        if found is None:
            self.keys[key] = {"fingerprint": fingerprint, "state": "in_flight"}
            return Start()
        if found["fingerprint"] != fingerprint:
            return Mismatch()
        if found["state"] == "in_flight":
            return InFlight()
        return Replay(found["status"], found["response"])

    async def complete(
        self, tenant_id: str, principal: str, key: str, status_code: int, response: Any
    ) -> None:
        self.keys[key].update(state="done", status=status_code, response=response)

    async def abandon(self, tenant_id: str, principal: str, key: str) -> None:
        self.keys.pop(key, None)

    async def renew(self, tenant_id: str, principal: str, key: str, now: datetime) -> None:
        return None

    # ledger
    async def open(
        self, tenant_id: str, operation: str, request: dict[str, Any], now: datetime
    ) -> int:
        self.entries.append({"operation": operation, "state": "accepted"})
        return len(self.entries)

    async def close(
        self, entry: int, *, state: str, entity_id: str | None, diverged: Any, now: datetime
    ) -> None:
        self.entries[entry - 1]["state"] = state


@dataclass
class Upstream:
    """Books once, then every slot is taken; refuses every claim."""

    sent: int = 0

    async def create_appointment(self, command: NewAppointment) -> WriteResult[Booked]:
        self.sent += 1
        if self.sent > 1:
            raise SlotTaken("the slot is taken", resource=1, start=NOW)
        return WriteResult(
            value=Booked(id="apt_1", patient_id=command.patient_id), confirmation="confirmed"
        )

    def charges(self, *, patient_id: PatientId | None = None) -> Any:
        async def none() -> Any:
            return
            yield

        return none()

    async def submit_claim(self, command: NewClaim) -> WriteResult[Any]:
        self.sent += 1
        raise ClaimRejected("the scrubber refused the claim", fields=("diagnosis", "npi"))


@dataclass
class Upstreams:
    upstream: Upstream

    async def of(self, tenant_id: str) -> Any:
        return self.upstream

    def health(self, tenant_id: str) -> dict[str, Any] | None:
        return None


def _writes() -> tuple[Writes, Store, Upstream]:
    store, upstream = Store(), Upstream()
    store.rows[("patient", PATIENT)] = {"id": PATIENT}
    store.rows[("charge", "chg_1")] = {"id": "chg_1", "patient_id": PATIENT}
    for kind, entity in (("resource", "res_1"), ("location", "loc_1"), ("visit_reason", "vr_1")):
        store.rows[(kind, entity)] = {"id": entity}
    reads = Reads(
        store, store, Backend(Upstreams(upstream), store, store, store), clock=lambda: NOW
    )
    return Writes(reads), store, upstream


def _booking() -> NewAppointment:
    return NewAppointment.model_validate(
        {
            "patient_id": PATIENT,
            "resource_id": "res_1",
            "location_id": "loc_1",
            "visit_reason_id": "vr_1",
            "start": NOW,
        }
    )


async def test_an_outcome_replays_as_itself_without_a_second_send() -> None:
    writes, store, upstream = _writes()
    request = {"booking": 1}
    first = await writes.create_appointment(ADMIN, _booking(), key="k1", request=request)
    again = await writes.create_appointment(ADMIN, _booking(), key="k1", request=request)
    assert (first.created, first.replayed, again.replayed) == (True, False, True)
    assert again.as_json() == first.as_json()
    assert upstream.sent == 1
    assert [e["state"] for e in store.entries] == ["confirmed"]


async def test_a_refusal_is_kept_neutral_and_replayed_with_its_code_status_and_fields() -> None:
    writes, store, upstream = _writes()
    claim = NewClaim(patient_id=PatientId(PATIENT), charge_ids=(ChargeId("chg_1"),))
    with pytest.raises(ClaimRejected):
        await writes.submit_claim(ADMIN, claim, key="k2", request={"claim": 1})
    assert store.keys["k2"]["status"] == ClaimRejected.status
    assert store.keys["k2"]["response"] == {
        "refused": {
            "code": "ClaimRejected",
            "message": "the scrubber refused the claim",
            "fields": ["diagnosis", "npi"],
        }
    }
    with pytest.raises(RefusedReplay) as replayed:
        await writes.submit_claim(ADMIN, claim, key="k2", request={"claim": 1})
    err = replayed.value
    assert (err.code, err.answered, err.fields, err.replayed) == (
        "ClaimRejected",
        422,
        ("diagnosis", "npi"),
        True,
    )
    assert str(err) == "the scrubber refused the claim"
    assert upstream.sent == 1
    assert [e["state"] for e in store.entries] == ["rejected"]


async def test_a_refusal_kept_as_a_problem_body_by_an_earlier_version_still_replays() -> None:
    writes, store, _ = _writes()
    problem = {
        "type": "https://carebridge.dev/problems/slot-taken",
        "title": "Conflict",
        "status": 409,
        "detail": "the slot is taken",
        "code": "SlotTaken",
    }
    request = {"booking": 2}
    await writes.create_appointment(ADMIN, _booking(), key="old", request=request)
    store.keys["old"].update(status=409, response=problem)
    with pytest.raises(RefusedReplay) as replayed:
        await writes.create_appointment(ADMIN, _booking(), key="old", request=request)
    assert (replayed.value.code, replayed.value.answered, replayed.value.fields) == (
        "SlotTaken",
        409,
        (),
    )


async def test_the_scope_is_checked_before_anything_is_looked_up() -> None:
    writes, store, upstream = _writes()
    reader = Principal("key_r", TENANT, frozenset({"appointment.read"}))
    with pytest.raises(Forbidden):
        await writes.check_in(reader, "apt_unknown", key=None, request={})
    with pytest.raises(Forbidden):
        await writes.create_appointment(reader, _booking(), key="k3", request={})
    assert (upstream.sent, store.entries, store.keys, store.audited) == (0, [], {}, [])
