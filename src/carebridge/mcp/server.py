"""The MCP server: carebridge's reads and writes as tools, a patient's chart and a location's
day as resources, and prompts for the front desk's and the billing office's routine jobs.

Every tool is a thin call into the services (:mod:`carebridge.wiring.mcp`). Around each call,
:class:`Kit` resolves the caller's principal, checks the tool's scope and the principal's limits,
turns a carebridge error into a tool error (``isError``: a readable line, never a traceback), and
audits the call: principal, tool, outcome and the SHA-256 of the arguments, with the patients it
touched, in the tenant's hash-chained audit log. ``tools/list`` shows only the tools the caller's
scopes allow.

A write tool is two-phase: called without ``confirmation`` it changes nothing and answers a
preview with a confirmation token; called again with the same arguments and that token, it
writes through the API's idempotent write path (:mod:`carebridge.services.agents`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ListToolsResult, ToolAnnotations
from pydantic import AwareDatetime, BaseModel, Field

from carebridge.domain.kinds import writes as kind_writes
from carebridge.errors import CarebridgeError
from carebridge.mcp import models as m
from carebridge.services import keys
from carebridge.services.agents import Ticket, args_digest, slot_free
from carebridge.services.events import LogQuery
from carebridge.services.reads import ListQuery, patient_filters
from carebridge.services.records import Principal
from carebridge.services.writes import (
    NewAppointment,
    NewClaim,
    NewEncounter,
    Rebooking,
    WriteOutcome,
)
from carebridge.wiring.mcp import AgentServices

Out = TypeVar("Out", bound=BaseModel)
Caller = Callable[[Any], Awaitable[Principal]]
"""The caller's principal, from the transport's request (None on stdio and in memory)."""

PRINCIPAL_KEY = "carebridge.principal"
"""Where the HTTP transport leaves the authenticated principal in the request's ASGI scope."""

INSTRUCTIONS = """\
carebridge: a CareCloud practice's patients, schedule, charts and revenue cycle.
Reads answer compact records. Every write tool is two-phase: call it without `confirmation`
to get a preview and a confirmation token, show the preview to the person you work for, then
call it again with exactly the same arguments and `confirmation` set to the token (it expires
in 5 minutes and works once). Some keys need a person to approve the token first."""

PatientId = Annotated[str, Field(pattern=r"^pat_[A-Za-z0-9]{1,40}$", description="pat_...")]
AppointmentId = Annotated[str, Field(pattern=r"^apt_[A-Za-z0-9]{1,40}$", description="apt_...")]
EncounterId = Annotated[str, Field(pattern=r"^enc_[A-Za-z0-9]{1,40}$", description="enc_...")]
ClaimId = Annotated[str, Field(pattern=r"^clm_[A-Za-z0-9]{1,40}$", description="clm_...")]
ChargeId = Annotated[str, Field(pattern=r"^chg_[A-Za-z0-9]{1,40}$", description="chg_...")]
LocationId = Annotated[str, Field(pattern=r"^loc_[A-Za-z0-9]{1,40}$", description="loc_...")]
ResourceId = Annotated[str, Field(pattern=r"^res_[A-Za-z0-9]{1,40}$", description="res_...")]
ProviderId = Annotated[str, Field(pattern=r"^prv_[A-Za-z0-9]{1,40}$", description="prv_...")]
VisitReasonId = Annotated[str, Field(pattern=r"^vr_[A-Za-z0-9]{1,40}$", description="vr_...")]
Text = Annotated[str, Field(max_length=2000)]
Confirm = Annotated[
    str | None,
    Field(
        max_length=200,
        description="Leave out for a preview; then the preview's confirmation_token.",
    ),
]
Limit = Annotated[int, Field(ge=1, le=100, description="At most this many records.")]

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)

READ_SCOPES: dict[str, str] = {
    "search_patients": "patient.read",
    "get_patient_summary": "patient.read",
    "list_practice": "practice.read",
    "find_availability": "appointment.read",
    "list_appointments": "appointment.read",
    "get_chart_summary": "encounter.read",
    "check_eligibility": "eligibility.read",
    "get_claim_status": "claim.read",
    "list_denials": "claim.read",
    "get_statements": "payment.read",
    "recent_events": "event.read",
}
WRITE_OPERATIONS: dict[str, str] = {
    "book_appointment": "create_appointment",
    "reschedule_appointment": "reschedule_appointment",
    "cancel_appointment": "cancel_appointment",
    "check_in": "check_in",
    "check_out": "check_out",
    "create_encounter": "create_encounter",
    "sign_encounter": "sign_encounter",
    "add_addendum": "add_addendum",
    "submit_claim": "submit_claim",
}
"""Each write tool's operation (:func:`carebridge.domain.kinds.writes`: its kind and scope)."""


def tool_scopes() -> dict[str, str]:
    """The scope each tool needs."""
    ops = kind_writes()
    return READ_SCOPES | {tool: ops[op].scope for tool, op in WRITE_OPERATIONS.items()}


def _arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's arguments as JSON-ready values: the calling tool's parameters in ``values``
    (its ``locals()``), the context left out."""
    frame = inspect.currentframe()
    code = frame.f_back.f_code if frame is not None and frame.f_back is not None else None
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount] if code else ()
    out: dict[str, Any] = {}
    for name in names:
        value = values.get(name)
        if name == "ctx" or isinstance(value, Context):
            continue
        out[name] = value.isoformat() if isinstance(value, datetime | date) else value
    return out


def _request(ctx: Context[Any, Any] | ServerRequestContext[Any, Any] | None) -> Any:
    if ctx is None:
        return None
    if isinstance(ctx, ServerRequestContext):
        return ctx.request
    try:
        return ctx.request_context.request
    except ValueError:  # outside a request
        return None


def _failure(err: CarebridgeError) -> str:
    """A carebridge error as a tool error's one line: its class and message."""
    return f"{type(err).__name__}: {err}"


@dataclass
class Kit:
    """What every tool runs inside (see the module docstring)."""

    services: AgentServices
    caller: Caller
    scopes: dict[str, str]

    async def principal(self, ctx: Context[Any, Any] | None) -> Principal:
        return await self.caller(_request(ctx))

    async def _audit(
        self, principal: Principal, tool: str, outcome: str, digest: str, patients: list[str]
    ) -> None:
        route = f"MCP {tool} {outcome} args:{digest[:16]}"
        await self.services.audit.record(
            principal.tenant_id,
            principal.id,
            route[:200],
            sorted(set(patients)),
            self.services.clock(),
        )

    async def read(
        self,
        ctx: Context[Any, Any] | None,
        tool: str,
        arguments: Mapping[str, Any],
        body: Callable[[Principal], Awaitable[tuple[Out, list[str]]]],
    ) -> Out:
        """Run a read tool: scope, limits, the call, the patients it read, the audit."""
        principal = await self.principal(ctx)
        digest = args_digest(arguments)
        patients: list[str] = []
        try:
            principal.require(self.scopes[tool])
            self.services.limiter.call(principal)
            out, patients = await body(principal)
            self.services.limiter.read(principal, patients)
        except CarebridgeError as err:
            await self._audit(principal, tool, f"error:{type(err).__name__}", digest, patients)
            raise ToolError(_failure(err)) from None
        await self._audit(principal, tool, "ok", digest, patients)
        return out

    async def write(
        self,
        ctx: Context[Any, Any] | None,
        tool: str,
        arguments: Mapping[str, Any],
        patients: list[str],
        preview: Callable[[Principal], Awaitable[m.WriteOut]],
        perform: Callable[[Principal, str], Awaitable[WriteOutcome]],
    ) -> m.WriteOut:
        """Run a write tool: a preview and its token, or the confirmed write."""
        principal = await self.principal(ctx)
        operation = WRITE_OPERATIONS[tool]
        digest = args_digest(arguments)
        token = arguments.get("confirmation")
        stage = "preview" if token is None else "done"
        try:
            principal.require(self.scopes[tool])
            self.services.limiter.call(principal)
            if token is None:
                out = await preview(principal)
                ticket = await self.services.confirmations.issue(principal, operation, arguments)
                out = _ticketed(out, ticket)
            else:
                key = await self.services.confirmations.redeem(
                    principal, operation, str(token), arguments
                )
                out = _done(operation, await perform(principal, key))
        except CarebridgeError as err:
            await self._audit(principal, tool, f"error:{type(err).__name__}", digest, patients)
            raise ToolError(_failure(err)) from None
        await self._audit(principal, tool, stage, digest, patients)
        return out


def _ticketed(out: m.WriteOut, ticket: Ticket) -> m.WriteOut:
    return out.model_copy(
        update={
            "confirmation_token": ticket.token,
            "token_id": ticket.token_id,
            "expires_at": ticket.expires_at.isoformat(),
            "needs_person_approval": ticket.needs_person,
        }
    )


def _done(operation: str, outcome: WriteOutcome) -> m.WriteOut:
    kind = kind_writes()[operation].kind
    shapes: dict[str, type[m.Compact]] = {
        "appointment": m.AppointmentOut,
        "encounter": m.EncounterBrief,
        "claim": m.ClaimOut,
    }
    shape = shapes.get(kind, m.Compact)
    return m.WriteOut(
        stage="done",
        operation=operation,
        record={"id": outcome.value.get("id")} | shape.model_validate(outcome.value).model_dump(),
        confirmation=outcome.confirmation,
        diverged=list(outcome.diverged),
        ledger_id=outcome.ledger_id,
        replayed=outcome.replayed,
    )


def _preview(
    operation: str, change: dict[str, Any], effects: list[str], *checks: m.Check
) -> m.WriteOut:
    return m.WriteOut(
        stage="preview",
        operation=operation,
        would_change=change,
        upstream_effects=effects,
        checks=list(checks),
    )


def build_server(services: AgentServices, caller: Caller) -> MCPServer[Any]:
    """The MCP server over ``services``; ``caller`` names the principal of each request."""
    server: MCPServer[Any] = MCPServer(
        "carebridge", version="0.1.0", instructions=INSTRUCTIONS, log_level="WARNING"
    )
    scopes = tool_scopes()
    kit = Kit(services, caller, scopes)
    reads, writes, agent = services.reads, services.writes, services.agent
    limiter = services.limiter

    async def only_allowed_tools(
        ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or result is None:
            return result
        principal = await caller(ctx.request)
        listed = ListToolsResult.model_validate(result) if isinstance(result, dict) else result
        if not isinstance(listed, ListToolsResult):
            return result
        shown = [
            t for t in listed.tools if keys.allows(principal.scopes, scopes.get(t.name, "admin"))
        ]
        return listed.model_copy(update={"tools": shown})

    server.middleware.append(only_allowed_tools)

    # --- reads --------------------------------------------------------------------------------

    async def search_patients(
        ctx: Context[Any, Any],
        name: Annotated[
            str | None, Field(max_length=200, description="Last, First (any case)")
        ] = None,
        birth_date: Annotated[date | None, Field(description="YYYY-MM-DD")] = None,
        limit: Limit = 10,
    ) -> m.PatientList:
        """Find patients by name ("Last, First") and/or birth date."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.PatientList, list[str]]:
            filters = patient_filters(name=name, dob=birth_date.isoformat() if birth_date else None)
            room = limiter.room(p)
            query = ListQuery("patient", "MCP search_patients", filters, limit=min(limit, room))
            page = (await reads.page(p, query)).page
            found = [m.PatientBrief.model_validate(r) for r in page.items]
            return m.PatientList(patients=found, next_cursor=page.next_cursor), [
                x.id for x in found
            ]

        return await kit.read(ctx, "search_patients", arguments, body)

    async def get_patient_summary(
        ctx: Context[Any, Any], patient_id: PatientId
    ) -> m.PatientSummary:
        """A patient's demographics (name, birth date, sex), coverages and balances."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.PatientSummary, list[str]]:
            found = await reads.one(p, "patient", "MCP get_patient_summary", patient_id)
            return m.PatientSummary.model_validate(found.record), [patient_id]

        return await kit.read(ctx, "get_patient_summary", arguments, body)

    async def list_practice(
        ctx: Context[Any, Any],
        kind: Annotated[str, Field(pattern="^(provider|location|resource|visit_reason)$")],
        limit: Limit = 100,
    ) -> m.PracticeList:
        """The practice's providers, locations, resources or visit reasons (the ids a booking
        names)."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.PracticeList, list[str]]:
            page = (await reads.page(p, ListQuery(kind, "MCP list_practice", limit=limit))).page
            items = [m.PracticeItem.model_validate(r) for r in page.items]
            return m.PracticeList(kind=kind, items=items), []

        return await kit.read(ctx, "list_practice", arguments, body)

    async def find_availability(
        ctx: Context[Any, Any],
        visit_reason_id: VisitReasonId,
        start: Annotated[date, Field(description="First day, YYYY-MM-DD")],
        end: Annotated[date, Field(description="Last day (at most 31 days on)")],
        location_id: LocationId | None = None,
        resource_id: ResourceId | None = None,
    ) -> m.Slots:
        """Free slots for a visit reason, read live from the practice's schedule."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.Slots, list[str]]:
            slots = await reads.availability(
                p,
                visit_reason_id,
                start,
                end,
                location_ids=[location_id] if location_id else (),
                resource_ids=[resource_id] if resource_id else (),
            )
            out = [m.SlotOut.model_validate(s.model_dump(mode="json")) for s in slots[:200]]
            return m.Slots(slots=out), []

        return await kit.read(ctx, "find_availability", arguments, body)

    async def list_appointments(
        ctx: Context[Any, Any],
        start: Annotated[
            date | None, Field(description="From this day (default: a week ago)")
        ] = None,
        end: Annotated[date | None, Field(description="Until this day")] = None,
        patient_id: PatientId | None = None,
        location_id: LocationId | None = None,
        provider_id: ProviderId | None = None,
        status: Annotated[str | None, Field(max_length=32)] = None,
        limit: Limit = 50,
    ) -> m.AppointmentList:
        """Appointments in a window, by patient, location, provider or status."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.AppointmentList, list[str]]:
            filters = {"patient_id": patient_id, "location_id": location_id}
            filters |= {"provider_id": provider_id, "status": status}
            query = ListQuery(
                "appointment",
                "MCP list_appointments",
                {k: v for k, v in filters.items() if v},
                starts_from=_day_start(start),
                starts_before=_day_start(end + timedelta(days=1)) if end else None,
                limit=min(limit, limiter.room(p)),
            )
            page = (await reads.page(p, query)).page
            found = [m.AppointmentOut.model_validate(r) for r in page.items]
            out = m.AppointmentList(appointments=found, next_cursor=page.next_cursor)
            return out, [a.patient_id for a in found]

        return await kit.read(ctx, "list_appointments", arguments, body)

    async def get_chart_summary(ctx: Context[Any, Any], patient_id: PatientId) -> m.ChartOut:
        """A patient's chart summary: current problems, medications and allergies, recent
        encounters (diagnoses, procedures), labs and immunizations."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.ChartOut, list[str]]:
            return await _chart(agent, p, patient_id), [patient_id]

        return await kit.read(ctx, "get_chart_summary", arguments, body)

    async def check_eligibility(
        ctx: Context[Any, Any],
        patient_id: PatientId,
        service_date: Annotated[date | None, Field(description="Default: today")] = None,
        service_types: Annotated[list[str], Field(max_length=10, description="X12 codes")] = [],  # noqa: B006 - a schema default
    ) -> m.EligibilityOut:
        """A real-time eligibility and benefits inquiry (270/271) for a patient."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.EligibilityOut, list[str]]:
            check = await reads.eligibility(
                p,
                "MCP check_eligibility",
                patient_id,
                service_date=service_date,
                service_types=service_types,
            )
            return m.EligibilityOut.model_validate(check.model_dump(mode="json")), [patient_id]

        return await kit.read(ctx, "check_eligibility", arguments, body)

    async def get_claim_status(ctx: Context[Any, Any], claim_id: ClaimId) -> m.ClaimOut:
        """A claim's status and its 277 status history."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.ClaimOut, list[str]]:
            found = await reads.one(p, "claim", "MCP get_claim_status", claim_id)
            claim = m.ClaimOut.model_validate(found.record)
            return claim, [claim.patient_id]

        return await kit.read(ctx, "get_claim_status", arguments, body)

    async def list_denials(ctx: Context[Any, Any], limit: Limit = 25) -> m.ClaimList:
        """The denials work queue: the practice's denied claims."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.ClaimList, list[str]]:
            found = await agent.denials(p, "MCP list_denials", min(limit, limiter.room(p)))
            claims = [m.ClaimOut.model_validate(c) for c in found]
            return m.ClaimList(claims=claims), [c.patient_id for c in claims]

        return await kit.read(ctx, "list_denials", arguments, body)

    async def get_statements(ctx: Context[Any, Any], patient_id: PatientId) -> m.StatementsOut:
        """A patient's statements and live balances."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.StatementsOut, list[str]]:
            found, balances = await agent.statements(p, "MCP get_statements", patient_id)
            out = m.StatementsOut(
                patient_id=patient_id,
                statements=[m.StatementOut.model_validate(s) for s in found],
                balances=[m.BalanceBrief.model_validate(b) for b in balances],
            )
            return out, [patient_id]

        return await kit.read(ctx, "get_statements", arguments, body)

    async def recent_events(
        ctx: Context[Any, Any],
        after: Annotated[int, Field(ge=0, description="The last seq seen (0: from the start)")] = 0,
        types: Annotated[list[str], Field(max_length=20, description="Event types or kind.*")] = [],  # noqa: B006 - a schema default
        limit: Limit = 50,
    ) -> m.EventList:
        """The practice's change log after a position: what happened to which record."""
        arguments = _arguments(locals())

        async def body(p: Principal) -> tuple[m.EventList, list[str]]:
            page = await services.events.read(p, LogQuery(after, limit, tuple(types)))
            events = [m.EventOut.model_validate(_event(e)) for e in page.data]
            out = m.EventList(events=events, next_after=page.next_after)
            return out, [e.patient_id for e in events if e.patient_id]

        return await kit.read(ctx, "recent_events", arguments, body)

    # --- writes -------------------------------------------------------------------------------

    async def book_appointment(
        ctx: Context[Any, Any],
        patient_id: PatientId,
        resource_id: ResourceId,
        location_id: LocationId,
        visit_reason_id: VisitReasonId,
        start: Annotated[AwareDatetime, Field(description="A free slot's start (RFC 3339)")],
        provider_id: ProviderId | None = None,
        chief_complaint: Text = "",
        confirmation: Confirm = None,
    ) -> m.WriteOut:
        """Book a visit in a free slot (two-phase: preview, then confirm)."""
        arguments = _arguments(locals())
        command = NewAppointment(
            patient_id=patient_id,
            resource_id=resource_id,
            location_id=location_id,
            visit_reason_id=visit_reason_id,
            provider_id=provider_id,
            start=start,
            chief_complaint=chief_complaint,
        )
        sent = command.model_dump(mode="json")

        async def preview(p: Principal) -> m.WriteOut:
            await reads.patient_known(p, patient_id)
            check = await _slot_check(services, p, visit_reason_id, location_id, resource_id, start)
            effects = [
                "an appointment is booked on the practice's schedule (upstream v2)",
                "an appointment.created event is announced to webhooks",
            ]
            return _preview("create_appointment", {"appointment": sent}, effects, check)

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.create_appointment(p, command, key=key, request=sent)

        return await kit.write(ctx, "book_appointment", arguments, [patient_id], preview, perform)

    async def reschedule_appointment(
        ctx: Context[Any, Any],
        appointment_id: AppointmentId,
        resource_id: ResourceId,
        location_id: LocationId,
        visit_reason_id: VisitReasonId,
        start: Annotated[AwareDatetime, Field(description="The new free slot's start")],
        provider_id: ProviderId | None = None,
        confirmation: Confirm = None,
    ) -> m.WriteOut:
        """Move an appointment to another free slot (two-phase)."""
        arguments = _arguments(locals())
        rebooking = Rebooking(
            resource_id=resource_id,
            location_id=location_id,
            visit_reason_id=visit_reason_id,
            provider_id=provider_id,
            start=start,
        )
        sent = {"appointment_id": appointment_id} | rebooking.model_dump(mode="json")

        async def preview(p: Principal) -> m.WriteOut:
            current = await agent.appointment(p, "MCP reschedule_appointment", appointment_id)
            check = await _slot_check(services, p, visit_reason_id, location_id, resource_id, start)
            change = {"from": m.AppointmentOut.model_validate(current).model_dump(), "to": sent}
            effects = [
                "the appointment moves on the practice's schedule (upstream v2)",
                "an appointment.rescheduled event is announced",
            ]
            return _preview("reschedule_appointment", change, effects, check)

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.reschedule_appointment(
                p, appointment_id, rebooking, key=key, request=sent
            )

        return await kit.write(ctx, "reschedule_appointment", arguments, [], preview, perform)

    def _appointment_verb(tool: str, effect: str, expects: tuple[str, ...]) -> Any:
        async def preview_state(
            p: Principal, appointment_id: str, sent: dict[str, Any]
        ) -> m.WriteOut:
            current = await agent.appointment(p, f"MCP {tool}", appointment_id)
            now = m.AppointmentOut.model_validate(current)
            ok = now.status in expects
            check = m.Check(
                name="appointment_state",
                ok=ok,
                detail=f"the appointment is {now.status}"
                + ("" if ok else f"; {tool} expects {' or '.join(expects)}"),
            )
            change = {"appointment": now.model_dump(), "request": sent}
            return _preview(WRITE_OPERATIONS[tool], change, [effect], check)

        return preview_state

    cancel_state = _appointment_verb(
        "cancel_appointment",
        "the appointment is cancelled upstream and its slot freed; appointment.cancelled",
        ("scheduled", "confirmed"),
    )
    check_in_state = _appointment_verb(
        "check_in",
        "the patient is marked arrived upstream; appointment.checked_in",
        ("scheduled", "confirmed"),
    )
    check_out_state = _appointment_verb(
        "check_out",
        "the visit is marked done upstream and its encounter opened; appointment.checked_out",
        ("arrived",),
    )

    async def cancel_appointment(
        ctx: Context[Any, Any],
        appointment_id: AppointmentId,
        reason_code: Annotated[str | None, Field(max_length=32)] = None,
        comments: Text = "",
        confirmation: Confirm = None,
    ) -> m.WriteOut:
        """Cancel an appointment (two-phase)."""
        arguments = _arguments(locals())
        sent = {"appointment_id": appointment_id, "reason_code": reason_code, "comments": comments}

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.cancel_appointment(
                p, appointment_id, reason_code=reason_code, comments=comments, key=key, request=sent
            )

        return await kit.write(
            ctx,
            "cancel_appointment",
            arguments,
            [],
            lambda p: cancel_state(p, appointment_id, sent),
            perform,
        )

    async def check_in(
        ctx: Context[Any, Any], appointment_id: AppointmentId, confirmation: Confirm = None
    ) -> m.WriteOut:
        """Mark the patient arrived (two-phase)."""
        arguments = _arguments(locals())
        sent = {"appointment_id": appointment_id}

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.check_in(p, appointment_id, key=key, request=sent)

        return await kit.write(
            ctx,
            "check_in",
            arguments,
            [],
            lambda p: check_in_state(p, appointment_id, sent),
            perform,
        )

    async def check_out(
        ctx: Context[Any, Any], appointment_id: AppointmentId, confirmation: Confirm = None
    ) -> m.WriteOut:
        """Mark the visit done (two-phase)."""
        arguments = _arguments(locals())
        sent = {"appointment_id": appointment_id}

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.check_out(p, appointment_id, key=key, request=sent)

        return await kit.write(
            ctx,
            "check_out",
            arguments,
            [],
            lambda p: check_out_state(p, appointment_id, sent),
            perform,
        )

    async def create_encounter(
        ctx: Context[Any, Any],
        patient_id: PatientId,
        chief_complaint: Text = "",
        diagnoses: Annotated[list[str], Field(max_length=12, description="ICD-10-CM codes")] = [],  # noqa: B006 - a schema default
        procedures: Annotated[list[str], Field(max_length=20, description="CPT/HCPCS codes")] = [],  # noqa: B006 - a schema default
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
        start: AwareDatetime | None = None,
        confirmation: Confirm = None,
    ) -> m.WriteOut:
        """Push an encounter (diagnoses, procedures) to the EHR; it starts open (two-phase)."""
        arguments = _arguments(locals())
        try:
            command = NewEncounter(
                patient_id=patient_id,
                provider_id=provider_id,
                location_id=location_id,
                start=start,
                chief_complaint=chief_complaint,
                diagnoses=tuple(diagnoses),
                procedures=tuple((code, 1) for code in procedures),
            )
        except ValueError as err:
            raise ToolError(f"BadRequest: {str(err).splitlines()[-1].strip()}") from None
        sent = command.model_dump(mode="json")

        async def preview(p: Principal) -> m.WriteOut:
            await reads.patient_known(p, patient_id)
            check = m.Check(name="patient", ok=True, detail="the patient is the practice's")
            effects = [
                "an open encounter is pushed to the patient's chart (upstream portal)",
                "an encounter.created event is announced",
            ]
            return _preview("create_encounter", {"encounter": sent}, effects, check)

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.create_encounter(p, command, key=key, request=sent)

        return await kit.write(ctx, "create_encounter", arguments, [patient_id], preview, perform)

    async def sign_encounter(
        ctx: Context[Any, Any], encounter_id: EncounterId, confirmation: Confirm = None
    ) -> m.WriteOut:
        """Sign an open encounter: it locks and its charges post (two-phase)."""
        arguments = _arguments(locals())
        sent = {"encounter_id": encounter_id}

        async def preview(p: Principal) -> m.WriteOut:
            found = await reads.one(p, "encounter", "MCP sign_encounter", encounter_id)
            now = m.EncounterBrief.model_validate(found.record)
            check = m.Check(
                name="encounter_state",
                ok=now.status == "open",
                detail=f"the encounter is {now.status}",
            )
            effects = [
                "the encounter is signed and locked upstream; its charges post",
                "an encounter.signed event is announced",
            ]
            return _preview("sign_encounter", {"encounter": now.model_dump()}, effects, check)

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.sign_encounter(p, encounter_id, key=key, request=sent)

        return await kit.write(ctx, "sign_encounter", arguments, [], preview, perform)

    async def add_addendum(
        ctx: Context[Any, Any],
        encounter_id: EncounterId,
        text: Annotated[str, Field(min_length=1, max_length=2000, description="The addendum")],
        confirmation: Confirm = None,
    ) -> m.WriteOut:
        """Add an addendum to a signed encounter (an open one is edited, not amended;
        two-phase)."""
        arguments = _arguments(locals())
        sent = {"encounter_id": encounter_id, "text": text}

        async def preview(p: Principal) -> m.WriteOut:
            found = await reads.one(p, "encounter", "MCP add_addendum", encounter_id)
            now = m.EncounterBrief.model_validate(found.record)
            ok = now.status == "signed"
            detail = f"the encounter is {now.status}" + (
                "" if ok else "; addenda go on signed encounters"
            )
            check = m.Check(name="encounter_state", ok=ok, detail=detail)
            effects = [
                "the text is added to the signed encounter's addenda upstream (portal)",
                "an encounter.amended event is announced",
            ]
            change = {"encounter": now.model_dump(), "addendum": {"text": text}}
            return _preview("add_addendum", change, effects, check)

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.add_addendum(p, encounter_id, text, key=key, request=sent)

        return await kit.write(ctx, "add_addendum", arguments, [], preview, perform)

    async def submit_claim(
        ctx: Context[Any, Any],
        patient_id: PatientId,
        charge_ids: Annotated[list[ChargeId], Field(min_length=1, max_length=50)],
        confirmation: Confirm = None,
    ) -> m.WriteOut:
        """Scrub and submit a claim from a patient's unbilled charges (two-phase)."""
        arguments = _arguments(locals())
        command = NewClaim(patient_id=patient_id, charge_ids=tuple(charge_ids))
        sent = command.model_dump(mode="json")

        async def preview(p: Principal) -> m.WriteOut:
            found = await agent.charges(p, "MCP submit_claim", patient_id)
            charges = {c["id"]: c for c in found}
            missing = [c for c in charge_ids if c not in charges]
            billed = [c for c in charge_ids if c in charges and charges[c].get("billed")]
            ok = not missing and not billed
            detail = (
                "every charge is the patient's and unbilled"
                if ok
                else (f"not the patient's: {missing}; already on a claim: {billed}")
            )
            effects = [
                "the claim is scrubbed and submitted (upstream RCM); the scrubber's "
                "objections refuse it, naming each field",
                "a claim.submitted event is announced",
            ]
            check = m.Check(name="charges", ok=ok, detail=detail)
            return _preview("submit_claim", {"claim": sent}, effects, check)

        async def perform(p: Principal, key: str) -> WriteOutcome:
            return await writes.submit_claim(p, command, key=key, request=sent)

        return await kit.write(ctx, "submit_claim", arguments, [patient_id], preview, perform)

    for fn, hints in (
        (search_patients, READ), (get_patient_summary, READ), (list_practice, READ),
        (find_availability, READ), (list_appointments, READ), (get_chart_summary, READ),
        (check_eligibility, READ), (get_claim_status, READ), (list_denials, READ),
        (get_statements, READ), (recent_events, READ),
        (book_appointment, WRITE), (reschedule_appointment, WRITE),
        (cancel_appointment, DESTRUCTIVE), (check_in, WRITE), (check_out, WRITE),
        (create_encounter, WRITE), (sign_encounter, DESTRUCTIVE), (add_addendum, WRITE),
        (submit_claim, WRITE),
    ):  # fmt: skip
        server.add_tool(fn, annotations=hints, structured_output=True)

    # --- resources ----------------------------------------------------------------------------

    async def resource(
        ctx: Context[Any, Any],
        name: str,
        scope: str,
        arguments: dict[str, Any],
        body: Callable[[Principal], Awaitable[tuple[BaseModel, list[str]]]],
    ) -> str:
        principal = await kit.principal(ctx)
        digest = args_digest(arguments)
        try:
            principal.require(scope)
            limiter.call(principal)
            out, patients = await body(principal)
            limiter.read(principal, patients)
        except CarebridgeError as err:
            await kit._audit(principal, name, f"error:{type(err).__name__}", digest, [])
            raise ResourceError(_failure(err)) from None
        await kit._audit(principal, name, "ok", digest, patients)
        return out.model_dump_json()

    @server.resource(
        "carebridge://patients/{patient_id}/chart",
        name="patient_chart",
        description=(
            "A patient's chart summary: problems, medications, allergies, recent encounters, "
            "labs, immunizations (JSON)."
        ),
        mime_type="application/json",
    )
    async def patient_chart(patient_id: str, ctx: Context[Any, Any]) -> str:
        async def body(p: Principal) -> tuple[BaseModel, list[str]]:
            return await _chart(agent, p, patient_id), [patient_id]

        return await resource(
            ctx, "resource:chart", "encounter.read", {"patient_id": patient_id}, body
        )

    @server.resource(
        "carebridge://locations/{location_id}/schedule/{day}",
        name="location_schedule",
        description=(
            "A location's appointments on a day (YYYY-MM-DD, counted from midnight in the "
            "location's time zone), in start order (JSON)."
        ),
        mime_type="application/json",
    )
    async def location_schedule(location_id: str, day: str, ctx: Context[Any, Any]) -> str:
        async def body(p: Principal) -> tuple[BaseModel, list[str]]:
            try:
                when = date.fromisoformat(day)
            except ValueError:
                raise ResourceError("BadRequest: day is not a calendar date (YYYY-MM-DD)") from None
            found = await agent.day(p, "MCP resource:schedule", location_id, when, limiter.room(p))
            items = [m.AppointmentOut.model_validate(a) for a in found.appointments]
            out = m.ScheduleOut(
                location_id=location_id,
                day=when.isoformat(),
                time_zone=found.time_zone,
                starts_at=found.starts_at.isoformat(),
                ends_at=found.ends_at.isoformat(),
                appointments=items,
            )
            return out, [a.patient_id for a in items]

        arguments = {"location_id": location_id, "day": day}
        return await resource(ctx, "resource:schedule", "appointment.read", arguments, body)

    # --- prompts ------------------------------------------------------------------------------

    @server.prompt(description="Prepare tomorrow's schedule at a location.")
    def prepare_tomorrow_schedule(location_id: str, day: str) -> str:
        return (
            f"Prepare the schedule of location {location_id} for {day}. Read the resource "
            f"carebridge://locations/{location_id}/schedule/{day}. For each appointment, call "
            "check_eligibility for its patient and list those whose coverage is not active or "
            "who need an authorization, and get_statements for balances over 100.00. Propose "
            "(do not confirm) reschedules with find_availability for visits that cannot go "
            "ahead; every write is a preview until the person you work for agrees."
        )

    @server.prompt(description="Work the denials queue: triage denied claims.")
    def work_denials_queue(limit: str = "10") -> str:
        return (
            f"Call list_denials with limit {limit}. For each denied claim, call "
            "get_claim_status and read its status history; group the denials by likely cause "
            "(eligibility, coding, timely filing, missing information), and check eligibility "
            "for the patients whose denial looks coverage-related. Report a worklist with the "
            "next step for each claim. Appeals cannot be filed through carebridge yet."
        )

    @server.prompt(description="Check in the patients who arrived for their visit.")
    def check_in_arrivals(location_id: str, day: str) -> str:
        return (
            f"Read carebridge://locations/{location_id}/schedule/{day}. For each patient the "
            "person you work for says has arrived, call check_in without a confirmation, show "
            "the preview, and confirm only the ones they approve."
        )

    return server


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def _event(entry: dict[str, Any]) -> dict[str, Any]:
    """An event log entry's compact fields (no diff: what changed is read with its tool)."""
    return {
        "seq": entry.get("seq"),
        "type": entry.get("type"),
        "entity_id": entry.get("entity_id"),
        "patient_id": entry.get("patient_id"),
        "occurred_at": entry.get("occurred_at"),
        "redacted": bool(entry.get("redacted")),
    }


async def _chart(agent: Any, principal: Principal, patient_id: str) -> m.ChartOut:
    chart = await agent.chart(principal, "MCP get_chart_summary", patient_id)
    return m.ChartOut(
        patient_id=patient_id,
        problems=[m.ProblemBrief.model_validate(x) for x in chart.problems],
        medications=[m.MedicationBrief.model_validate(x) for x in chart.medications],
        allergies=[m.AllergyBrief.model_validate(x) for x in chart.allergies],
        encounters=[m.EncounterBrief.model_validate(e) for e in chart.encounters],
        labs=[m.LabBrief.model_validate(x) for x in chart.labs],
        immunizations=[m.ImmunizationBrief.model_validate(x) for x in chart.immunizations],
    )


async def _slot_check(
    services: AgentServices,
    principal: Principal,
    visit_reason_id: str,
    location_id: str,
    resource_id: str,
    start: datetime,
) -> m.Check:
    """Whether a free slot of the resource starts at ``start`` (read live)."""
    day = start.date()
    slots = await services.reads.availability(
        principal,
        visit_reason_id,
        day - timedelta(days=1),
        day + timedelta(days=1),
        location_ids=[location_id],
        resource_ids=[resource_id],
    )
    free = slot_free(slots, start, resource_id)
    detail = "a free slot starts then" if free else "no free slot of the resource starts then"
    return m.Check(name="availability", ok=free, detail=detail)
