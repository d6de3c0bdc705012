"""The MCP server's confirmation tokens (used once across processes) and per-key approval
policy (issue 15).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_confirmations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(
                "tenants.id", ondelete="CASCADE", name="fk_mcp_confirmations_tenant_id_tenants"
            ),
            nullable=False,
        ),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("args_hash", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("needs_person", sa.Boolean(), nullable=False),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_mcp_confirmations"),
    )
    op.create_index(
        "ix_mcp_confirmations_tenant_id_expires_at",
        "mcp_confirmations",
        ["tenant_id", "expires_at"],
    )
    op.create_table(
        "mcp_policies",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(
                "tenants.id", ondelete="CASCADE", name="fk_mcp_policies_tenant_id_tenants"
            ),
            nullable=False,
        ),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("needs_person", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "principal", name="pk_mcp_policies"),
    )


def downgrade() -> None:
    op.drop_table("mcp_policies")
    op.drop_index("ix_mcp_confirmations_tenant_id_expires_at", table_name="mcp_confirmations")
    op.drop_table("mcp_confirmations")
