"""Users, MFA challenges, sessions and outgoing codes (``POST /authenticate``), and the
freshness marks behind fetch-through reads.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Instant, Json, Serial

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def _tenant(table: str) -> sa.Column[str]:
    return sa.Column(
        "tenant_id",
        sa.String(64),
        sa.ForeignKey("tenants.id", ondelete="CASCADE", name=f"fk_{table}_tenant_id_tenants"),
        nullable=False,
    )


def _user(table: str) -> sa.Column[str]:
    return sa.Column(
        "user_id",
        sa.String(64),
        sa.ForeignKey("users.id", ondelete="CASCADE", name=f"fk_{table}_user_id_users"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), nullable=False),
        _tenant("users"),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("mfa_methods", Json, nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(32)),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_until", Instant),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("disabled_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("tenant_id", "username", name="uq_users_tenant_id_username"),
    )
    op.create_table(
        "auth_challenges",
        sa.Column("id", sa.String(64), nullable=False),
        _tenant("auth_challenges"),
        _user("auth_challenges"),
        sa.Column("method", sa.String(16)),
        sa.Column("code_hash", sa.String(64)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.Column("used_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_auth_challenges"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        _tenant("user_sessions"),
        _user("user_sessions"),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.Column("revoked_at", Instant),
        sa.PrimaryKeyConstraint("id", name="pk_user_sessions"),
        sa.UniqueConstraint("prefix", name="uq_user_sessions_prefix"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", Serial, nullable=False, autoincrement=True),
        _tenant("notifications"),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(320), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("ix_notifications_tenant", "notifications", ["tenant_id", "id"])
    op.create_table(
        "freshness",
        _tenant("freshness"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("refreshed_at", Instant, nullable=False),
        sa.Column("cursor", Json),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "scope", name="pk_freshness"),
    )


def downgrade() -> None:
    for table in ("freshness", "notifications", "user_sessions", "auth_challenges", "users"):
        op.drop_table(table)
