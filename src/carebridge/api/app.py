"""The carebridge API: the seven seed endpoints and the rest of the surface.

Every route authenticates a bearer credential (an API key, or a session token from
``POST /authenticate``), checks its scope, scopes the query to the caller's tenant (another
tenant's ids are 404), audits PHI access before answering, and answers errors as RFC 9457
problems. Reads say how old their data is (``Age``) and accept ``max_age`` (or
``Cache-Control: max-age=N`` / ``no-cache``); writes take an ``Idempotency-Key`` and answer
their ledger state. ``RateLimit`` headers carry the tenant's upstream budget.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Body as BodyParam
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.types import ASGIApp

from carebridge.api import bodies, problems
from carebridge.api.middleware import DEFAULT_MAX_BODY, BodyLimit, SecureHeaders
from carebridge.api.routes import audit as audit_routes
from carebridge.api.routes import events as event_routes
from carebridge.domain import EligibilityRequest
from carebridge.domain.kinds import writes as kind_writes
from carebridge.domain.values import (
    AppointmentId,
    ClaimId,
    EncounterId,
    LocationId,
    PatientId,
    ProviderId,
    RequestBound,
    RequestDay,
    RequestInstant,
    ResourceId,
    VisitReasonId,
)
from carebridge.ports.records import AuditReader, EventReader, KeyStore
from carebridge.ports.upstream import Upstream, WriteResult
from carebridge.ports.writes import request_hash
from carebridge.services.live import Answer, BadRequest, Freshness, Live, Served
from carebridge.services.records import NotFound, Principal, Unauthorized, authenticate

MAX_LIMIT = 500
MAX_SEQ = 2**63 - 1
"""The largest sequence number the store holds (signed 64-bit); ``after`` beyond it is 422."""
DATE = r"^\d{4}-\d{2}-\d{2}$"
_MAX_AGE = re.compile(r"max-age=(\d{1,9})")

SessionCheck = Callable[[str], Awaitable[Principal | None]]

WRITES: dict[str, tuple[str, str, bool]] = {
    w.operation: (w.scope, w.kind, w.creates) for w in kind_writes().values()
}
"""Each write route's scope, the kind it writes, and whether it creates (201)."""


class Page(BaseModel):
    """A page of records and the cursor of the next one (None on the last page)."""

    data: list[dict[str, Any]]
    next_cursor: str | None


class Items(BaseModel):
    """Records read in real time (no paging)."""

    data: list[dict[str, Any]]


class WriteAnswer(BaseModel):
    """A write's record as read back, and whether the read-back matched the request."""

    data: dict[str, Any]
    confirmation: str
    diverged: list[str]
    ledger_id: int


class Health(BaseModel):
    """Liveness."""

    status: str


def _json(
    body: Any,
    *,
    status: int = 200,
    age: timedelta | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return _raw(orjson.dumps(body), age=age, headers=headers or {}, status=status)


def _raw(
    body: bytes, *, age: timedelta | None, headers: dict[str, str], status: int = 200
) -> Response:
    extra = {"Cache-Control": "private, no-store", **headers}
    if age is not None:
        extra["Age"] = str(max(0, int(age.total_seconds())))
    return Response(body, status_code=status, media_type="application/json", headers=extra)


def _given(**values: str | None) -> dict[str, str]:
    """The filters the caller gave (empty ones are not filters)."""
    return {key: value for key, value in values.items() if value}


def _freshness(max_age: int | None, cache_control: str | None) -> Freshness:
    """``max_age`` wins; else ``Cache-Control: no-cache`` (0) or ``max-age=N``."""
    if max_age is not None:
        return Freshness(timedelta(seconds=max_age))
    header = (cache_control or "").lower()
    if "no-cache" in header:
        return Freshness(timedelta(0))
    found = _MAX_AGE.search(header)
    return Freshness(timedelta(seconds=int(found.group(1)))) if found else Freshness()


async def _caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller: a session token (``cbs_``) from ``POST /authenticate``, or an API key."""
    token = (authorization or "").strip()
    bare = token[7:].strip() if token.lower().startswith("bearer ") else token
    sessions: SessionCheck | None = request.app.state.sessions
    if sessions is not None and bare.startswith("cbs_"):
        principal = await sessions(bare)
        if principal is None:
            raise Unauthorized("the session token is not valid or has expired")
    else:
        principal = await authenticate(request.app.state.keys, authorization)
    return principal


Caller = Annotated[Principal, Depends(_caller)]


def _query_names(dependant: Any) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def _declared_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422): a misspelt filter
    (``update_since``) must not silently widen a read."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # pragma: no cover - every API route has one
        return
    # kept on the route itself: a table keyed by id() would outlive a collected route, and
    # another app's route could reuse its id
    known: frozenset[str] | None = getattr(route, "_carebridge_query_names", None)
    if known is None:
        known = _query_names(dependant)
        route._carebridge_query_names = known  # type: ignore[union-attr]
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name[:64]),
                    "msg": "not a query parameter of this route",
                }
                for name in unknown
            ]
        )


PUBLIC = frozenset({"/health", "/authenticate", "/tenants"})


async def _credential(request: Request) -> None:
    """Raise unless the request carries a valid credential (public routes need none)."""
    if request.url.path not in PUBLIC:
        await _caller(request, request.headers.get("authorization"))


CacheControl = Annotated[
    str | None, Header(alias="Cache-Control", description="max-age=N, or no-cache for live data")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="The `next_cursor` of the previous page.")
]
MaxAge = Annotated[
    int | None,
    Query(ge=0, le=86_400 * 30, description="Oldest acceptable data, in seconds (0 = live)."),
]
Since = Annotated[
    RequestInstant | None,
    Query(
        description="Only records changed at or after this instant: RFC 3339 with its offset "
        "(`2026-12-01T15:00:00Z`); Unix epochs are refused."
    ),
]
From = Annotated[RequestBound | None, Query(description="Window start: a day or an instant.")]
Until = Annotated[RequestBound | None, Query(description="Window end: a day or an instant.")]
After = Annotated[
    int, Query(ge=0, le=MAX_SEQ, description="The last seq you have seen (0 = from the start).")
]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1 to 255 visible ASCII characters (else 400). Replays the first answer "
        "for 24 h; 422 if reused with another body.",
    ),
]


class Api(FastAPI):
    """FastAPI whose every answer, including the last-resort 500, carries the security
    headers (:class:`SecureHeaders` wraps the whole stack, error middleware included), and whose
    OpenAPI document says how it authenticates and which problems each operation answers."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecureHeaders(super().build_middleware_stack())

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _document_problems(super().openapi())
        return self.openapi_schema


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; ``errors`` names each refused field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`cbk_...`), or a session token (`cbs_...`) from "
    "`POST /authenticate`; the operator token on `/tenants`.",
}
_METHODS = frozenset({"get", "post", "put", "patch", "delete"})


def _document_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation's problem answers (``application/problem+json``), and the bearer
    credential as a security scheme rather than an ``Authorization`` header parameter."""
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    problem_content = {problems.MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            parameters = operation.get("parameters", [])
            kept = [
                p
                for p in parameters
                if not (p.get("in") == "header" and p.get("name", "").lower() == "authorization")
            ]
            authenticated = len(kept) < len(parameters)
            if kept:
                operation["parameters"] = kept
            else:
                operation.pop("parameters", None)
            statuses = {400, 404, 422}
            if authenticated:
                operation["security"] = [{"bearer": []}]
                statuses |= {401, 403, 502, 503, 504}
            if "requestBody" in operation:
                statuses |= {409, 413}
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                entry = responses.setdefault(str(status), {})
                entry.setdefault("description", problems.TITLES.get(status, "Error"))
                entry["content"] = problem_content
    return doc


def create_app(
    live: Live,
    keys: KeyStore,
    audit: AuditReader | None = None,
    *,
    sessions: SessionCheck | None = None,
    events: EventReader | None = None,
    extra_routers: list[Any] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The API over the given use cases (``live`` without a backend serves the store only).

    Request bodies over ``max_body_bytes`` are refused with 413 before they are parsed."""
    service = live
    app = Api(
        dependencies=[Depends(_declared_query)],
        title="carebridge",
        version="0.1.0",
        openapi_url="/openapi.json",
        description=(__doc__ or "").strip(),
    )
    problems.install(app, credential=_credential)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.keys = keys
    app.state.sessions = sessions

    def rate_headers(principal: Principal) -> dict[str, str]:
        budget = service.budget(principal.tenant_id)
        if budget is None:
            return {}
        quota, remaining = budget
        return {
            "RateLimit-Policy": f'"upstream";q={quota};w=1',
            "RateLimit": f'"upstream";r={remaining};t=1',
        }

    def page(served: Served, principal: Principal) -> Response:
        # The stored JSON text goes out as it is: no parse, no re-encode.
        body = b"".join(
            (
                b'{"data":[',
                ",".join(served.page.raw).encode(),
                b'],"next_cursor":',
                orjson.dumps(served.page.next_cursor),
                b"}",
            )
        )
        return _raw(body, age=served.age, headers=rate_headers(principal))

    async def listing(
        principal: Principal,
        kind: str,
        route: str,
        filters: dict[str, str],
        *,
        limit: int,
        cursor: str | None,
        max_age: int | None,
        cache_control: str | None,
        updated_since: datetime | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Response:
        served = await service.page(
            principal,
            kind,
            route,
            freshness=_freshness(max_age, cache_control),
            filters=filters,
            updated_since=updated_since,
            starts_from=start,
            starts_before=end,
            limit=limit,
            cursor=cursor,
        )
        return page(served, principal)

    # --- health --------------------------------------------------------------------------------

    @app.get("/health", tags=["health"])
    async def health() -> Health:
        """Liveness of the service."""
        return Health(status="ok")

    @app.get("/health/upstream", tags=["health"])
    async def health_upstream(principal: Caller) -> dict[str, Any]:
        """The caller's tenant upstream: throttle budget, drift report, session state per
        surface (no secrets). ``connected`` is false until the first upstream call."""
        found = service.upstream_health(principal.tenant_id)
        return {"tenant": principal.tenant_id, "connected": found is not None, **(found or {})}

    # --- patients --------------------------------------------------------------------------------

    @app.get("/patients", tags=["patients"], response_model=Page)
    async def list_patients(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        name: Annotated[str | None, Query(max_length=200, description="Last, First")] = None,
        dob: Annotated[str | None, Query(pattern=DATE)] = None,
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
        status: Annotated[str | None, Query(pattern="^(active|inactive)$")] = None,
        updated_since: Since = None,
    ) -> Response:
        """Demographics, insurance (coverages with their eligibility) and balances."""
        if dob is not None:
            _check_date(dob, "dob")
        filters = _given(
            name_key=name.lower() if name else None,
            birth_date=dob,
            provider_id=provider_id,
            location_id=location_id,
            status=status,
        )
        return await listing(
            principal,
            "patient",
            "GET /patients",
            filters,
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
            updated_since=updated_since,
        )

    @app.get("/patients/{patient_id}", tags=["patients"])
    async def get_patient(
        principal: Caller,
        patient_id: PatientId,
        max_age: MaxAge = None,
        cache_control: CacheControl = None,
    ) -> Response:
        """One patient."""
        record, age = await service.one(
            principal,
            "patient",
            "GET /patients/{id}",
            patient_id,
            freshness=_freshness(max_age, cache_control),
        )
        return _json(record, age=age, headers=rate_headers(principal))

    @app.get("/eligibility", tags=["patients"])
    async def eligibility(
        principal: Caller,
        patient_id: PatientId,
        service_date: Annotated[RequestDay | None, Query(description="Default: today.")] = None,
        service_type: Annotated[
            list[str] | None, Query(description="X12 service type codes (default 30).")
        ] = None,
    ) -> Response:
        """A real-time eligibility inquiry (270/271), with normalized benefits."""
        try:
            request = EligibilityRequest(
                service_date=service_date or service.clock().date(),
                service_types=tuple(service_type or ["30"]),
            )
        except ValueError as err:
            raise BadRequest(_first_error(err), field="service_type") from None
        check = await service.eligibility(principal, "GET /eligibility", patient_id, request)
        return _json(
            check.model_dump(mode="json"), age=timedelta(0), headers=rate_headers(principal)
        )

    @app.get("/balances", tags=["billing"], response_model=Items)
    async def balances(principal: Caller, patient_id: PatientId) -> Response:
        """A patient's balances (patient and insurance responsibility), read in real time."""
        rows = await service.balances(principal, "GET /balances", patient_id)
        return _json(
            {"data": [r.model_dump(mode="json") for r in rows]},
            age=timedelta(0),
            headers=rate_headers(principal),
        )

    # --- practice ----------------------------------------------------------------------------

    for kind, path in (
        ("provider", "/providers"),
        ("location", "/locations"),
        ("resource", "/resources"),
        ("visit_reason", "/visit_reasons"),
    ):
        app.add_api_route(
            path,
            _practice_route(kind, path, listing),
            methods=["GET"],
            tags=["practice"],
            response_model=Page,
            summary=f"List {path[1:]}",
        )

    @app.get("/availability", tags=["scheduling"], response_model=Items)
    async def availability(
        principal: Caller,
        visit_reason_id: VisitReasonId,
        start: RequestDay,
        end: RequestDay,
        location_id: Annotated[list[LocationId] | None, Query()] = None,
        resource_id: Annotated[list[ResourceId] | None, Query()] = None,
    ) -> Response:
        """Free slots for a visit reason, read in real time (at most 31 days)."""
        slots = await service.availability(
            principal,
            visit_reason_id,
            start,
            end,
            location_ids=location_id or (),
            resource_ids=resource_id or (),
        )
        return _json(
            {"data": [s.model_dump(mode="json") for s in slots]},
            age=timedelta(0),
            headers=rate_headers(principal),
        )

    # --- scheduling --------------------------------------------------------------------------

    @app.get("/appointments", tags=["scheduling"], response_model=Page)
    async def list_appointments(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        start: From = None,
        end: Until = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        patient_id: PatientId | None = None,
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
    ) -> Response:
        """Appointments in a window (default: a week back to 30 days ahead)."""
        filters = _given(
            status=status, patient_id=patient_id, provider_id=provider_id, location_id=location_id
        )
        return await listing(
            principal,
            "appointment",
            "GET /appointments",
            filters,
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
            start=start,
            end=end,
        )

    # --- charts ------------------------------------------------------------------------------

    @app.get("/encounters", tags=["charts"], response_model=Page)
    async def list_encounters(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        patient_id: PatientId | None = None,
        provider_id: ProviderId | None = None,
        status: Annotated[str | None, Query(pattern="^(open|signed)$")] = None,
        start: From = None,
        end: Until = None,
        updated_since: Since = None,
    ) -> Response:
        """Encounters with their note, diagnoses, procedures, vitals, addenda and signature.
        With ``patient_id``, the patient's chart is read through when stale."""
        return await listing(
            principal,
            "encounter",
            "GET /encounters",
            _given(patient_id=patient_id, provider_id=provider_id, status=status),
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
            updated_since=updated_since,
            start=start,
            end=end,
        )

    for kind, path in (
        ("lab", "/labs"),
        ("immunization", "/immunizations"),
        ("document", "/documents"),
    ):
        app.add_api_route(
            path,
            _chart_route(kind, path, listing),
            methods=["GET"],
            tags=["charts"],
            response_model=Page,
            summary=f"A patient's {path[1:]}",
        )

    # --- revenue cycle -------------------------------------------------------------------------

    @app.get("/claims", tags=["billing"], response_model=Page)
    async def list_claims(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        patient_id: PatientId | None = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        updated_since: Since = None,
    ) -> Response:
        """Claims with their lines and 277 status history."""
        return await listing(
            principal,
            "claim",
            "GET /claims",
            _given(patient_id=patient_id, status=status),
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
            updated_since=updated_since,
        )

    @app.get("/claims/{claim_id}", tags=["billing"])
    async def get_claim(
        principal: Caller,
        claim_id: ClaimId,
        max_age: MaxAge = None,
        cache_control: CacheControl = None,
    ) -> Response:
        """One claim."""
        record, age = await service.one(
            principal,
            "claim",
            "GET /claims/{id}",
            claim_id,
            freshness=_freshness(max_age, cache_control),
        )
        return _json(record, age=age, headers=rate_headers(principal))

    for kind, path in (
        ("charge", "/charges"),
        ("payment", "/payments"),
        ("remittance", "/remittances"),
        ("statement", "/statements"),
    ):
        app.add_api_route(
            path,
            _billing_route(kind, path, listing),
            methods=["GET"],
            tags=["billing"],
            response_model=Page,
            summary=f"List {path[1:]}",
        )

    # --- writes --------------------------------------------------------------------------------

    async def run(
        request: Request,
        principal: Principal,
        body: BaseModel,
        key: str | None,
        *,
        patients: list[str],
        call: Callable[[Upstream], Awaitable[WriteResult[Any]]],
        refs: list[tuple[str, str]] | None = None,
    ) -> Response:
        operation = request.url.path.strip("/")
        scope, kind, created = WRITES[operation]
        payload = body.model_dump(mode="json")
        answer: Answer = await service.write(
            principal,
            scope=scope,
            operation=operation,
            kind=kind,
            fingerprint=request_hash("POST", request.url.path, payload),
            request=payload,
            idempotency_key=key,
            patient_ids=patients,
            call=call,
            render=lambda err: problems.render(err)[:2],
            created=created,
            refs=refs or [],
        )
        headers = rate_headers(principal)
        if answer.replayed:
            headers["Idempotent-Replayed"] = "true"
        if answer.status >= 400:
            return Response(
                orjson.dumps(answer.body),
                status_code=answer.status,
                media_type=problems.MEDIA,
                headers=headers,
            )
        return _json(answer.body, status=answer.status, headers=headers)

    async def appointment_patient(principal: Principal, appointment_id: str) -> str:
        principal.require("appointment.write")
        record = await service.records.get(principal.tenant_id, "appointment", appointment_id)
        if record is None:
            raise NotFound(f"no appointment {appointment_id}")
        await service.prime_appointment(principal, record)
        return str(record["patient_id"])

    @app.post(
        "/create_appointment", tags=["scheduling"], status_code=201, response_model=WriteAnswer
    )
    async def create_appointment(
        request: Request, principal: Caller, body: bodies.CreateAppointment, key: IdemKey = None
    ) -> Response:
        """Book a visit in a free slot (``GET /availability``); 409 when the slot is taken."""
        command = body.command()
        return await run(
            request,
            principal,
            body,
            key,
            patients=[body.patient_id],
            refs=_booking_refs(body),
            call=lambda up: up.create_appointment(command),
        )

    @app.post("/reschedule_appointment", tags=["scheduling"], response_model=WriteAnswer)
    async def reschedule_appointment(
        request: Request, principal: Caller, body: bodies.Reschedule, key: IdemKey = None
    ) -> Response:
        """Move an appointment to another free slot."""
        patient = await appointment_patient(principal, body.appointment_id)
        command = body.command(patient)
        return await run(
            request,
            principal,
            body,
            key,
            patients=[patient],
            refs=_booking_refs(body),
            call=lambda up: up.reschedule_appointment(AppointmentId(body.appointment_id), command),
        )

    @app.post("/cancel_appointment", tags=["scheduling"], response_model=WriteAnswer)
    async def cancel_appointment(
        request: Request, principal: Caller, body: bodies.Cancel, key: IdemKey = None
    ) -> Response:
        """Cancel an appointment, with a cancellation reason code (default: the practice's)."""
        patient = await appointment_patient(principal, body.appointment_id)
        return await run(
            request,
            principal,
            body,
            key,
            patients=[patient],
            call=lambda up: up.cancel_appointment(
                AppointmentId(body.appointment_id),
                reason_code=body.reason_code,
                comments=body.comments,
            ),
        )

    @app.post("/check_in", tags=["scheduling"], response_model=WriteAnswer)
    async def check_in(
        request: Request, principal: Caller, body: bodies.AppointmentRef, key: IdemKey = None
    ) -> Response:
        """Mark the patient arrived."""
        patient = await appointment_patient(principal, body.appointment_id)
        return await run(
            request,
            principal,
            body,
            key,
            patients=[patient],
            call=lambda up: up.check_in(AppointmentId(body.appointment_id)),
        )

    @app.post("/check_out", tags=["scheduling"], response_model=WriteAnswer)
    async def check_out(
        request: Request, principal: Caller, body: bodies.AppointmentRef, key: IdemKey = None
    ) -> Response:
        """Mark the visit done (the upstream opens its encounter)."""
        patient = await appointment_patient(principal, body.appointment_id)
        return await run(
            request,
            principal,
            body,
            key,
            patients=[patient],
            call=lambda up: up.check_out(AppointmentId(body.appointment_id)),
        )

    @app.post("/create_encounter", tags=["charts"], status_code=201, response_model=WriteAnswer)
    async def create_encounter(
        request: Request, principal: Caller, body: bodies.CreateEncounter, key: IdemKey = None
    ) -> Response:
        """Push an encounter (note, diagnoses, procedures) to the EHR; it starts open."""
        command = body.command()
        return await run(
            request,
            principal,
            body,
            key,
            patients=[body.patient_id],
            refs=_refs(provider=body.provider_id, location=body.location_id),
            call=lambda up: up.push_encounter(command),
        )

    @app.post("/sign_encounter", tags=["charts"], response_model=WriteAnswer)
    async def sign_encounter(
        request: Request, principal: Caller, body: bodies.EncounterRef, key: IdemKey = None
    ) -> Response:
        """Sign an open encounter (it locks; its charges post)."""
        principal.require("encounter.write")
        record = await service.records.get(principal.tenant_id, "encounter", body.encounter_id)
        if record is None:
            raise NotFound(f"no encounter {body.encounter_id}")
        patient = str(record["patient_id"])
        await service.prime_chart(principal, patient)
        return await run(
            request,
            principal,
            body,
            key,
            patients=[patient],
            call=lambda up: up.sign_encounter(EncounterId(body.encounter_id)),
        )

    @app.post("/create_charge", tags=["billing"], status_code=201, response_model=WriteAnswer)
    async def create_charge(
        request: Request, principal: Caller, body: bodies.CreateCharge, key: IdemKey = None
    ) -> Response:
        """Post a CPT/HCPCS charge to the patient's ledger."""
        command = body.command()
        return await run(
            request,
            principal,
            body,
            key,
            patients=[body.patient_id],
            refs=_refs(
                provider=body.provider_id, location=body.location_id, encounter=body.encounter_id
            ),
            call=lambda up: up.create_charge(command),
        )

    @app.post("/submit_claim", tags=["billing"], status_code=201, response_model=WriteAnswer)
    async def submit_claim(
        request: Request,
        principal: Caller,
        body: Annotated[bodies.SubmitClaim, BodyParam()],
        key: IdemKey = None,
    ) -> Response:
        """Scrub and submit a claim from unbilled charges; answers the claim and its status.
        A scrubber rejection is a 422 naming every field."""
        principal.require("claim.write")
        await service.prime_charges(principal, body.patient_id)
        command = body.command()
        return await run(
            request,
            principal,
            body,
            key,
            patients=[body.patient_id],
            refs=[("charge", c) for c in body.charge_ids],
            call=lambda up: up.submit_claim(command),
        )

    if audit is not None:
        app.include_router(audit_routes.router(audit))
    if events is not None:
        app.include_router(event_routes.router(events, service))

    for router in extra_routers or []:
        app.include_router(router)
    return app


def _refs(**ids: str | None) -> list[tuple[str, str]]:
    """The (kind, id) pairs a body names, for the tenant check."""
    return [(kind, value) for kind, value in ids.items() if value]


def _booking_refs(body: bodies.Booking) -> list[tuple[str, str]]:
    return _refs(
        resource=body.resource_id,
        location=body.location_id,
        visit_reason=body.visit_reason_id,
        provider=body.provider_id,
    )


def _check_date(text: str, field: str) -> None:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{field} is not a calendar date", field=field) from None


def _first_error(err: ValueError) -> str:
    return str(err).splitlines()[-1].strip() if str(err) else "invalid"


Listing = Callable[..., Awaitable[Response]]


def _practice_route(kind: str, path: str, listing: Listing) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
    ) -> Response:
        return await listing(
            principal,
            kind,
            f"GET {path}",
            {},
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
        )

    route.__doc__ = f"The practice's {path[1:]} (refreshed daily unless ``max_age`` says less)."
    return route


def _chart_route(kind: str, path: str, listing: Listing) -> Any:
    async def route(
        principal: Caller,
        patient_id: PatientId,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> Response:
        return await listing(
            principal,
            kind,
            f"GET {path}",
            _given(patient_id=patient_id, status=status),
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
        )

    route.__doc__ = f"A patient's {path[1:]}, read through the chart when stale."
    return route


def _billing_route(kind: str, path: str, listing: Listing) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        patient_id: PatientId | None = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        updated_since: Since = None,
    ) -> Response:
        return await listing(
            principal,
            kind,
            f"GET {path}",
            _given(patient_id=patient_id, status=status),
            limit=limit,
            cursor=cursor,
            max_age=max_age,
            cache_control=cache_control,
            updated_since=updated_since,
        )

    route.__doc__ = f"The tenant's {path[1:]}, refreshed incrementally when stale."
    return route
