"""Webhook subscriptions: create, list, read, delete, rotate the signing secret, read the
delivery log, replay from a seq.

::

    POST   /webhooks                          {"url", "event_types"} -> 201, the secret shown once
    GET    /webhooks                          the tenant's subscriptions (never their secrets)
    GET    /webhooks/{id}
    DELETE /webhooks/{id}                     204; its deliveries and secrets go with it
    POST   /webhooks/{id}/rotate_secret       a new secret, shown once; the old one stays valid
                                              for ``overlap_hours`` (default 24)
    GET    /webhooks/{id}/deliveries          the delivery log, newest first
    POST   /webhooks/{id}/replay?from_seq=N   202; queues the events from seq N again

Scopes ``webhook.read`` and ``webhook.write``. Another tenant's subscription is a 404. Bodies are
strict (unknown fields are a 422) and problems never repeat the URL given.

Where a subscription may point (SSRF): public ``https`` hosts only, unless the deployment's
development allow-list (``CAREBRIDGE_WEBHOOK_ALLOW``) lists the host; a host that is, or
resolves to, a loopback, private, link-local, shared, metadata or reserved address is a 422
(``domain.urls``). Each delivery checks again where it connects.

What it may hear: only the event types the creating key's scopes may read (a 403 names the
scope a type needs); no types, or ``*``, means every type the key may read and is stored as
that. Deliveries carry events filtered by those scopes, like ``GET /events``
(``domain.event_scopes``).

The use cases are :class:`carebridge.services.webhooks.Webhooks`; the routes parse, call one,
and render.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from carebridge.api.routes.common import Caller, Order, envelope, instant, paged
from carebridge.contract.resources import Delivery, Replay, SecretRotated, Webhook, WebhookCreated
from carebridge.domain.events import EVENT_TYPES
from carebridge.errors import BadCursor
from carebridge.services.webhooks import DeliveryRecord, Subscription, Webhooks

KINDS = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)
MAX_LIMIT = 500
NO_STORE = {"Cache-Control": "no-store"}


class NewWebhook(BaseModel):
    """A subscription: where to POST, and which event types (``kind.*`` allowed; none = all)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/carebridge",
                    "event_types": ["appointment.*", "claim.paid"],
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2000)
    event_types: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            raise ValueError("url must be an absolute http or https URL") from None
        if parts.scheme not in ("http", "https") or not host or parts.fragment:
            raise ValueError("url must be an absolute http or https URL, without a fragment")
        if any(c.isspace() for c in value):
            raise ValueError("url must not contain whitespace")
        return value

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if not _known(t)]
        if unknown:
            raise ValueError("unknown event types: " + ", ".join(sorted(set(unknown))[:10]))
        return sorted(set(value))


DeliveryOrder = Annotated[
    Literal["-created_at"],
    Query(description="Newest first (the one order the delivery log offers)."),
]


def _known(event_type: str) -> bool:
    if event_type in EVENT_TYPES or event_type == "*":
        return True
    kind, _, rest = event_type.partition(".")
    return rest == "*" and kind in KINDS


def _instant(at: datetime | None) -> str | None:
    return instant(at)


def _subscription(hook: Subscription) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "event_types": list(hook.event_types),
        "scopes": sorted(hook.scopes),
        "state": hook.state,
        "consecutive_failures": hook.consecutive_failures,
        "previous_secret_expires_at": _instant(hook.previous_secret_expires_at),
        "created_at": instant(hook.created_at),
        "disabled_at": _instant(hook.disabled_at),
    }


def _delivery(line: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": f"dlv_{line.id}",
        "seq": line.seq,
        "message_id": line.message_id,
        "type": line.type,
        "entity": line.entity_key,
        "state": line.state,
        "attempts": line.attempts,
        "last_status": line.last_status,
        "last_error": line.last_error,
        "next_attempt_at": _instant(line.next_attempt_at),
        "created_at": instant(line.created_at),
        "delivered_at": _instant(line.delivered_at),
    }


def router(service: Webhooks) -> APIRouter:
    """The ``/webhooks`` routes over the subscription use cases."""
    api = APIRouter(tags=["webhooks"])
    hooks = service

    @api.post(
        "/webhooks",
        status_code=201,
        summary="Subscribe a URL to change events",
        response_model=WebhookCreated,
    )
    async def create_webhook(principal: Caller, body: NewWebhook) -> JSONResponse:
        """The answer carries the signing ``secret`` (``whsec_...``) once: store it. Deliveries
        are signed with Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
        ``webhook-signature``)."""
        made = await hooks.create(principal, body.url, body.event_types)
        body_out = _subscription(made.subscription) | {"secret": made.secret}
        headers = NO_STORE | {"Location": f"/webhooks/{made.subscription.id}"}
        return JSONResponse(body_out, 201, headers=headers)

    @api.get(
        "/webhooks",
        summary="List webhook subscriptions",
        **paged(Webhook, "whk_ffac050c2651fd1a80756b9c8fddbd2a"),
    )
    async def list_webhooks(
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Per page.")] = 100,
        cursor: Annotated[
            str | None, Query(max_length=64, description="The `next_cursor` of the last page.")
        ] = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
    ) -> dict[str, Any]:
        """The tenant's subscriptions in id order (never their secrets)."""
        if cursor is not None and not cursor.startswith("whk_"):
            raise BadCursor("the cursor is not one this API issued")
        hooks_sorted = sorted(await hooks.subscriptions(principal), key=lambda h: h.id)
        after = [h for h in hooks_sorted if cursor is None or h.id > cursor]
        page = after[:limit]
        more = len(after) > limit
        return envelope([_subscription(h) for h in page], page[-1].id if more else None)

    @api.get("/webhooks/{webhook_id}", summary="Get a webhook subscription", response_model=Webhook)
    async def get_webhook(principal: Caller, webhook_id: str) -> dict[str, Any]:
        """One subscription of the tenant: its URL, event types and state (never its
        secret); another tenant's id is a 404."""
        return _subscription(await hooks.get(principal, webhook_id))

    @api.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook subscription")
    async def delete_webhook(principal: Caller, webhook_id: str) -> Response:
        """Removes the subscription, its pending deliveries and its secrets."""
        await hooks.delete(principal, webhook_id)
        return Response(status_code=204)

    @api.post(
        "/webhooks/{webhook_id}/rotate_secret",
        summary="Rotate the signing secret",
        response_model=SecretRotated,
    )
    async def rotate_secret(
        principal: Caller,
        webhook_id: str,
        overlap_hours: Annotated[
            float,
            Query(ge=0, le=168, description="How long the old secret stays valid (hours)."),
        ] = 24,
    ) -> JSONResponse:
        """The new secret is shown once. Until ``previous_secret_expires_at`` every delivery
        carries two signatures, so a receiver holding either secret verifies."""
        done = await hooks.rotate(principal, webhook_id, timedelta(hours=overlap_hours))
        return JSONResponse(
            {
                "id": done.webhook_id,
                "secret": done.secret,
                "previous_secret_expires_at": instant(done.previous_secret_expires_at),
            },
            headers=NO_STORE,
        )

    @api.get(
        "/webhooks/{webhook_id}/deliveries",
        summary="Read a subscription's delivery log",
        **paged(Delivery, "dlv_12"),
    )
    async def list_deliveries(
        principal: Caller,
        webhook_id: str,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        cursor: Annotated[str | None, Query(max_length=20)] = None,
        order: DeliveryOrder = "-created_at",  # noqa: ARG001 - the one order offered
    ) -> dict[str, Any]:
        """Newest first: each delivery's seq, message id, event type, state (pending,
        delivered, dead), attempts, last status and error, and next attempt."""
        given = None if cursor is None else cursor.removeprefix("dlv_")  # old cursors were bare
        page = await hooks.deliveries(principal, webhook_id, limit=limit, cursor=given)
        return envelope([_delivery(line) for line in page.lines], page.next_cursor)

    @api.post(
        "/webhooks/{webhook_id}/replay",
        status_code=202,
        summary="Send events again from a seq",
        response_model=Replay,
    )
    async def replay(
        principal: Caller,
        webhook_id: str,
        from_seq: Annotated[int, Query(ge=1, description="The first seq to send again.")],
    ) -> dict[str, Any]:
        """Queues every event from ``from_seq`` on that the subscription takes, with the same
        ``webhook-id`` as before: receivers that deduplicate on it see each event once."""
        queued = await hooks.replay(principal, webhook_id, from_seq)
        return {"id": webhook_id, "from_seq": from_seq, "queued": queued}

    return api
