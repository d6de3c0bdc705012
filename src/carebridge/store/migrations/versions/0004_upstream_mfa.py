"""The upstream accounts' MFA state, shared by every process (issue 11).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Instant

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_mfa",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", Instant),
        sa.PrimaryKeyConstraint("account", name="pk_upstream_mfa"),
    )


def downgrade() -> None:
    op.drop_table("upstream_mfa")
