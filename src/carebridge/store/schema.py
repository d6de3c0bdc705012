"""The store's tables, in SQLAlchemy Core. Alembic migrations (``store/migrations``) create them.

Every table but ``tenants`` carries ``tenant_id`` first in its key or in an index, and every
query of the store filters by it. Instants are timezone-aware; JSON is portable JSON (SQLite's
TEXT, PostgreSQL's JSONB through ``JSON().with_variant``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

Json = JSON().with_variant(JSONB(), "postgresql")
Instant = DateTime(timezone=True)
# SQLite's INTEGER PRIMARY KEY autoincrements only as INTEGER; PostgreSQL gets a BIGINT.
Serial = BigInteger().with_variant(Integer(), "sqlite")


def _tenant() -> Column[str]:
    return Column(
        "tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),  # ten_...
    Column("name", String(200), nullable=False),
    Column("upstream", String(32), nullable=False),  # carecloud
    Column("settings", Json, nullable=False),  # base URLs, practice, surfaces enabled
    Column("created_at", Instant, nullable=False),
    Column("disabled_at", Instant),
)

vault_secrets = Table(
    "vault_secrets",
    metadata,
    _tenant(),
    Column("name", String(100), nullable=False),  # v2.refresh_token, portal.password ...
    Column("sealed", Text, nullable=False),  # vault.Sealed.to_text()
    Column("kid", String(64), nullable=False),  # the KEK that wraps it (rotation progress)
    Column("updated_at", Instant, nullable=False),
    Index("ix_vault_secrets_kid", "kid"),
    PrimaryKeyConstraint("tenant_id", "name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),  # key_...
    _tenant(),
    Column("prefix", String(32), nullable=False, unique=True),  # shown, and the lookup key
    Column("secret_hash", String(128), nullable=False),  # never the key itself
    Column("scopes", Json, nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", Instant, nullable=False),
    Column("last_used_at", Instant),
    Column("revoked_at", Instant),
    Index("ix_api_keys_tenant", "tenant_id"),
)

entities = Table(
    "entities",
    metadata,
    _tenant(),
    Column("kind", String(32), nullable=False),  # patient, appointment, claim ...
    Column("id", String(64), nullable=False),  # the carebridge id (pat_...)
    Column("data", Json, nullable=False),  # the domain record as JSON
    Column("patient_id", String(64)),  # filters: every per-patient entity
    Column("provider_id", String(64)),
    Column("location_id", String(64)),
    Column("status", String(32)),
    Column("name_key", String(200)),  # normalized "last, first" for name search
    Column("birth_date", String(10)),
    Column("starts_at", Instant),  # appointments, encounters: the date-range filter
    Column("upstream_updated_at", Instant),
    Column("fetched_at", Instant, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("ix_entities_kind_updated", "tenant_id", "kind", "upstream_updated_at"),
    Index("ix_entities_kind_patient", "tenant_id", "kind", "patient_id"),
    Index("ix_entities_kind_starts", "tenant_id", "kind", "starts_at"),
    Index("ix_entities_kind_name", "tenant_id", "kind", "name_key"),
    PrimaryKeyConstraint("tenant_id", "kind", "id"),
)

crosswalk = Table(
    "crosswalk",
    metadata,
    _tenant(),
    Column("surface", String(32), nullable=False),  # v2, chart_number, rcm_account, fhir ...
    Column("upstream_id", String(128), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Index("ix_crosswalk_entity", "tenant_id", "entity_id"),
    PrimaryKeyConstraint("tenant_id", "surface", "kind", "upstream_id"),
)

idempotency = Table(
    "idempotency",
    metadata,
    _tenant(),
    Column("principal", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # in_flight, done
    Column("status_code", Integer),
    Column("response", Json),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Index("ix_idempotency_expires", "expires_at"),
    PrimaryKeyConstraint("tenant_id", "principal", "key"),
)

write_ledger = Table(
    "write_ledger",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    _tenant(),
    Column("operation", String(64), nullable=False),  # create_appointment ...
    Column("entity_id", String(64)),
    Column("request", Json, nullable=False),
    Column("state", String(16), nullable=False),  # accepted, applied, confirmed, diverged
    Column("diverged", Json),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_write_ledger_tenant_created", "tenant_id", "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    _tenant(),
    Column("principal", String(64), nullable=False),
    Column("route", String(200), nullable=False),
    Column("patient_ids", Json, nullable=False),
    Column("at", Instant, nullable=False),
    # issue 11 (0006): HMAC-SHA256 under the tenant's vault key, over every field and ``at``
    # to the microsecond (hex); the head of the chain is checkpointed in audit_heads
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_tenant_at", "tenant_id", "at"),
)

# --- people who sign in (POST /authenticate) --------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),  # usr_...
    _tenant(),
    Column("username", String(200), nullable=False),
    Column("password_hash", String(255), nullable=False),  # scrypt, with its parameters
    Column("scopes", Json, nullable=False),
    Column("mfa_methods", Json, nullable=False),  # ["totp", "sms", "email"]; [] = none
    Column("email", String(320)),  # where e-mailed codes go
    Column("phone", String(32)),  # where texted codes go
    # issue 11 (0006): failed_attempts and locked_until moved to sign_in_attempts, which
    # counts unknown usernames alike; the last TOTP step used stops a code's replay
    Column("totp_last_step", BigInteger),
    Column("created_at", Instant, nullable=False),
    Column("disabled_at", Instant),
    UniqueConstraint("tenant_id", "username"),
)
"""A tenant's users. The TOTP seed is a vault secret named ``user.<id>.totp``."""

auth_challenges = Table(
    "auth_challenges",
    metadata,
    Column("id", String(64), primary_key=True),  # chl_...
    _tenant(),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("method", String(16)),  # chosen method; NULL until chosen
    Column("code_hash", String(64)),  # sms/email codes, hashed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("used_at", Instant),
)
"""An MFA challenge between the password step and the code step."""

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # ses_...
    _tenant(),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("token_hash", String(128), nullable=False),  # never the token itself
    Column("scopes", Json, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("revoked_at", Instant),
)
"""Session tokens issued by ``POST /authenticate``, bound to a tenant and the user's scopes."""

notifications = Table(
    "notifications",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    _tenant(),
    Column("channel", String(16), nullable=False),  # sms, email
    Column("destination", String(320), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Instant, nullable=False),
    Index("ix_notifications_tenant", "tenant_id", "id"),
)
"""Outgoing one-time codes; a delivery worker (or a developer, locally) reads them."""

freshness = Table(
    "freshness",
    metadata,
    _tenant(),
    Column("kind", String(32), nullable=False),  # patient, appointment ...
    Column("scope", String(200), nullable=False),  # "*" or "patient:<id>" or a window
    Column("refreshed_at", Instant, nullable=False),  # when the upstream was last read
    Column("cursor", Json),  # an incremental cursor, where the upstream has one
    PrimaryKeyConstraint("tenant_id", "kind", "scope"),
)
"""When each slice of the store was last read from the upstream (freshness and fetch-through)."""

# --- change events and webhooks (issue 6) ----------------------------------------------------

counters = Table(
    "counters",
    metadata,
    _tenant(),
    Column("name", String(32), nullable=False),  # event_seq
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "name"),
)
"""Per-tenant sequences; incrementing one row serializes a tenant's event writers."""

events = Table(
    "events",
    metadata,
    _tenant(),
    Column("seq", BigInteger, nullable=False),  # monotonic per tenant, from counters
    Column("type", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("patient_id", String(64)),
    Column("diff", Json, nullable=False),  # {field: [before, after]}
    Column("occurred_at", Instant, nullable=False),  # the upstream's updated_at, when known
    Column("detected_at", Instant, nullable=False),
    # issue 11 (migration 0005): the event's deterministic identity and webhook-id, derived from
    # its type, entity and the version it describes; a re-announcement cannot add a second event
    Column("message_id", String(96), nullable=False),
    PrimaryKeyConstraint("tenant_id", "seq"),
    Index("ix_events_tenant_type", "tenant_id", "type", "seq"),
    UniqueConstraint("tenant_id", "message_id"),
)
"""The ordered change log of each tenant; ``GET /events?after=<seq>`` replays it."""

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(64), primary_key=True),  # whk_...
    _tenant(),
    Column("url", String(2000), nullable=False),
    Column("event_types", Json, nullable=False),  # [] = every type
    Column("state", String(16), nullable=False),  # enabled, disabled
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("previous_secret_expires_at", Instant),  # rotation overlap window
    Column("created_at", Instant, nullable=False),
    Column("disabled_at", Instant),
    Index("ix_webhooks_tenant", "tenant_id"),
)
"""Subscriptions. Signing secrets are vault secrets ``webhook.<id>.current`` / ``.previous``."""

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    _tenant(),
    Column("webhook_id", String(64), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the event
    Column("message_id", String(96), nullable=False),  # webhook-id: stable across retries
    Column("entity_key", String(100), nullable=False),  # kind:id, the ordering key
    Column("state", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Instant, nullable=False),
    Column("last_status", Integer),
    Column("last_error", String(200)),
    Column("created_at", Instant, nullable=False),
    Column("delivered_at", Instant),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    Index("ix_deliveries_order", "webhook_id", "entity_key", "seq"),
)
"""The delivery outbox, written in the transaction that appends the event."""

# --- issue 11: the upstream accounts' MFA state (migration 0004) ------------------------------

upstream_mfa = Table(
    "upstream_mfa",
    metadata,
    Column("account", String(64), primary_key=True),  # sha256 of the upstream URL and username
    Column("last_step", BigInteger, nullable=False),  # newest TOTP step any process sent
    Column("failures", Integer, nullable=False),  # consecutive refused sign-ins
    Column("locked_until", Instant),  # a lockout the upstream announced
)
"""One row per upstream account, shared by every process that signs in to it. Keyed by the
account, not the tenant: two tenants configured with one upstream user share its steps and its
lockout."""

# --- issue 11: sync leases and event identity (migration 0005) --------------------------------

sync_leases = Table(
    "sync_leases",
    metadata,
    _tenant(),
    Column("stream", String(32), nullable=False),
    Column("holder", String(128), nullable=False),  # one sync attempt: run:<token>, job:<id>:<n>
    Column("acquired_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),  # renewed as it works; a killed holder's lapses
    PrimaryKeyConstraint("tenant_id", "stream"),
)
"""One sync per tenant and stream across processes: the stream's lease and who holds it."""

sync_marks = Table(
    "sync_marks",
    metadata,
    _tenant(),
    Column("stream", String(32), nullable=False),  # a per-patient stream: encounters
    Column("parent_id", String(64), nullable=False),  # the patient whose records were read
    Column("high_water", Instant, nullable=False),  # its next read starts here, less the lag
    PrimaryKeyConstraint("tenant_id", "stream", "parent_id"),
)
"""A per-patient stream's cursor, one per patient: it moves only past what was read and stored,
so a patient the stream has not read yet is read in full."""

# --- issue 11: sign-in attempts and the keyed audit chain (migration 0006) --------------------

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    # no foreign key: an unknown tenant is counted like an unknown username, so neither shows
    Column("tenant_id", String(64), nullable=False),
    Column("username_key", String(64), nullable=False),  # SHA-256 of the username, hex
    Column("failures", Integer, nullable=False),  # reserved before the password is checked
    Column("locked_until", Instant),
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("tenant_id", "username_key"),
)
"""Failed sign-ins per (tenant, username), whether or not the user exists; a success deletes
the row."""

audit_heads = Table(
    "audit_heads",
    metadata,
    _tenant(),
    Column("last_seq", BigInteger, nullable=False),  # 0 before the first entry
    Column("entries", BigInteger, nullable=False),
    Column("head", String(64), nullable=False),  # the last entry's MAC
    Column("mac", String(64), nullable=False),  # HMAC of this checkpoint under the audit key
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)
"""The head of each tenant's audit chain, written with every append: removing the newest
entries no longer goes unnoticed, and appenders in any process lock this row to extend it."""

# --- issue 11: webhook subscriptions keep their key's scopes (migration 0007) -----------------

webhooks.append_column(Column("scopes", Json))
"""The creating key's scopes (null before 0007: none); deliveries are filtered by them."""

# --- issue 13: generations and the audit log's index (migration 0008) --------------------------

Index("ix_audit_log_tenant_seq", audit_log.c.tenant_id, audit_log.c.seq)
"""A tenant's audit entries in chain order (the verifier's walk, the replay cursor)."""

GENERATION_KEYS = "api_keys"
"""The ``counters`` row (per tenant) that migration 0008's triggers bump whenever one of the
tenant's API keys changes or goes: an in-process key cache compares it before trusting itself."""


def entities_generation(kind: str) -> str:
    """The ``counters`` row (per tenant) that migration 0008's triggers bump whenever a record
    of ``kind`` is inserted, updated or deleted, by any writer in any process."""
    return f"entities:{kind}"


# --- issue 15: the MCP server's confirmation tokens and approval policy (migration 0009) -------

mcp_confirmations = Table(
    "mcp_confirmations",
    metadata,
    Column("id", String(40), primary_key=True),  # mct_...
    _tenant(),
    Column("principal", String(64), nullable=False),
    Column("tool", String(64), nullable=False),
    Column("args_hash", String(64), nullable=False),  # SHA-256 of the canonical arguments
    Column("secret_hash", String(64), nullable=False),  # SHA-256 of the token's secret
    Column("issued_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("needs_person", Boolean, nullable=False),
    Column("approved_by", String(64)),
    Column("approved_at", Instant),
    Column("used_at", Instant),  # set once, by one conditional UPDATE
    Index("ix_mcp_confirmations_tenant_id_expires_at", "tenant_id", "expires_at"),
)
"""A write preview's confirmation token: bound to its principal, tool and arguments, used once."""

mcp_policies = Table(
    "mcp_policies",
    metadata,
    _tenant(),
    Column("principal", String(64), nullable=False),
    Column("needs_person", Boolean, nullable=False),
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("tenant_id", "principal"),
)
"""Per key (or user): whether its agents' writes wait for a person's approval."""
