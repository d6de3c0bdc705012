"""The v2 patient search by a name prefix reads the prefix's range of the lower-name index (not
the practice's whole name index) and still answers what a scan would: the practice's patients
whose name starts with the prefix, in name order (ties as the practice's name index has them),
each with their ledger's balance."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from tests.support.sandbox import LiveTenant

PRACTICE = 1


def _expected(live: LiveTenant, key: str, prefix: str, limit: int) -> list[tuple[str, str]]:
    """(id, account balance) of a brute-force reading of the tenant's rows."""
    rows = live.tenant.db.all(
        "SELECT rowid AS r, id, first_name, last_name FROM patients WHERE practice_id = ?",
        (PRACTICE,),
    )
    hits = sorted(
        (r for r in rows if r[key].lower().startswith(prefix)),
        key=lambda r: (r["last_name"], r["first_name"], r["r"]),
    )[:limit]
    out = []
    for r in hits:
        cents = live.tenant.db.scalar(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM transactions WHERE patient_id = ?",
            (r["id"],),
        )
        out.append((r["id"], f"{Decimal(int(cents)) / 100:.2f}"))
    return out


@pytest.mark.parametrize("key", ["last_name", "first_name"])
def test_a_prefix_search_answers_what_a_scan_would(
    live: LiveTenant, api: httpx.Client, key: str
) -> None:
    names = {
        r[key].lower()
        for r in live.tenant.db.all(
            f"SELECT {key} FROM patients WHERE practice_id = ?",
            (PRACTICE,),
        )
    }
    prefixes = sorted({""} | {n[:1] for n in names} | {n[:2] for n in names} | {"zzzq"})
    for prefix in prefixes:
        for limit in (100, 3):
            body = {"fields": {key: prefix}, "limit": limit}
            found = api.post("/v2/patients/search", json=body)
            assert found.status_code == 200, found.text
            got = [(p["id"], p["account_balance"]) for p in found.json()["patients"]]
            assert got == _expected(live, key, prefix, limit), (key, prefix, limit)


def test_a_last_name_prefix_reads_its_range_of_the_lower_name_index(
    live: LiveTenant, api: httpx.Client
) -> None:
    statements: list[str] = []
    conn = live.tenant.db.conn
    conn.set_trace_callback(statements.append)
    try:
        found = api.post("/v2/patients/search", json={"fields": {"last_name": "sa"}})
    finally:
        conn.set_trace_callback(None)
    assert found.status_code == 200
    (search,) = [s for s in statements if s.startswith("SELECT * FROM patients")]
    plan = " ".join(str(row[3]) for row in live.tenant.db.all("EXPLAIN QUERY PLAN " + search))
    assert "patients_lower_last" in plan
    assert "<expr>>? AND <expr><?" in plan  # a range of the index, not a walk of the practice
