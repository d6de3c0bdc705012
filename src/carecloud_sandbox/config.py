"""Settings of one emulated tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes an emulated tenant; the same config and seed give the same tenant.

    Attributes:
        seed: seed of every random choice the generator makes.
        patients: patients across all practices.
        practices: practices (business entities) in the tenant.
        anchor: the generator's "today"; defaults to the clock's date at start.
        appointments_per_patient: mean appointments per patient, past and future.
        access_token_ttl: seconds an OAuth access token lives.
        refresh_token_ttl: seconds a refresh token lives.
        rotate_refresh_tokens: when true, each refresh grant returns a new refresh token and
            revokes the one presented.
        auth_code_ttl: seconds an authorization code stays redeemable.
        rate_limit_rps: hidden per-client rate limit in requests per second (0 = off).
        rate_limit_burst: bucket size of the hidden limit.
        max_body_bytes: bodies above this get 413.
        base_url: the public base URL, used in Link headers and the credentials document.
        portal_idle_timeout: seconds a portal session survives without a request.
        portal_absolute_timeout: seconds a portal session lives at most.
        portal_max_sessions: concurrent portal sessions per user; a new login evicts the oldest.
        portal_lockout_threshold: consecutive failed logins (password or MFA) that lock a user.
        portal_lockout_seconds: how long a lockout lasts.
        portal_device_ttl: seconds a remembered-device token skips MFA.
        mfa_code_ttl: seconds an SMS or e-mail code stays valid.
        smart_token_ttl: seconds a Connector (SMART backend services) access token lives.
        bulk_export_seconds: tenant-clock seconds a bulk export takes before its manifest is ready.
    """

    seed: int = 42
    patients: int = 2000
    practices: int = 2
    anchor: date | None = None
    appointments_per_patient: float = 10.0
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 90 * 24 * 3600
    rotate_refresh_tokens: bool = False
    auth_code_ttl: int = 600
    rate_limit_rps: float = 0.0
    rate_limit_burst: int = 20
    max_body_bytes: int = 1_048_576
    base_url: str = "http://127.0.0.1:8700"
    portal_idle_timeout: int = 15 * 60
    portal_absolute_timeout: int = 12 * 3600
    portal_max_sessions: int = 3
    portal_lockout_threshold: int = 5
    portal_lockout_seconds: int = 15 * 60
    portal_device_ttl: int = 30 * 24 * 3600
    mfa_code_ttl: int = 300
    smart_token_ttl: int = 300
    bulk_export_seconds: int = 10
    extra: dict[str, str] = field(default_factory=dict)
