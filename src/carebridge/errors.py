"""The carebridge exception tree.

::

    CarebridgeError                       failure_type  retryable
    ├── ConfigError                       config        no     bad settings or credentials
    ├── UpstreamError                                          carries request_id and endpoint, never PHI
    │   ├── TransportError                transient     yes    connect, read or pool timeout
    │   ├── AuthError                     config        no
    │   │   ├── MfaRequired               -             no     carries the challenge; the caller resumes
    │   │   ├── AccountLocked             config        no     the upstream locked the account; locked_until
    │   │   ├── MfaLockoutRisk            config        no     sign-ins stopped short of a lockout; alert
    │   │   └── SessionExpired            transient     yes    refresh once, then replay
    │   ├── RateLimited                   transient     yes    retry_after
    │   ├── UpstreamStatusError           upstream      by status
    │   └── UnexpectedPayload             upstream      no     field path; schema drift
    ├── DomainError
    │   └── InvalidTransition
    ├── CodecError
    │   ├── ParseError                                         segment, position
    │   └── EncodeError
    ├── StoreError
    ├── SyncError
    └── WebhookError

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


class DomainError(CarebridgeError):
    """A domain rule was broken. ``status`` is the HTTP status an API answers it with: 422 for
    a request the rules refuse, 409 for one that conflicts with the record's current state."""

    failure_type: ClassVar[FailureType] = "domain"
    status: ClassVar[int] = 422


class InvalidTransition(DomainError):
    """A lifecycle transition that the state machine does not allow."""

    status = 409


class CodecError(CarebridgeError):
    """A document could not be decoded or encoded."""

    failure_type: ClassVar[FailureType] = "domain"


class ParseError(CodecError):
    """Input text could not be parsed."""


class EncodeError(CodecError):
    """A model could not be encoded."""


class StoreError(CarebridgeError):
    """The store failed."""


class SyncError(CarebridgeError):
    """A sync could not proceed."""


class WebhookError(CarebridgeError):
    """A webhook could not be signed, verified or delivered."""
