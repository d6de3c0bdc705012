"""The carebridge exception tree: every error carebridge raises on purpose, in every layer.

Each class lives here; the module that raises it re-exports it under its old name. ``status`` is
the HTTP status the API answers with (the API maps the tree, nothing else does); ``failure_type``
and ``retryable`` are what jobs, the sync and the health report read.

::

    CarebridgeError                       failure_type  retryable  status
    ├── ConfigError                       config        no         503   bad settings or credentials
    │   └── NotConfigured                 config        no         503   no upstream connection, ...
    ├── Unauthorized                      internal      no         401   no usable credential
    │   └── Locked                        internal      no         423   sign-in locked; retry_after
    ├── Forbidden                         internal      no         403   scope missing
    ├── NotFound                          internal      no         404   absent, or another tenant's
    ├── BadRequest                        internal      no         400   field names the culprit
    ├── TooManyRequests                   internal      no         429   the caller's own limit
    ├── KeyReused                         internal      no         422   Idempotency-Key, other body
    ├── KeyInFlight                       internal      no         409   Idempotency-Key still running
    ├── UpstreamError                                              502   request_id and endpoint
    │   ├── TransportError                transient     yes        504   connect, read or pool timeout
    │   ├── WriteUnconfirmed              upstream      no         502   sent, effect unknown
    │   ├── AuthError                     config        no         502
    │   │   ├── MfaRequired               config        no               carries the challenge
    │   │   ├── AccountLocked             config        no               locked_until
    │   │   ├── MfaLockoutRisk            config        no               stopped short of a lockout
    │   │   ├── SignInRefused             config        no               portal code; counted or not
    │   │   └── SessionExpired            transient     yes              refresh once, then replay
    │   ├── RateLimited                   transient     yes        503   retry_after
    │   ├── UpstreamStatusError           upstream      by status        the upstream's status
    │   └── UnexpectedPayload             upstream      no               field path; schema drift
    │       └── UnresolvedReference       upstream      no               a FHIR reference not indexed
    ├── DomainError                       domain        no         422   a rule refuses the request
    │   ├── InvalidTransition             domain        no         409   lifecycle state machine
    │   ├── SlotTaken                     domain        no         409   availability or upstream 409
    │   ├── ClaimRejected                 domain        no         422   scrubber objections
    │   ├── EncounterLocked               domain        no         409   signed: use an addendum
    │   ├── UnknownId                     domain        no         422   id the upstream lacks
    │   ├── InvalidMfaStep                domain        no         422   method not enrolled
    │   ├── InvalidScopes                 domain        no         422   also a ValueError
    │   ├── UrlRefused                    domain        no         422   webhook URL policy
    │   ├── RefusedReplay                 domain        no         first  a refusal, replayed
    │   ├── ConfirmationRefused           domain        no         409   an agent's write token:
    │   │                                                                 used, expired, other args
    │   └── AgentLimitExceeded            domain        no         429   an agent's calls or patients
    ├── StoreError                        internal      no         500
    │   ├── BadCursor                                              400   a cursor we did not issue
    │   ├── TenantExists                                           409   the id is onboarded already
    │   ├── UnknownTenant                                          404   no tenant has that id
    │   ├── UserExists, InvalidUser                                      caught by their commands
    │   ├── VaultError                                                   wrong key or tampered bytes
    │   └── ExportError                                                  bad target or source
    ├── SyncError                         internal      no
    │   ├── UnknownStream                                                a stream the engine lacks
    │   └── LeaseLost                                                    another sync took the stream
    └── WebhookError                      internal      no
        └── PolicyRefused                 (events.webhooks: also httpcore.ConnectError, so the
                                           HTTP client treats a refused address as unreachable)

Two classes hang from the tree at the edge, because a framework must recognise them too:
``api.middleware.BodyTooLarge`` (a Starlette ``HTTPException`` and a ``CarebridgeError``, 413) and
``events.webhooks.PolicyRefused`` (above). The connector's retry loop signals "one more attempt"
with the private ``_Again``, a ``CarebridgeError`` that never leaves it.

Messages carry ids and codes, never names, dates of birth or member numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

FailureType = Literal["config", "transient", "upstream", "domain", "internal"]


class CarebridgeError(Exception):
    """The root of every error carebridge raises on purpose."""

    failure_type: ClassVar[FailureType] = "internal"
    retryable: ClassVar[bool] = False


class ConfigError(CarebridgeError):
    """Settings or credentials are missing or invalid."""

    failure_type: ClassVar[FailureType] = "config"


class NotConfigured(ConfigError):
    """The deployment lacks what the request needs, e.g. an upstream connection (503)."""


class Unauthorized(CarebridgeError):
    """No usable credential (401)."""


class Locked(Unauthorized):
    """Too many failed sign-ins: the user is locked out for ``retry_after`` seconds (423)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(CarebridgeError):
    """The credential lacks the scope the route needs (403)."""


class NotFound(CarebridgeError):
    """No such record for this tenant (404: another tenant's ids look absent, never forbidden)."""


class BadRequest(CarebridgeError):
    """The request cannot be served as asked (400); ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TooManyRequests(CarebridgeError):
    """The caller's own rate limit (per API key) is spent (429); ``retry_after`` in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeyReused(CarebridgeError):
    """The ``Idempotency-Key`` was used with another request (422)."""


class KeyInFlight(CarebridgeError):
    """The first request with this ``Idempotency-Key`` is still running (409)."""


class UpstreamError(CarebridgeError):
    """A call to the upstream failed."""

    failure_type: ClassVar[FailureType] = "upstream"

    def __init__(self, message: str, *, endpoint: str | None = None, request_id: str | None = None):
        super().__init__(message)
        self.endpoint = endpoint
        self.request_id = request_id


class TransportError(UpstreamError):
    """The connection failed or timed out."""

    failure_type: ClassVar[FailureType] = "transient"
    retryable = True


class WriteUnconfirmed(UpstreamError):
    """A write was sent but its effect is unknown (timeout, dropped connection, 5xx): read back
    before retrying."""

    retryable = False


class AuthError(UpstreamError):
    """The upstream refused the credentials."""

    failure_type: ClassVar[FailureType] = "config"


class MfaRequired(AuthError):
    """A second factor is needed and no code source could answer."""

    def __init__(self, message: str, *, challenge: str, methods: tuple[str, ...] = ()):
        super().__init__(message)
        self.challenge = challenge
        self.methods = methods


class AccountLocked(AuthError):
    """The upstream locked the account after failed sign-ins; no attempt before ``locked_until``."""

    def __init__(self, message: str, *, locked_until: datetime, endpoint: str | None = None):
        super().__init__(message, endpoint=endpoint)
        self.locked_until = locked_until


class MfaLockoutRisk(AuthError):
    """Sign-ins of an upstream account failed ``failures`` times in a row, so the connector
    stopped before the upstream locks the account (and the practice's staff with it). An operator
    must check the account's password and MFA seed, then reset its sign-in state."""

    def __init__(self, message: str, *, failures: int, endpoint: str | None = None):
        super().__init__(message, endpoint=endpoint)
        self.failures = failures


class SignInRefused(AuthError):
    """The portal refused a sign-in step; ``counted`` when the upstream counts it toward the
    account's lockout (a wrong password or code: every 401 of the password and code steps)."""

    def __init__(self, message: str, *, code: str, counted: bool, endpoint: str):
        super().__init__(message, endpoint=endpoint)
        self.code = code
        self.counted = counted


class SessionExpired(AuthError):
    """The session or token expired; refresh once, then replay."""

    failure_type: ClassVar[FailureType] = "transient"
    retryable = True


class RateLimited(UpstreamError):
    """The upstream answered 429."""

    failure_type: ClassVar[FailureType] = "transient"
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, endpoint: str | None = None
    ):
        super().__init__(message, endpoint=endpoint)
        self.retry_after = retry_after


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an error status."""

    def __init__(self, message: str, *, status: int, endpoint: str | None = None):
        super().__init__(message, endpoint=endpoint)
        self.status = status


class UnexpectedPayload(UpstreamError):
    """The upstream's payload broke the wire model (breaking drift)."""

    def __init__(self, message: str, *, field_path: str, endpoint: str | None = None):
        super().__init__(message, endpoint=endpoint)
        self.field_path = field_path


class UnresolvedReference(UnexpectedPayload):
    """A reference, or a value the Connector does not carry, that the injected indexes lack."""


class DomainError(CarebridgeError):
    """A domain rule was broken. ``status`` is the HTTP status an API answers it with: 422 for
    a request the rules refuse, 409 for one that conflicts with the record's current state."""

    failure_type: ClassVar[FailureType] = "domain"
    status: ClassVar[int] = 422


class InvalidTransition(DomainError):
    """A lifecycle transition that the state machine does not allow."""

    status = 409


class SlotTaken(DomainError):
    """The requested slot is not free (availability, or the upstream's 409)."""

    status = 409

    def __init__(self, message: str, *, resource: int, start: datetime) -> None:
        super().__init__(message)
        self.resource = resource
        self.start = start


class ClaimRejected(DomainError):
    """The claim scrubber refused the claim (422); ``fields`` names every objection."""

    def __init__(self, message: str, *, fields: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fields = fields


class EncounterLocked(DomainError):
    """The encounter is signed: edit it with an addendum (portal 423 ``encounter_locked``)."""

    status = 409


class UnknownId(DomainError):
    """A carebridge id in a command that the upstream does not know (422)."""


class InvalidMfaStep(DomainError):
    """A second-factor step that cannot apply: a method not enrolled, or none chosen (422)."""


class InvalidScopes(DomainError, ValueError):
    """Scopes outside the vocabulary; ``unknown`` lists them."""

    def __init__(self, unknown: list[str]) -> None:
        super().__init__("unknown scopes: " + ", ".join(unknown))
        self.unknown = unknown


class UrlRefused(DomainError):
    """A webhook URL, or an address its host resolves to, that deliveries may not go to. The
    message says why; it never repeats the URL."""


class RefusedReplay(DomainError):
    """A write refused earlier (a :class:`DomainError`: a taken slot, a scrubber rejection),
    asked again under the same ``Idempotency-Key``: the refusal is answered again as it was
    first answered. ``code`` is the first error's class name, ``answered`` its ``status``,
    ``fields`` the fields it named."""

    replayed: ClassVar[bool] = True

    def __init__(
        self, message: str, *, code: str, answered: int, fields: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.answered = answered
        self.fields = fields


class ConfirmationRefused(DomainError):
    """A write's confirmation token (the MCP server's two-phase writes) cannot be used: it was
    used already, has expired, was issued for other arguments, another caller or tool, or
    waits for a person's approval (409)."""

    status = 409


class AgentLimitExceeded(DomainError):
    """An agent's per-principal limit (tool calls per minute, patients read per call or per
    hour) refuses the call (429); ``retry_after`` is in seconds (None: narrow the call)."""

    status = 429

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(CarebridgeError):
    """The store failed."""


class BadCursor(StoreError):
    """A pagination cursor this store did not issue."""


class TenantExists(StoreError):
    """A tenant with that id is already onboarded."""


class UnknownTenant(StoreError):
    """No tenant has that id."""


class UserExists(StoreError):
    """The tenant already has a user with that username."""


class InvalidUser(StoreError):
    """A user cannot be added as given (an unknown MFA method, or one without its contact)."""


class VaultError(StoreError):
    """A sealed secret does not open: wrong key, wrong tenant or slot, or tampered bytes."""


class ExportError(StoreError):
    """The target is not one the export can write to, or the source cannot be read."""


class SyncError(CarebridgeError):
    """A sync could not proceed."""


class UnknownStream(SyncError):
    """A stream name the engine does not know."""


class LeaseLost(SyncError):
    """The sync's lease lapsed and another sync took the stream over; the page was not saved."""


class WebhookError(CarebridgeError):
    """A webhook could not be signed, verified or delivered."""
