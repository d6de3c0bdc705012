"""Atomic sign-in attempts, used TOTP steps, and a keyed audit chain with a head checkpoint (issue 11).

Sign-in failures move from ``users`` to ``sign_in_attempts``, keyed by (tenant, username hash)
so an unknown username is counted and locked like a known one. ``users.totp_last_step`` keeps a
TOTP code from signing in twice. ``audit_heads`` checkpoints each tenant's audit chain.

Chains written before this revision were hashed without a key: ``carebridge audit verify``
reports them as broken (no checkpoint), as it should for a chain anyone could have rewritten.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Instant

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("username_key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", Instant),
        sa.Column("updated_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "username_key", name="pk_sign_in_attempts"),
    )
    op.create_table(
        "audit_heads",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(
                "tenants.id", ondelete="CASCADE", name="fk_audit_heads_tenant_id_tenants"
            ),
            nullable=False,
        ),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_audit_heads"),
    )
    # Plain ALTER TABLE (SQLite >= 3.35 drops a column in place): a batch copy of ``users``
    # would cascade-delete its challenges and sessions with foreign keys on.
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger))
    op.drop_column("users", "failed_attempts")
    op.drop_column("users", "locked_until")


def downgrade() -> None:
    op.add_column("users", sa.Column("locked_until", Instant))
    op.add_column(
        "users",
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.drop_column("users", "totp_last_step")
    op.drop_table("audit_heads")
    op.drop_table("sign_in_attempts")
