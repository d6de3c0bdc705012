"""One sync per tenant and stream across processes, and events with a deterministic identity (issue 11).

- ``sync_leases``: the lease of each (tenant, stream) sync, renewed while it works.
- ``sync_marks``: a per-patient stream's cursor, one row per patient read.
- ``events.message_id``: the event's identity and webhook-id, unique per tenant. Events written
  before it keep the webhook-id they were delivered with (``evt_<tenant>_<seq>``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Instant

revision = "0005"
down_revision: str | None = "0004"
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
        "sync_leases",
        _tenant("sync_leases"),
        sa.Column("stream", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "stream", name="pk_sync_leases"),
    )
    op.create_table(
        "sync_marks",
        _tenant("sync_marks"),
        sa.Column("stream", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=False),
        sa.Column("high_water", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "stream", "parent_id", name="pk_sync_marks"),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("message_id", sa.String(96), nullable=True))
    op.execute(
        "UPDATE events SET message_id = 'evt_' || tenant_id || '_' || CAST(seq AS VARCHAR(20))"
    )
    with op.batch_alter_table("events") as batch:
        batch.alter_column("message_id", existing_type=sa.String(96), nullable=False)
        batch.create_unique_constraint(
            "uq_events_tenant_id_message_id", ["tenant_id", "message_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_tenant_id_message_id", type_="unique")
        batch.drop_column("message_id")
    op.drop_table("sync_marks")
    op.drop_table("sync_leases")
