"""The initial store: tenants, vault secrets, API keys, entities, crosswalk, idempotency
records, the write ledger and the audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Instant, Json, Serial

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[str]:
    return sa.Column(
        "tenant_id",
        sa.String(64),
        sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_%s_tenant_id_tenants"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("upstream", sa.String(32), nullable=False),
        sa.Column("settings", Json, nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("disabled_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )
    op.create_table(
        "vault_secrets",
        _tenant(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", name="pk_vault_secrets"),
    )
    op.create_index("ix_vault_secrets_kid", "vault_secrets", ["kid"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        _tenant(),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("last_used_at", Instant),
        sa.Column("revoked_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id"])
    op.create_table(
        "entities",
        _tenant(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("provider_id", sa.String(64)),
        sa.Column("location_id", sa.String(64)),
        sa.Column("status", sa.String(32)),
        sa.Column("name_key", sa.String(200)),
        sa.Column("birth_date", sa.String(10)),
        sa.Column("starts_at", Instant),
        sa.Column("upstream_updated_at", Instant),
        sa.Column("fetched_at", Instant, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "id", name="pk_entities"),
    )
    for name, columns in (
        ("ix_entities_kind_updated", ["tenant_id", "kind", "upstream_updated_at"]),
        ("ix_entities_kind_patient", ["tenant_id", "kind", "patient_id"]),
        ("ix_entities_kind_starts", ["tenant_id", "kind", "starts_at"]),
        ("ix_entities_kind_name", ["tenant_id", "kind", "name_key"]),
    ):
        op.create_index(name, "entities", columns)
    op.create_table(
        "crosswalk",
        _tenant(),
        sa.Column("surface", sa.String(32), nullable=False),
        sa.Column("upstream_id", sa.String(128), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "surface", "kind", "upstream_id", name="pk_crosswalk"),
    )
    op.create_index("ix_crosswalk_entity", "crosswalk", ["tenant_id", "entity_id"])
    op.create_table(
        "idempotency",
        _tenant(),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", Json),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "principal", "key", name="pk_idempotency"),
    )
    op.create_index("ix_idempotency_expires", "idempotency", ["expires_at"])
    op.create_table(
        "write_ledger",
        sa.Column("id", Serial, nullable=False, autoincrement=True),
        _tenant(),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64)),
        sa.Column("request", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("diverged", Json),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_write_ledger"),
    )
    op.create_index("ix_write_ledger_tenant_created", "write_ledger", ["tenant_id", "created_at"])
    op.create_table(
        "audit_log",
        sa.Column("seq", Serial, nullable=False, autoincrement=True),
        _tenant(),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("patient_ids", Json, nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "write_ledger",
        "idempotency",
        "crosswalk",
        "entities",
        "api_keys",
        "vault_secrets",
        "tenants",
    ):
        op.drop_table(table)
