"""The portal's error bodies, kept for the writes: ``SurfaceClient`` raises typed errors without
the body, so a response hook keeps the portal's error envelope (the scrubber's field list,
``encounter_locked``) per task, and :func:`_portal_failure` turns it into a typed error.
"""

from __future__ import annotations

from contextvars import ContextVar

import httpx

from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.errors import (
    AuthError,
    ClaimRejected,
    EncounterLocked,
    InvalidTransition,
    UpstreamStatusError,
)

# ``SurfaceClient`` raises typed errors without the body; the portal's error envelope (the
# scrubber's field list, ``encounter_locked``) is kept here by a response hook, per task.
_portal_error: ContextVar[pw.ErrorPayload | None] = ContextVar("portal_error", default=None)


async def _keep_error(response: httpx.Response) -> None:
    if response.status_code not in (409, 422, 423) or "/portal/" not in response.url.path:
        return
    await response.aread()
    try:
        envelope = pw.ErrorEnvelope.model_validate(response.json())
    except ValueError:
        return
    _portal_error.set(envelope.error)


def _capture_errors(http: httpx.AsyncClient) -> None:
    hooks = http.event_hooks.get("response", [])
    if _keep_error not in hooks:
        http.event_hooks = {**http.event_hooks, "response": [*hooks, _keep_error]}


def _portal_failure(err: UpstreamStatusError | AuthError, what: str) -> Exception:
    """The typed error of a refused portal write (the body kept by the hook)."""
    error = _portal_error.get()
    code = error.code if error is not None else str(err)
    if "encounter_locked" in code:
        return EncounterLocked(f"{what}: the encounter is signed")
    if "invalid_transition" in code:
        return InvalidTransition(f"{what}: not allowed in the record's state")
    if error is not None and error.code == "validation_failed":
        fields = tuple(e.field for e in error.errors or ()) or (
            (error.field,) if error.field else ()
        )
        return ClaimRejected(f"{what}: refused ({', '.join(fields)})", fields=fields)
    return err
