"""The answers that are not records of a kind: events, audit entries, webhooks and their
deliveries, the sync report, health, tenants."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebridge.contract.time import Timestamp


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class Event(BaseModel):
    """One change in the tenant's ordered log: what changed (``diff``: field to
    ``[before, after]``) and when it happened and was detected. An event about a kind the key
    may not read keeps its place with ``redacted: true`` and no entity, patient or diff."""

    model_config = _examples(
        {
            "id": "evt_7bad52d2a7eeff20a45a7d89359395d4e5288f2a",
            "seq": 1,
            "type": "appointment.cancelled",
            "kind": "appointment",
            "entity_id": "apt_5onb7mocmqtj4bvdd33lmv4lft",
            "patient_id": "pat_c545y34mjao3u6zljzerbtztdq",
            "diff": {"status": ["scheduled", "cancelled"]},
            "occurred_at": "2026-11-24T15:00:00Z",
            "detected_at": "2026-11-24T15:00:02Z",
            "redacted": False,
        }
    )

    id: str = Field(pattern=r"^evt_[a-z0-9]+$")
    seq: int = Field(ge=1, description="The position in the log: pass it as `after`.")
    type: str
    kind: str | None
    entity_id: str | None
    patient_id: str | None
    diff: dict[str, Any] | None
    occurred_at: Timestamp | None
    detected_at: Timestamp
    redacted: bool


class AuditEntry(BaseModel):
    """Who read which patients' data, through which route, when; ``hash`` chains the entry to
    the one before (``carebridge audit verify``)."""

    model_config = _examples(
        {
            "id": "aud_1",
            "seq": 1,
            "principal": "key_4f3c2a1b0e9d8c7b",
            "route": "GET /patients",
            "patient_ids": ["pat_c545y34mjao3u6zljzerbtztdq"],
            "at": "2026-11-24T15:00:00Z",
            "hash": "899fb5156e5c79890b7e8601a5cd131361fa5588846e9dcf29ab0341b7db6417",
        }
    )

    id: str = Field(pattern=r"^aud_[0-9]+$")
    seq: int = Field(ge=1)
    principal: str
    route: str
    patient_ids: list[str]
    at: Timestamp
    hash: str


WebhookState = Literal["enabled", "disabled"]

_WEBHOOK = {
    "id": "whk_ffac050c2651fd1a80756b9c8fddbd2a",
    "url": "https://hooks.example.com/carebridge",
    "event_types": ["appointment.*", "claim.paid"],
    "scopes": ["appointment.read", "claim.read"],
    "state": "enabled",
    "consecutive_failures": 0,
    "previous_secret_expires_at": None,
    "created_at": "2026-11-24T15:00:00Z",
    "disabled_at": None,
}


class Webhook(BaseModel):
    """A webhook subscription (never its secret)."""

    model_config = _examples(_WEBHOOK)

    id: str = Field(pattern=r"^whk_[a-z0-9]+$")
    url: str
    event_types: list[str]
    scopes: list[str]
    state: str
    consecutive_failures: int
    previous_secret_expires_at: Timestamp | None
    created_at: Timestamp
    disabled_at: Timestamp | None


class WebhookCreated(Webhook):
    """A new subscription and its signing secret, shown this once."""

    model_config = _examples(
        _WEBHOOK | {"secret": "whsec_otdiCUVJ5QK/PPy5qD1er4afk5zbj+6YtcmqdvmKgjY="}
    )

    secret: str


class SecretRotated(BaseModel):
    """A subscription's new signing secret (shown once) and when the old one stops working."""

    model_config = _examples(
        {
            "id": "whk_ffac050c2651fd1a80756b9c8fddbd2a",
            "secret": "whsec_otdiCUVJ5QK/PPy5qD1er4afk5zbj+6YtcmqdvmKgjY=",
            "previous_secret_expires_at": "2026-11-25T15:00:00Z",
        }
    )

    id: str
    secret: str
    previous_secret_expires_at: Timestamp


class Delivery(BaseModel):
    """One event's delivery to a subscription: its state (pending, delivered, dead), attempts,
    last answer, and next attempt."""

    model_config = _examples(
        {
            "id": "dlv_12",
            "seq": 3,
            "message_id": "msg_7bad52d2a7eeff20a45a7d89359395d4",
            "type": "appointment.cancelled",
            "entity": "appointment:apt_5onb7mocmqtj4bvdd33lmv4lft",
            "state": "delivered",
            "attempts": 1,
            "last_status": 200,
            "last_error": None,
            "next_attempt_at": None,
            "created_at": "2026-11-24T15:00:00Z",
            "delivered_at": "2026-11-24T15:00:01Z",
        }
    )

    id: str = Field(pattern=r"^dlv_[0-9]+$")
    seq: int
    message_id: str
    type: str
    entity: str | None
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    delivered_at: Timestamp | None


class Replay(BaseModel):
    """Events queued again for a subscription."""

    model_config = _examples(
        {"id": "whk_ffac050c2651fd1a80756b9c8fddbd2a", "from_seq": 1, "queued": 12}
    )

    id: str
    from_seq: int
    queued: int


class StreamReport(BaseModel):
    """What one sync stream did."""

    model_config = ConfigDict(extra="forbid")

    read: int
    changed: int
    tombstoned: int
    pages: int
    attempts: int
    seconds: float
    error: str | None
    skipped: str | None = Field(
        default=None, description="Why the stream did not run (another sync holds it)."
    )


class SyncReport(BaseModel):
    """The report of one sync run, per stream."""

    model_config = _examples(
        {
            "tenant_id": "ten_maple",
            "started_at": "2026-11-24T15:00:00Z",
            "ok": True,
            "streams": {
                "patients": {
                    "read": 3,
                    "changed": 0,
                    "tombstoned": 0,
                    "pages": 1,
                    "attempts": 1,
                    "seconds": 0.018,
                    "error": None,
                }
            },
        }
    )

    tenant_id: str
    started_at: Timestamp
    ok: bool
    streams: dict[str, StreamReport]


class Health(BaseModel):
    """Liveness."""

    model_config = _examples({"status": "ok"})

    status: Literal["ok"]


class UpstreamThrottle(BaseModel):
    """The upstream budget: requests a second, requests at once, in flight and spare now."""

    model_config = ConfigDict(extra="forbid")

    rate: float
    concurrency: int
    in_flight: int
    tokens: float


class UpstreamDriftObservation(BaseModel):
    """One way the upstream's answers differed from what the connector expects."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="`unknown`, `missing`, `retyped` or `invalid`.")
    path: str = Field(description="The field, as a JSON path into the upstream's answer.")
    expected: str | None
    actual: str | None
    breaking: bool
    count: int
    first_seen: Timestamp
    last_seen: Timestamp


class UpstreamEndpointDrift(BaseModel):
    """One upstream endpoint's answers checked against their wire model."""

    model_config = ConfigDict(extra="forbid")

    checks: int
    breaking: int
    last_checked: Timestamp | None
    unknown: int
    missing: int
    retyped: int
    invalid: int
    overflow: int
    observations: list[UpstreamDriftObservation]


class UpstreamDrift(BaseModel):
    """Whether any endpoint drifted, and each endpoint's report."""

    model_config = ConfigDict(extra="forbid")

    drifted: bool
    endpoints: dict[str, UpstreamEndpointDrift]


class UpstreamBroker(BaseModel):
    """One upstream surface's session (never its secret)."""

    model_config = ConfigDict(extra="forbid")

    has_credential: bool
    expires_at: Timestamp | None
    renewals: int
    last_error: str | None
    sent: int = Field(description="Requests sent on this surface.")


class UpstreamHealth(BaseModel):
    """The caller's tenant's upstream: the throttle's budget, the drift report, the upstream
    fields the mappings did not carry (per endpoint, with counts) and each surface's session
    state (never a secret). ``connected`` is false until the first call, and the rest null."""

    model_config = _examples(
        {
            "tenant": "ten_maple",
            "connected": True,
            "throttle": {"rate": 200.0, "concurrency": 8, "in_flight": 0, "tokens": 184.0},
            "drift": {"drifted": False, "endpoints": {}},
            "dropped": {"GET /v2/patients/{id}": {"patient.photo": 3}},
            "brokers": {
                "v2": {
                    "has_credential": True,
                    "expires_at": "2026-11-24T16:00:00Z",
                    "renewals": 0,
                    "last_error": None,
                    "sent": 12,
                }
            },
        }
    )

    tenant: str
    connected: bool
    throttle: UpstreamThrottle | None = None
    drift: UpstreamDrift | None = None
    dropped: dict[str, dict[str, int]] | None = None
    brokers: dict[str, UpstreamBroker] | None = None


class Tenant(BaseModel):
    """A tenant as onboarded: the names of its sealed secrets, never their values."""

    model_config = _examples(
        {
            "id": "ten_maple",
            "name": "Maple Family Practice",
            "upstream": "carecloud",
            "sealed_secrets": ["portal.password", "v2.client_secret"],
        }
    )

    id: str
    name: str
    upstream: str
    sealed_secrets: list[str]
