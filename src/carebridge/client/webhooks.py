"""Verifying carebridge's webhook deliveries (Standard Webhooks).

Each delivery is a POST whose JSON body is ``{"id", "type", "timestamp", "data"}`` (``data`` is
the event as ``GET /events`` answers it), with the headers ``webhook-id`` (stable across retries
and replays: deduplicate on it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; during a secret rotation, two signatures
separated by a space). :func:`verify` checks a request against one or more ``whsec_...``
secrets and a tolerance window, then returns the typed message.

Verify the raw body bytes as received, before any JSON parsing: re-encoding changes them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from standardwebhooks.webhooks import Webhook

from carebridge.client._errors import WebhookVerificationError
from carebridge.contract import Event

TOLERANCE = timedelta(minutes=5)
"""How far ``webhook-timestamp`` may be from now (the Standard Webhooks default)."""


class WebhookMessage(BaseModel):
    """One delivery's body: the message id, the event type, when the change was detected, and
    the event itself."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    type: str
    timestamp: str
    data: dict[str, Any]

    @property
    def event(self) -> Event:
        """``data`` as the contract's typed :class:`~carebridge.contract.Event`."""
        return Event.model_validate(self.data)


def _secrets(secret: str | Sequence[str]) -> list[Webhook]:
    given = [secret] if isinstance(secret, str) else list(secret)
    if not given:
        raise WebhookVerificationError("no signing secret given")
    try:
        return [Webhook(s) for s in given]
    except (ValueError, binascii.Error) as exc:
        raise WebhookVerificationError("a signing secret is not a whsec_ secret") from exc


def _signatures(header: str) -> list[bytes]:
    found: list[bytes] = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (ValueError, binascii.Error):
            continue
    return found


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    now: datetime | None = None,
    tolerance: timedelta = TOLERANCE,
) -> WebhookMessage:
    """The delivery's message, once its signature and timestamp check out.

    Args:
        body: the request body exactly as received.
        headers: the request headers (any case).
        secret: the subscription's ``whsec_...`` secret, or several (old and new while a
            rotation overlaps): one matching signature is enough.
        now: the time to check the timestamp against (default: now, UTC).
        tolerance: how far the timestamp may be from ``now``.

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is outside the window,
            no signature matches, or the body is not a carebridge webhook message.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    header = lowered.get("webhook-signature", "")
    if not (message_id and stamp and header):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not Unix seconds")
    at = datetime.fromtimestamp(int(stamp), UTC)
    current = now or datetime.now(UTC)
    if abs(current - at) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance window")
    text = body if isinstance(body, str) else body.decode("utf-8", errors="replace")
    given = _signatures(header)
    for webhook in _secrets(secret):
        expected = base64.b64decode(webhook.sign(message_id, at, text).split(",", 1)[1])
        if any(hmac.compare_digest(expected, candidate) for candidate in given):
            break
    else:
        raise WebhookVerificationError("no signature matches the secret")
    try:
        message = WebhookMessage.model_validate_json(text)
    except ValidationError as exc:
        raise WebhookVerificationError("the body is not a carebridge webhook message") from exc
    if message.id != message_id:
        raise WebhookVerificationError("the body's id is not the webhook-id header")
    return message
