"""The Connector's logical ids.

Patient, Practitioner, Location and Organization ids come from the ``fhir_ids`` crosswalk (the
generator may fill it). A row missing there is created lazily with a deterministic id:
``crosswalk.fhir_id`` (a name-based UUID of ``<resource_type>/<entity_id>``). The other types use prefixed row ids
(``enc-12``, ``vit-7-bp`` ...), see :mod:`carecloud_sandbox.fhir.resources`.
"""

from __future__ import annotations

from carecloud_sandbox import crosswalk
from carecloud_sandbox.tenant import Tenant

# resource type -> (entity table, key column, practice column); global rows (the payers, which
# every practice shares as Organizations) get practice_id 0 in the crosswalk.
CROSSWALK: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "Patient": (("patients", "id", "practice_id"),),
    "Practitioner": (("providers", "id", "practice_id"),),
    "Location": (("locations", "id", "practice_id"),),
    "Organization": (("practices", "id", "id"), ("payers", "id", None)),
}


def derived_id(resource_type: str, entity_id: str, table: str | None = None) -> str:
    """The deterministic id given to a row the crosswalk does not hold yet (the same rule as
    the generator's, :func:`carecloud_sandbox.crosswalk.fhir_id`)."""
    return crosswalk.fhir_id(resource_type, entity_id, table)


def ensure_ids(tenant: Tenant) -> None:
    """Give every patient, provider, location, practice and payer a crosswalk row.

    Cheap when nothing is missing (one anti-join per entity), so it runs on every request and
    picks up rows created since (a patient added through v2, say). Rows only appear through a
    write on the tenant's one connection, so once a check finds nothing missing, the next ones
    are skipped until the connection's ``total_changes`` moves on.
    """
    changes = tenant.db.conn.total_changes
    if tenant.__dict__.get("fhir_ids_complete_at") == changes:
        return
    missing: list[tuple[str, str, int, str, str]] = []
    for resource_type, entities in CROSSWALK.items():
        for table, key, practice in entities:
            practice_expr = f"t.{practice}" if practice else "0"
            rows = tenant.db.all(
                f"SELECT t.{key} AS entity_id, {practice_expr} AS practice_id FROM {table} t "
                "WHERE NOT EXISTS (SELECT 1 FROM fhir_ids f WHERE f.entity = ? "
                f"AND f.entity_id = CAST(t.{key} AS TEXT) AND f.resource_type = ?)",
                (table, resource_type),
            )
            for row in rows:
                entity_id = str(row["entity_id"])
                missing.append(
                    (
                        resource_type,
                        derived_id(resource_type, entity_id, table),
                        int(row["practice_id"]),
                        table,
                        entity_id,
                    )
                )
    if not missing:
        tenant.__dict__["fhir_ids_complete_at"] = changes
        return
    with tenant.db.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO fhir_ids(resource_type, fhir_id, practice_id, entity, "
            "entity_id) VALUES (?, ?, ?, ?, ?)",
            missing,
        )


class IdMap:
    """Entity keys to logical ids, loaded per (type, entity) on first use.

    The loaded maps are shared by every IdMap of the tenant until the connection's
    ``total_changes`` moves on (the crosswalk only changes through a write on it), so a
    search page does not reload every patient's id.
    """

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        changes = tenant.db.conn.total_changes
        shared: tuple[int, dict[tuple[str, str], dict[str, str]]] | None = tenant.__dict__.get(
            "fhir_id_maps"
        )
        if shared is None or shared[0] != changes:
            shared = (changes, {})
            tenant.__dict__["fhir_id_maps"] = shared
        self._maps = shared[1]

    def get(self, resource_type: str, entity: str, entity_id: object) -> str | None:
        """The logical id of ``entity``'s row ``entity_id``; None when it has none."""
        if entity_id is None:
            return None
        key = (resource_type, entity)
        if key not in self._maps:
            rows = self.tenant.db.all(
                "SELECT entity_id, fhir_id FROM fhir_ids WHERE resource_type = ? AND entity = ?",
                key,
            )
            self._maps[key] = {str(r["entity_id"]): str(r["fhir_id"]) for r in rows}
        return self._maps[key].get(str(entity_id))

    def entity_of(self, resource_type: str, entity: str, fhir_id: str) -> str | None:
        """The entity key of a logical id; None when unknown."""
        value = self.tenant.db.scalar(
            "SELECT entity_id FROM fhir_ids WHERE resource_type = ? AND entity = ? AND fhir_id = ?",
            (resource_type, entity, fhir_id),
        )
        return None if value is None else str(value)
