"""Generations that in-process caches compare before trusting themselves, and the audit log's
``(tenant_id, seq)`` index (issue 13).

Triggers bump a per-tenant row of ``counters`` in the writing transaction: ``entities:<kind>``
on every insert, update or delete of a record of that kind, and ``api_keys`` on every change or
removal of a key (a revocation). Any writer, in any process, bumps them, so an API process that
caches key lookups and serialized pages revalidates with one primary-key read.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

_SQLITE_BUMP = (
    "INSERT INTO counters (tenant_id, name, value) VALUES ({tenant}, {name}, 1) "
    "ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + 1"
)
_TRIGGERS = {
    # trigger name: (table, event, row, the counter's name as an SQL expression)
    "tr_entities_generation_insert": ("entities", "INSERT", "NEW", "'entities:' || NEW.kind"),
    "tr_entities_generation_update": ("entities", "UPDATE", "NEW", "'entities:' || NEW.kind"),
    "tr_entities_generation_delete": ("entities", "DELETE", "OLD", "'entities:' || OLD.kind"),
    "tr_api_keys_generation_update": ("api_keys", "UPDATE", "NEW", "'api_keys'"),
    "tr_api_keys_generation_delete": ("api_keys", "DELETE", "OLD", "'api_keys'"),
}


def upgrade() -> None:
    op.create_index("ix_audit_log_tenant_seq", "audit_log", ["tenant_id", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        for table, row, name in {
            ("entities", "NEW", "'entities:' || NEW.kind"),
            ("entities", "OLD", "'entities:' || OLD.kind"),
            ("api_keys", "NEW", "'api_keys'"),
            ("api_keys", "OLD", "'api_keys'"),
        }:
            function = f"bump_{table}_generation_{row.lower()}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO counters (tenant_id, name, value) VALUES ({row}.tenant_id, {name}, 1) "
                "ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + 1; "
                "RETURN NULL; END $$"
            )
        for trigger, (table, event, row, _) in _TRIGGERS.items():
            function = f"bump_{table}_generation_{row.lower()}"
            op.execute(
                f"CREATE TRIGGER {trigger} AFTER {event} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        return
    for trigger, (table, event, row, name) in _TRIGGERS.items():
        bump = _SQLITE_BUMP.format(tenant=f"{row}.tenant_id", name=name)
        op.execute(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} BEGIN {bump}; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for trigger, (table, _, _, _) in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (f" ON {table}" if postgres else ""))
    if postgres:
        for table in ("entities", "api_keys"):
            for row in ("new", "old"):
                op.execute(f"DROP FUNCTION IF EXISTS bump_{table}_generation_{row}()")
    op.drop_index("ix_audit_log_tenant_seq", table_name="audit_log")
