"""Change events, per-tenant counters, webhook subscriptions and the delivery outbox.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Instant, Json, Serial

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def _tenant(table: str) -> sa.Column[str]:
    return sa.Column(
        "tenant_id",
        sa.String(64),
        sa.ForeignKey("tenants.id", ondelete="CASCADE", name=f"fk_{table}_tenant_id_tenants"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "counters",
        _tenant("counters"),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", name="pk_counters"),
    )
    op.create_table(
        "events",
        _tenant("events"),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("diff", Json, nullable=False),
        sa.Column("occurred_at", Instant, nullable=False),
        sa.Column("detected_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name="pk_events"),
    )
    op.create_index("ix_events_tenant_type", "events", ["tenant_id", "type", "seq"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        _tenant("webhooks"),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event_types", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("previous_secret_expires_at", Instant),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("disabled_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_index("ix_webhooks_tenant", "webhooks", ["tenant_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", Serial, nullable=False, autoincrement=True),
        _tenant("deliveries"),
        sa.Column(
            "webhook_id",
            sa.String(64),
            sa.ForeignKey(
                "webhooks.id", ondelete="CASCADE", name="fk_deliveries_webhook_id_webhooks"
            ),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("message_id", sa.String(96), nullable=False),
        sa.Column("entity_key", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Instant, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.String(200)),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("delivered_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_deliveries_order", "deliveries", ["webhook_id", "entity_key", "seq"])


def downgrade() -> None:
    for table in ("deliveries", "webhooks", "events", "counters"):
        op.drop_table(table)
