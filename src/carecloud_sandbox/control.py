"""The control plane ``/_sandbox/*``: credentials, faults, drift, a hidden rate limit, truth.

Every request outside ``/_sandbox`` passes, in order, through the hidden per-client rate limit,
the fault rules and the drift rules. The control plane itself needs no token: serve the tenant
on loopback only.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carecloud_sandbox import personas
from carecloud_sandbox.activity import Activity, ClockError
from carecloud_sandbox.db import TRUTH_TABLES
from carecloud_sandbox.fhir.auth import credentials as smart_credentials
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import ApiError, error_response, json_response, loads
from carecloud_sandbox.v2.oauth import seed_refresh_token

FAULT_STATUSES = (500, 502, 503, 504)
RETYPES = ("string", "integer", "number", "boolean", "null")


def credentials(tenant: Tenant) -> dict[str, object]:
    """Everything a client needs to reach the tenant."""
    base = tenant.config.base_url.rstrip("/")
    clients = {r["client_id"]: r for r in tenant.db.all("SELECT * FROM oauth_clients")}
    main = clients[personas.CLIENT_ID]
    limited = clients[personas.LIMITED_CLIENT_ID]
    practices = []
    for p in tenant.db.all("SELECT * FROM practices ORDER BY id"):
        users = tenant.db.all(
            "SELECT username, password, totp_seed, email, phone FROM users "
            "WHERE practice_id = ? ORDER BY id",
            (p["id"],),
        )
        practices.append(
            {
                "id": p["id"],
                "business_entity_id": p["business_entity_id"],
                "name": p["name"],
                "timezone": p["timezone"],
                "fhir_code": p["fhir_code"],
                "refresh_token": seed_refresh_token(tenant, main["client_id"], p["id"]),
                "limited_refresh_token": seed_refresh_token(tenant, limited["client_id"], p["id"]),
                "users": [dict(u) for u in users],
            }
        )
    return {
        "base_url": base,
        "api_base_url": f"{base}/v2",
        "authorize_url": f"{base}/oauth2/authorize",
        "token_url": f"{base}/oauth2/access_token",
        "client_id": main["client_id"],
        "client_secret": main["client_secret"],
        "redirect_uri": main["redirect_uri"],
        "scopes": loads(main["scopes_json"]),
        "limited_client": {
            "client_id": limited["client_id"],
            "client_secret": limited["client_secret"],
            "scopes": loads(limited["scopes_json"]),
        },
        "practices": practices,
        "portal_url": f"{base}/portal/api",
        "connector": smart_credentials(tenant),
    }


# --- faults -----------------------------------------------------------------------------------


@dataclass
class FaultRule:
    """A fault applied to requests whose path matches ``pattern`` (a glob)."""

    id: int
    pattern: str
    methods: tuple[str, ...] = ()
    error_rate: float = 0.0
    status: int = 503
    rate_429: float = 0.0
    retry_after: int = 1
    latency_ms: int = 0
    drop_rate: float = 0.0
    count: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def public(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {k: v for k, v in self.__dict__.items() if k != "rng"} | {
            "methods": list(self.methods)
        }


def _rate(body: dict[str, Any], key: str) -> float:
    value = body.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ApiError(400, f"{key} must be a number between 0 and 1")
    return float(value)


def _count(body: dict[str, Any], key: str, low: int, high: int, default: int | None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"{key} must be an integer between {low} and {high}")
    return value


def parse_fault(body: dict[str, Any], rule_id: int, seed: int) -> FaultRule:
    """Validate a fault rule body."""
    pattern = body.get("pattern")
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ApiError(400, "pattern must be a path glob starting with /")
    methods = body.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise ApiError(400, "methods must be a list of HTTP methods")
    status = _count(body, "status", 500, 504, 503)
    if status not in FAULT_STATUSES:
        raise ApiError(400, "status must be one of 500, 502, 503, 504")
    unknown = set(body) - {
        "pattern",
        "methods",
        "error_rate",
        "status",
        "rate_429",
        "retry_after",
        "latency_ms",
        "drop_rate",
        "count",
    }
    if unknown:
        raise ApiError(400, f"unknown fault fields: {', '.join(sorted(unknown))}")
    return FaultRule(
        id=rule_id,
        pattern=pattern,
        methods=tuple(m.upper() for m in methods),
        error_rate=_rate(body, "error_rate"),
        status=int(status),
        rate_429=_rate(body, "rate_429"),
        retry_after=int(_count(body, "retry_after", 0, 3600, 1) or 0),
        latency_ms=int(_count(body, "latency_ms", 0, 60_000, 0) or 0),
        drop_rate=_rate(body, "drop_rate"),
        count=_count(body, "count", 1, 1_000_000, None),
        rng=random.Random(f"{seed}:fault:{rule_id}"),
    )


# --- drift ------------------------------------------------------------------------------------


@dataclass
class DriftRule:
    """Field changes of a simulated upstream release, for requests matching ``endpoint``."""

    id: int
    endpoint: str  # "METHOD /path-glob"
    rename: dict[str, str]
    retype: dict[str, str]
    add: dict[str, Any]

    def public(self) -> dict[str, Any]:
        """The rule as JSON."""
        return dict(self.__dict__)

    def matches(self, method: str, path: str) -> bool:
        """True when the rule applies to a request."""
        want_method, _, glob = self.endpoint.partition(" ")
        return want_method.upper() in (method, "*") and fnmatch.fnmatchcase(path, glob)


def parse_drift(body: dict[str, Any], rule_id: int) -> DriftRule:
    """Validate a drift rule body."""
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or " /" not in endpoint:
        raise ApiError(400, 'endpoint must look like "GET /v2/patients/*"')
    parts = {}
    for key in ("rename", "retype", "add"):
        value = body.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            raise ApiError(400, f"{key} must be an object keyed by dotted field paths")
        parts[key] = value
    if not any(parts.values()):
        raise ApiError(400, "a drift rule needs at least one of rename, retype, add")
    if not all(isinstance(v, str) and v for v in parts["rename"].values()):
        raise ApiError(400, "rename values must be field names")
    if not all(v in RETYPES for v in parts["retype"].values()):
        raise ApiError(400, f"retype values must be one of {', '.join(RETYPES)}")
    return DriftRule(rule_id, endpoint, parts["rename"], parts["retype"], parts["add"])


def _targets(node: Any, path: list[str]) -> list[tuple[dict[str, Any], str]]:
    """The (parent object, key) pairs a dotted path names; ``[]`` walks every array item."""
    if not path:
        return []
    head, rest = path[0], path[1:]
    if head == "[]":
        items = node if isinstance(node, list) else []
        return [t for item in items for t in _targets(item, rest)]
    if not isinstance(node, dict):
        return []
    if not rest:
        return [(node, head)]
    return _targets(node.get(head), rest)


def _retype(value: Any, kind: str) -> Any:
    if kind == "null":
        return None
    if kind == "string":
        return "" if value is None else str(value)
    if kind == "boolean":
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if kind == "integer" else number


def apply_drift(body: Any, rule: DriftRule) -> Any:
    """Apply one rule's renames, retypes and additions to a parsed JSON body."""
    for old, new in rule.rename.items():
        for parent, key in _targets(body, old.split(".")):
            if key in parent:
                parent[new.split(".")[-1]] = parent.pop(key)
    for path, kind in rule.retype.items():
        for parent, key in _targets(body, path.split(".")):
            if key in parent:
                parent[key] = _retype(parent[key], kind)
    for path, value in rule.add.items():
        steps = path.split(".")
        for parent, key in _targets(body, steps):
            parent[key] = value
    return body


PRESETS: dict[str, list[dict[str, Any]]] = {
    # An additive release: new fields only. Clients must tolerate it.
    "2026-12-additive": [
        {
            "endpoint": "GET /v2/patients/*",
            "add": {"patient.preferred_pronouns": None, "patient.portal_status": "invited"},
        },
        {"endpoint": "GET /v2/appointments", "add": {"[].appointment.telehealth_url": None}},
    ],
    # A breaking release: a renamed field and a retyped id.
    "2026-12-breaking": [
        {"endpoint": "GET /v2/patients/*", "rename": {"patient.dob": "patient.date_of_birth"}},
        {"endpoint": "GET /v2/appointments", "retype": {"[].appointment.provider_id": "string"}},
    ],
}


# --- hidden rate limit ------------------------------------------------------------------------


class HiddenLimiter:
    """A token bucket per client, refilled by the tenant's clock; silent until exceeded."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.buckets: dict[str, tuple[float, float]] = {}

    @property
    def active(self) -> bool:
        """True when the tenant has a hidden limit at all."""
        return self.tenant.config.rate_limit_rps > 0

    def allow(self, key: str) -> bool:
        """Spend one token for ``key``; False when the bucket is empty."""
        rate = self.tenant.config.rate_limit_rps
        if rate <= 0:
            return True
        burst = float(max(self.tenant.config.rate_limit_burst, 1))
        now = self.tenant.now().timestamp()
        tokens, last = self.buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - 1, now)
        return True


class ControlState:
    """The run-time controls of one tenant."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.faults: dict[int, FaultRule] = {}
        self.drift: dict[int, DriftRule] = {}
        self.limiter = HiddenLimiter(tenant)
        self.next_id = 1

    def new_id(self) -> int:
        """A fresh rule id."""
        self.next_id += 1
        return self.next_id - 1


def _client_key(tenant: Tenant, scope: Scope) -> str:
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    token = auth[6:].strip() if auth.lower().startswith("bearer") else auth
    if token:
        client = tenant.token_client(token)
        if client:
            return f"client:{client}"
    if auth.lower().startswith("basic "):
        return f"basic:{auth}"
    peer = scope.get("client") or ("?", 0)
    return f"ip:{peer[0]}"


class ControlMiddleware:
    """Rate limit, faults and drift around the tenant's surfaces."""

    def __init__(self, app: ASGIApp, tenant: Tenant, state: ControlState) -> None:
        self.app = app
        self.tenant = tenant
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limiter = self.state.limiter
        if limiter.active and not limiter.allow(_client_key(self.tenant, scope)):
            await json_response({"message": "Too Many Requests"}, status=429)(scope, receive, send)
            return
        for rule in list(self.state.faults.values()):
            if not fnmatch.fnmatchcase(path, rule.pattern) or (
                rule.methods and method not in rule.methods
            ):
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.state.faults.pop(rule.id, None)
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.drop_rate and rule.rng.random() < rule.drop_rate:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"1000"),
                        ],
                    }
                )
                await send(
                    {"type": "http.response.body", "body": b'{"partial": ', "more_body": True}
                )
                raise ConnectionAbortedError("sandbox fault: dropped connection")
            if rule.rate_429 and rule.rng.random() < rule.rate_429:
                response = json_response(
                    {"message": "Too Many Requests"},
                    status=429,
                    headers={"Retry-After": str(rule.retry_after), "X-Sandbox-Fault": str(rule.id)},
                )
                await response(scope, receive, send)
                return
            if rule.error_rate and rule.rng.random() < rule.error_rate:
                response = json_response(
                    {
                        "error": "An error occured we cannot recover from. If this continues please contact support."
                    },
                    status=rule.status,
                    headers={"X-Sandbox-Fault": str(rule.id)},
                )
                await response(scope, receive, send)
                return
        rules = [r for r in self.state.drift.values() if r.matches(method, path)]
        if not rules:
            await self.app(scope, receive, send)
            return
        await self._with_drift(scope, receive, send, rules)

    async def _with_drift(
        self, scope: Scope, receive: Receive, send: Send, rules: list[DriftRule]
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        assert start is not None  # noqa: S101 - every ASGI response starts
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if start["status"] < 400 and body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
            if parsed is not None:
                for rule in rules:
                    parsed = apply_drift(parsed, rule)
                body = orjson.dumps(parsed)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# --- routes -----------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        parsed = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "body must be a JSON object")
    return parsed


MAX_ADVANCE = 366 * 24 * 60  # minutes: a year at most per call

SETTINGS = {
    "access_token_ttl": (int, 1, 10**8),
    "refresh_token_ttl": (int, 1, 10**9),
    "rotate_refresh_tokens": (bool, 0, 1),
    "rate_limit_rps": (float, 0, 10**6),
    "rate_limit_burst": (int, 1, 10**6),
    "portal_idle_timeout": (int, 1, 10**8),
    "portal_absolute_timeout": (int, 1, 10**9),
    "portal_max_sessions": (int, 1, 1000),
    "portal_lockout_threshold": (int, 1, 1000),
    "portal_lockout_seconds": (int, 1, 10**8),
    "portal_device_ttl": (int, 1, 10**9),
    "mfa_code_ttl": (int, 1, 10**6),
    "smart_token_ttl": (int, 1, 10**8),
    "bulk_export_seconds": (int, 0, 10**6),
}


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The control-plane routes."""
    state: ControlState = tenant.__dict__.setdefault("control", ControlState(tenant))

    def handle(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                result: Response = await fn(request)
            except ApiError as err:
                return error_response(err)
            return result

        return endpoint

    async def get_credentials(request: Request) -> Response:
        del request
        return json_response(credentials(tenant))

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            rule = parse_fault(await _body(request), state.new_id(), tenant.config.seed)
            state.faults[rule.id] = rule
            return json_response(rule.public(), status=201)
        if request.method == "DELETE":
            state.faults.clear()
            return Response(status_code=204)
        return json_response([r.public() for r in state.faults.values()])

    async def fault(request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if state.faults.pop(rule_id, None) is None:
            raise ApiError(404, "Resource not found.")
        return Response(status_code=204)

    async def drift(request: Request) -> Response:
        if request.method == "POST":
            rule = parse_drift(await _body(request), state.new_id())
            state.drift[rule.id] = rule
            return json_response(rule.public(), status=201)
        if request.method == "DELETE":
            state.drift.clear()
            return Response(status_code=204)
        return json_response([r.public() for r in state.drift.values()])

    async def release(request: Request) -> Response:
        preset = PRESETS.get(request.path_params["name"])
        if preset is None:
            raise ApiError(404, f"known releases: {', '.join(PRESETS)}")
        created = []
        for body in preset:
            rule = parse_drift(body, state.new_id())
            state.drift[rule.id] = rule
            created.append(rule.public())
        return json_response(created, status=201)

    async def settings(request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            changes: dict[str, Any] = {}
            for key, value in body.items():
                if key not in SETTINGS:
                    raise ApiError(400, f"unknown setting {key}")
                kind, low, high = SETTINGS[key]
                ok_type = (
                    isinstance(value, bool)
                    if kind is bool
                    else (
                        isinstance(value, int | float)
                        and not isinstance(value, bool)
                        and (kind is float or isinstance(value, int))
                    )
                )
                if not ok_type or not low <= value <= high:
                    raise ApiError(400, f"{key} must be a {kind.__name__} in [{low}, {high}]")
                changes[key] = kind(value)
            tenant.config = replace(tenant.config, **changes)
        return json_response({k: getattr(tenant.config, k) for k in SETTINGS})

    async def clock(request: Request) -> Response:
        del request
        return json_response(
            {"now": tenant.now_db(), "activity_at": tenant.db.get_meta("activity_at")}
        )

    async def clock_advance(request: Request) -> Response:
        body = await _body(request)
        minutes = body.get("minutes")
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not 0 <= minutes <= MAX_ADVANCE
        ):
            raise ApiError(400, f"minutes must be an integer from 0 to {MAX_ADVANCE}")
        try:
            happened = await anyio.to_thread.run_sync(Activity(tenant).advance, minutes)
        except ClockError as err:
            raise ApiError(409, str(err)) from None
        return json_response({"now": tenant.now_db(), "activity": happened})

    async def truth_index(request: Request) -> Response:
        del request
        return json_response(
            {t: tenant.db.scalar(f"SELECT COUNT(*) FROM {t}") for t in TRUTH_TABLES}
        )

    async def truth(request: Request) -> Response:
        entity = request.path_params["entity"]
        if entity not in TRUTH_TABLES:
            raise ApiError(404, "Resource not found.")
        practice = request.query_params.get("practice_id")
        if practice is not None and not practice.isdigit():
            raise ApiError(400, "practice_id must be an integer")
        order = TRUTH_TABLES[entity]
        columns = {r[1] for r in tenant.db.all(f"PRAGMA table_info({entity})")}
        has_practice = "practice_id" in columns and entity != "practices"

        async def rows() -> AsyncIterator[bytes]:
            last: Any = None
            while True:
                where, params = [], []
                if last is not None:
                    where.append(f"{order} > ?")
                    params.append(last)
                if practice is not None and has_practice:
                    where.append("practice_id = ?")
                    params.append(int(practice))
                sql = f"SELECT * FROM {entity}" + (f" WHERE {' AND '.join(where)}" if where else "")
                batch = tenant.db.all(f"{sql} ORDER BY {order} LIMIT 1000", tuple(params))
                if not batch:
                    return
                yield b"".join(orjson.dumps(dict(r)) + b"\n" for r in batch)
                last = batch[-1][order]

        return StreamingResponse(rows(), media_type="application/x-ndjson")

    async def changes(request: Request) -> Response:
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise ApiError(400, "after must be a sequence number")
        rows = tenant.db.all(
            "SELECT * FROM change_log WHERE seq > ? ORDER BY seq LIMIT 1000", (int(after),)
        )
        return json_response([dict(r) for r in rows])

    return [
        Route("/_sandbox/credentials", handle(get_credentials), methods=["GET"]),
        Route("/_sandbox/faults", handle(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/faults/{rule_id:int}", handle(fault), methods=["DELETE"]),
        Route("/_sandbox/drift", handle(drift), methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/drift/releases/{name}", handle(release), methods=["POST"]),
        Route("/_sandbox/settings", handle(settings), methods=["GET", "PUT"]),
        Route("/_sandbox/truth", handle(truth_index), methods=["GET"]),
        Route("/_sandbox/truth/{entity}", handle(truth), methods=["GET"]),
        Route("/_sandbox/changes", handle(changes), methods=["GET"]),
        Route("/_sandbox/clock", handle(clock), methods=["GET"]),
        Route("/_sandbox/clock/advance", handle(clock_advance), methods=["POST"]),
    ]


def wrap(app: ASGIApp, tenant: Tenant) -> ASGIApp:
    """Wrap the app in the control plane's middleware."""
    state: ControlState = tenant.__dict__.setdefault("control", ControlState(tenant))
    return ControlMiddleware(app, tenant, state)
