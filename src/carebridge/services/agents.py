"""The agents' use cases (the MCP server's): two-phase writes, per-principal limits, and the
few composite reads an agent asks for in one call (a patient's summary, a chart summary, the
denials queue, statements and balances, a location's day in its own time zone).

**Two-phase writes.** A write asked without a confirmation is only previewed: the preview
(what would change, the availability or charge check) comes with a confirmation token. The
token is ``mct_<id>.<secret>``: the store keeps its id, the hash of its secret, the principal
and write operation it was issued for, the hash of the exact arguments, and its expiry
(:data:`TOKEN_TTL`). Redeeming it checks all of them and marks it used with one conditional
update, so it runs one write at most, in whichever process redeems it first; the write then
goes through :class:`~carebridge.services.writes.Writes` under the idempotency key
``mcp-<id>``. A principal whose policy says so needs a person's approval
(:meth:`Confirmations.approve`, through the API) before its token can be redeemed.

**Limits** (:class:`Limiter`) are kept in process: tool calls per minute, and distinct patients
read per call and per hour, per principal, on the injected clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carebridge.domain.kinds import KINDS
from carebridge.domain.kinds import writes as kind_writes
from carebridge.domain.values import PatientId
from carebridge.errors import AgentLimitExceeded, ConfirmationRefused, Forbidden
from carebridge.ports.confirmations import Confirmation, ConfirmationStore
from carebridge.services.reads import Freshness, ListQuery, Reads, given
from carebridge.services.records import NotFound, Principal

TOKEN_TTL = timedelta(minutes=5)
"""How long a preview's confirmation token may be redeemed."""


def _now() -> datetime:
    return datetime.now(UTC)


def args_digest(arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the arguments as canonical JSON (sorted keys, no spaces), the
    ``confirmation`` itself left out: what a token is bound to, and what the audit keeps."""
    kept = {k: v for k, v in arguments.items() if k != "confirmation"}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Ticket:
    """A preview's confirmation token, shown once to the agent that asked."""

    token: str
    token_id: str
    expires_at: datetime
    needs_person: bool


@dataclass
class Confirmations:
    """Issue, approve and redeem write confirmation tokens (see the module docstring)."""

    store: ConfirmationStore
    clock: Callable[[], datetime] = _now
    ttl: timedelta = TOKEN_TTL

    async def issue(
        self, principal: Principal, operation: str, arguments: Mapping[str, Any]
    ) -> Ticket:
        """A token for ``operation`` with exactly ``arguments``, for ``principal`` only."""
        principal.require(kind_writes()[operation].scope)
        now = self.clock()
        token_id = "mct_" + secrets.token_hex(12)
        secret = secrets.token_urlsafe(24)
        needs_person = await self.store.needs_person(principal.tenant_id, principal.id)
        record = Confirmation(
            id=token_id,
            tenant_id=principal.tenant_id,
            principal=principal.id,
            tool=operation,
            args_hash=args_digest(arguments),
            secret_hash=_hash(secret),
            issued_at=now,
            expires_at=now + self.ttl,
            needs_person=needs_person,
        )
        await self.store.issue(record)
        return Ticket(f"{token_id}.{secret}", token_id, record.expires_at, needs_person)

    async def redeem(
        self, principal: Principal, operation: str, token: str, arguments: Mapping[str, Any]
    ) -> str:
        """Use ``token`` for this call; returns the write's idempotency key.

        Raises:
            ConfirmationRefused: the token is unknown (or another tenant's), was issued to
                another caller, operation or arguments, was used already, has expired, or
                waits for a person's approval.
        """
        token_id, _, secret = token.strip().partition(".")
        record = await self.store.get(principal.tenant_id, token_id) if secret else None
        if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
            raise ConfirmationRefused("unknown confirmation token: preview the write again")
        if record.principal != principal.id:
            raise ConfirmationRefused("this confirmation token was issued to another caller")
        if record.tool != operation:
            raise ConfirmationRefused(f"this confirmation token was issued for {record.tool}")
        if record.args_hash != args_digest(arguments):
            raise ConfirmationRefused(
                "this confirmation token was issued for other arguments: preview the write again"
            )
        if record.used_at is not None:
            raise ConfirmationRefused("this confirmation token was used already")
        now = self.clock()
        if record.expires_at <= now:
            raise ConfirmationRefused(
                "this confirmation token has expired: preview the write again"
            )
        if record.needs_person and record.approved_at is None:
            raise ConfirmationRefused(
                f"confirmation {record.id} waits for a person's approval "
                f"(POST /mcp/confirmations/{record.id}/approve)"
            )
        if not await self.store.use(principal.tenant_id, token_id, now):
            raise ConfirmationRefused("this confirmation token was used already")
        return f"mcp-{token_id}"

    async def approve(self, approver: Principal, token_id: str) -> Confirmation:
        """A person approves another principal's pending write (the write's scope needed).

        Raises:
            NotFound: no such token for the approver's tenant.
            Forbidden: the approver lacks the write's scope, or issued the token itself.
            ConfirmationRefused: the token was used, has expired, or is approved already.
        """
        record = await self.store.get(approver.tenant_id, token_id)
        if record is None:
            raise NotFound(f"no confirmation {token_id}")
        approver.require(kind_writes()[record.tool].scope)
        if approver.id == record.principal:
            raise Forbidden("a confirmation is approved by someone other than its requester")
        if not await self.store.approve(approver.tenant_id, token_id, approver.id, self.clock()):
            raise ConfirmationRefused("this confirmation was used, has expired or is approved")
        found = await self.store.get(approver.tenant_id, token_id)
        assert found is not None  # noqa: S101 - approved just now
        return found

    async def set_policy(self, admin: Principal, principal_id: str, needs_person: bool) -> None:
        """Whether ``principal_id``'s agent writes wait for a person (``admin`` needed)."""
        admin.require("admin")
        await self.store.set_needs_person(admin.tenant_id, principal_id, needs_person, self.clock())


@dataclass(frozen=True)
class AgentLimits:
    """Per principal: tool calls per minute, and distinct patients read per call and per hour."""

    calls_per_minute: int = 60
    patients_per_call: int = 25
    patients_per_hour: int = 200


@dataclass
class Limiter:
    """The limits of :class:`AgentLimits`, counted in this process on the injected clock."""

    limits: AgentLimits = field(default_factory=AgentLimits)
    clock: Callable[[], datetime] = _now
    _calls: dict[str, deque[datetime]] = field(default_factory=dict)
    _patients: dict[str, dict[str, datetime]] = field(default_factory=dict)

    @staticmethod
    def _who(principal: Principal) -> str:
        return f"{principal.tenant_id}/{principal.id}"

    def call(self, principal: Principal) -> None:
        """Count one tool call.

        Raises:
            AgentLimitExceeded: the principal made ``calls_per_minute`` calls in the last minute.
        """
        now = self.clock()
        calls = self._calls.setdefault(self._who(principal), deque())
        while calls and now - calls[0] >= timedelta(minutes=1):
            calls.popleft()
        if len(calls) >= self.limits.calls_per_minute:
            wait = 60 - int((now - calls[0]).total_seconds())
            raise AgentLimitExceeded(
                f"at most {self.limits.calls_per_minute} tool calls a minute: retry in {wait} s",
                retry_after=wait,
            )
        calls.append(now)

    def _seen(self, principal: Principal) -> dict[str, datetime]:
        now = self.clock()
        seen = self._patients.setdefault(self._who(principal), {})
        for patient, at in list(seen.items()):
            if now - at >= timedelta(hours=1):
                del seen[patient]
        return seen

    def room(self, principal: Principal) -> int:
        """How many new patients a read may return now (per call and per hour).

        Raises:
            AgentLimitExceeded: the principal read ``patients_per_hour`` patients this hour.
        """
        left = self.limits.patients_per_hour - len(self._seen(principal))
        if left <= 0:
            raise AgentLimitExceeded(
                f"at most {self.limits.patients_per_hour} patients an hour: narrow the work or "
                "wait",
                retry_after=3600,
            )
        return min(left, self.limits.patients_per_call)

    def read(self, principal: Principal, patient_ids: Iterable[str]) -> None:
        """Count the patients a call read (one already read this hour counts once).

        Raises:
            AgentLimitExceeded: the call read more than ``patients_per_call`` patients, or
                they take the principal past ``patients_per_hour``.
        """
        ids = {p for p in patient_ids if p}
        if len(ids) > self.limits.patients_per_call:
            raise AgentLimitExceeded(
                f"at most {self.limits.patients_per_call} patients a call: narrow the search"
            )
        seen = self._seen(principal)
        new = ids - seen.keys()
        if len(seen) + len(new) > self.limits.patients_per_hour:
            raise AgentLimitExceeded(
                f"at most {self.limits.patients_per_hour} patients an hour: narrow the work or "
                "wait",
                retry_after=3600,
            )
        now = self.clock()
        for patient in ids:
            seen[patient] = now


# --- composite reads -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartSummary:
    """A patient's recent encounters (with their diagnoses), labs and immunizations, and the
    chart's problem, medication and allergy lists (read live: the store keeps none of them)."""

    encounters: list[dict[str, Any]]
    labs: list[dict[str, Any]]
    immunizations: list[dict[str, Any]]
    problems: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)
    allergies: list[dict[str, Any]] = field(default_factory=list)


CURRENT = {"active": 0, "on_hold": 1, "inactive": 2}
"""How a chart list entry's status orders it: current entries first, then the rest (newest
first within each); entries in error are left out."""


def _chart_list(rows: Sequence[Any], limit: int) -> list[dict[str, Any]]:
    """A chart list's entries as JSON: none entered in error, current ones first, newest first
    within a status, at most ``limit``."""
    found = [r.model_dump(mode="json") for r in rows if r.status != "entered_in_error"]
    found.sort(key=lambda r: str(r.get("updated_at") or r.get("created_at") or ""), reverse=True)
    found.sort(key=lambda r: CURRENT.get(str(r.get("status")), len(CURRENT)))
    return found[:limit]


@dataclass(frozen=True)
class ScheduleDay:
    """A location's day: the zone it is counted in, its bounds (UTC) and its appointments."""

    time_zone: str
    starts_at: datetime
    ends_at: datetime
    appointments: list[dict[str, Any]]


def location_zone(location: Mapping[str, Any] | None) -> ZoneInfo:
    """A location's time zone (``time_zone``, an IANA name); UTC when it names none or one
    the zone database does not know."""
    name = (location or {}).get("time_zone")
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass
class AgentReads:
    """The reads an agent makes in one call, each over :class:`Reads` (scopes, tenant,
    freshness and audit are the read side's)."""

    reads: Reads

    async def _list(
        self,
        principal: Principal,
        kind: str,
        route: str,
        filters: Mapping[str, str],
        limit: int,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
    ) -> list[dict[str, Any]]:
        query = ListQuery(
            kind,
            route,
            dict(filters),
            limit=limit,
            starts_from=starts_from,
            starts_before=starts_before,
        )
        return (await self.reads.page(principal, query)).page.items

    async def chart(
        self, principal: Principal, route: str, patient_id: str, *, limit: int = 10
    ) -> ChartSummary:
        """The patient's chart summary (``encounter.read``): the newest ``limit`` encounters,
        labs and immunizations from the store (read through when stale), and the problem,
        medication and allergy lists read live (current entries first, ``2 * limit`` each)."""
        principal.require("encounter.read")
        await self.reads.patient_known(principal, patient_id)
        mine = given(patient_id=patient_id)
        encounters = await self._list(principal, "encounter", route, mine, 200)
        encounters.sort(key=lambda e: str(e.get("start") or ""), reverse=True)
        labs = await self._list(principal, "lab", route, mine, 200)
        labs.sort(key=lambda e: str(e.get("collected_at") or e.get("resulted_at") or ""))
        shots = await self._list(principal, "immunization", route, mine, 200)
        upstream = await self.reads.upstream(principal.tenant_id)
        patient = PatientId(patient_id)
        problems = [p async for p in upstream.problems(patient)]
        medications = [x async for x in upstream.medications(patient)]
        allergies = [a async for a in upstream.allergies(patient)]
        await self.reads.audit.record(
            principal.tenant_id, principal.id, route, [patient_id], self.reads.clock()
        )
        return ChartSummary(
            encounters[:limit],
            labs[-limit:][::-1],
            shots[:limit],
            problems=_chart_list(problems, 2 * limit),
            medications=_chart_list(medications, 2 * limit),
            allergies=_chart_list(allergies, 2 * limit),
        )

    async def charges(
        self, principal: Principal, route: str, patient_id: str
    ) -> list[dict[str, Any]]:
        """A patient's ledger charges read live and kept (``charge.read``): what a claim's
        preview checks, as the upstream has them now (one billed a moment ago included)."""
        principal.require(KINDS["charge"].read_scope)
        await self.reads.patient_known(principal, patient_id)
        upstream = await self.reads.upstream(principal.tenant_id)
        found = [c async for c in upstream.charges(patient_id=PatientId(patient_id))]
        now = self.reads.clock()
        await self.reads.writer.put(principal.tenant_id, "charge", found, now)
        await self.reads.audit.record(principal.tenant_id, principal.id, route, [patient_id], now)
        return [c.model_dump(mode="json") for c in found]

    async def denials(self, principal: Principal, route: str, limit: int) -> list[dict[str, Any]]:
        """The denials work queue: the tenant's denied claims (``claim.read``)."""
        return await self._list(principal, "claim", route, {"status": "denied"}, limit)

    async def statements(
        self, principal: Principal, route: str, patient_id: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A patient's statements and live balances (``payment.read``)."""
        principal.require("payment.read")
        await self.reads.patient_known(principal, patient_id)
        found = await self._list(principal, "statement", route, given(patient_id=patient_id), 50)
        balances = await self.reads.balances(principal, route, patient_id)
        return found, [b.model_dump(mode="json") for b in balances]

    async def day(
        self, principal: Principal, route: str, location_id: str, day: date, limit: int
    ) -> ScheduleDay:
        """A location's appointments on ``day`` in the location's own time zone (its
        ``time_zone``; UTC when the upstream names none), from local midnight to the next,
        in start order (``appointment.read``)."""
        principal.require("appointment.read")
        await self.reads.known(principal, [("location", location_id)])
        place = await self.reads.records.get(principal.tenant_id, "location", location_id)
        zone = location_zone(place)
        following = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        end = datetime(following.year, following.month, following.day, tzinfo=zone)
        found = await self._list(
            principal,
            "appointment",
            route,
            {"location_id": location_id},
            limit,
            starts_from=start,
            starts_before=end.astimezone(UTC),
        )
        found.sort(key=lambda a: str(a.get("start")))
        return ScheduleDay(str(zone), start, end.astimezone(UTC), found)

    async def appointment(self, principal: Principal, route: str, appointment_id: str) -> Any:
        """One stored appointment, read fresh (a preview shows its current state)."""
        found = await self.reads.one(
            principal, "appointment", route, appointment_id, freshness=Freshness()
        )
        return found.record


def slot_free(slots: Sequence[Any], start: datetime, resource_id: str) -> bool:
    """Whether a free slot of ``resource_id`` starts at ``start``."""
    return any(s.start == start and str(s.resource_id) == resource_id for s in slots)
