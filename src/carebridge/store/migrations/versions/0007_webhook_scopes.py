"""Webhook subscriptions keep their creating key's scopes: deliveries show what they may read
(issue 11).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.store.schema import Json

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Subscriptions made before have none: their deliveries go out with every record redacted
    # until they are made again by a key that may read them.
    op.add_column("webhooks", sa.Column("scopes", Json))


def downgrade() -> None:
    op.drop_column("webhooks", "scopes")
