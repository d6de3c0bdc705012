"""The Connector's logical ids for people, places and organizations, linked to the v2 keys.

A FHIR id is a name-based UUID of ``<ResourceType>/<v2 key>``: stable for a given tenant, never
equal to the v2 id, and recorded in ``fhir_ids`` so ground truth can join the two surfaces.
"""

from __future__ import annotations

import sqlite3
import uuid

from carecloud_sandbox.db import TenantDB

NAMESPACE = uuid.UUID("6f0c1f6e-2f4b-4c55-9a57-3c1d8e0b7a21")

# resource type -> (table, key column, practice column)
LINKED: dict[str, tuple[str, str, str]] = {
    "Organization": ("practices", "id", "id"),
    "Practitioner": ("providers", "id", "practice_id"),
    "Location": ("locations", "id", "practice_id"),
    "Patient": ("patients", "id", "practice_id"),
}
SQL_LINK = (
    "INSERT OR IGNORE INTO fhir_ids(resource_type, fhir_id, practice_id, entity, entity_id) "
    "VALUES (?, ?, ?, ?, ?)"
)


def fhir_id(resource_type: str, entity_id: str | int, table: str | None = None) -> str:
    """The Connector's logical id of one v2 entity.

    ``table`` names the source when a resource type draws on more than its own table (payers
    are Organizations too); the type's own table needs no name.
    """
    own = LINKED.get(resource_type, (None,))[0]
    name = (
        f"{resource_type}/{entity_id}"
        if table is None or table == own
        else f"{resource_type}/{table}/{entity_id}"
    )
    return str(uuid.uuid5(NAMESPACE, name))


def link(
    conn: sqlite3.Connection, resource_type: str, practice_id: int, entity_id: str | int
) -> str:
    """Record (once) and return the FHIR id of one entity, inside the caller's transaction."""
    table = LINKED[resource_type][0]
    value = fhir_id(resource_type, entity_id)
    conn.execute(SQL_LINK, (resource_type, value, practice_id, table, str(entity_id)))
    return value


def link_all(db: TenantDB) -> None:
    """Give every linked entity that has none its FHIR id."""
    for resource_type, (table, key, practice) in LINKED.items():
        rows = db.all(
            f"SELECT t.{key} AS k, t.{practice} AS p FROM {table} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM fhir_ids f WHERE f.entity = '{table}' AND f.entity_id = CAST(t.{key} AS TEXT) "
            f"AND f.resource_type = '{resource_type}')"
        )
        with db.transaction() as conn:
            conn.executemany(
                SQL_LINK,
                [
                    (resource_type, fhir_id(resource_type, r["k"]), r["p"], table, str(r["k"]))
                    for r in rows
                ],
            )
