"""The crosswalk is one map for every process: real OS processes sharing one store (a SQLite
file, or PostgreSQL) and one emulated tenant on a loopback port resolve the same ids to the
same upstream records.

Process A lists patients and appointments. Process B, which never listed anything, reads a
patient and an appointment by the ids A printed and cancels another appointment, with no
listing and no patient search upstream. Process C, started after both exited (a restart),
reads them again the same way and sees the cancellation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, select
from tests.support.sandbox import LiveTenant, start_live

from carebridge.store import migrate
from carebridge.store.schema import crosswalk, tenants
from carecloud_sandbox.config import SandboxConfig

TENANT = "ten_xwalk"
SCRIPT = Path(__file__).with_name("crosswalk_process.py")

LISTINGS = {"GET /portal/api/patients", "GET /v2/appointments", "POST /v2/patients/search"}
"""What a process that knows the ids from the crosswalk never sends."""


@pytest.fixture(scope="module")
def served() -> Iterator[LiveTenant]:
    config = SandboxConfig(seed=11, patients=12, practices=1, anchor=date(2026, 11, 24))
    live, stop = start_live(config)
    yield live
    stop()


def _store(url: str) -> str:
    migrate.upgrade(url)
    engine = create_sync_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(
            tenants.insert().values(
                id=TENANT,
                name=TENANT,
                upstream="carecloud",
                settings={},
                created_at=datetime(2026, 11, 24, tzinfo=UTC),
            )
        )
    engine.dispose()
    return url


def _links(url: str) -> dict[str, int]:
    engine = create_sync_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(
            select(crosswalk.c.kind, crosswalk.c.surface, func.count())
            .where(crosswalk.c.tenant_id == TENANT)
            .group_by(crosswalk.c.kind, crosswalk.c.surface)
        ).all()
    engine.dispose()
    return {f"{kind}/{surface}": int(n) for kind, surface, n in rows}


def _spawn(live: LiveTenant, store: str, role: str, ids: dict[str, str] | None = None) -> Any:
    return subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), live.base_url, store, TENANT, role, json.dumps(ids or {})],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )


def _result(process: Any) -> dict[str, Any]:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _listed(sent: list[str]) -> set[str]:
    return {s for s in sent if s in LISTINGS}


def scenario(live: LiveTenant, store: str) -> None:
    live.clock.advance(timedelta(seconds=31))  # a TOTP step no earlier store's ledger used
    a = _result(_spawn(live, store, "list"))
    assert _listed(a["sent"]) == LISTINGS  # A found everything by listing
    ids = a["ids"]
    links = _links(store)
    assert links["patient/chart_number"] == len(a["patients"])
    assert links["patient/v2"] == len(a["patients"])
    assert links["appointment/v2"] >= len(a["appointments"])

    # B never listed: it reads by A's ids and cancels, in a process of its own
    b = _result(_spawn(live, store, "use", ids))
    assert _listed(b["sent"]) == set()
    assert b["person"] == a["person"]  # the same person on every surface (v2, chart, RCM, FHIR)
    assert b["answers"]["patient"] == a["answers"]["patient"]
    assert b["answers"]["keep"] == a["answers"]["keep"]
    assert b["answers"]["cancelled"] == {"status": "cancelled", "confirmation": "confirmed"}
    assert b["answers"]["cancel"]["id"] == ids["cancel"]
    assert b["answers"]["cancel"]["status"] == "cancelled"
    truth = live.tenant.db.all(
        "SELECT status_code FROM appointments WHERE id = ?",
        (a["answers"]["cancel"]["sources"][0]["upstream_id"],),
    )
    assert [r["status_code"] for r in truth] == ["C"]  # cancelled upstream

    # C starts after A and B exited: the same mapping, the same answers
    c = _result(_spawn(live, store, "again", ids))
    assert _listed(c["sent"]) == set()
    assert c["person"] == a["person"]
    assert c["answers"]["patient"] == a["answers"]["patient"]
    assert c["answers"]["keep"] == a["answers"]["keep"]
    assert c["answers"]["cancel"] == b["answers"]["cancel"]
    assert _links(store) == links  # reads by id learn nothing new


def test_processes_and_a_restart_share_the_crosswalk_on_sqlite(
    served: LiveTenant, tmp_path: Path
) -> None:
    scenario(served, _store(f"sqlite:///{tmp_path / 'store.db'}"))


@pytest.mark.postgres
def test_processes_and_a_restart_share_the_crosswalk_on_postgres(
    served: LiveTenant, pg_url: str
) -> None:
    scenario(served, _store(pg_url))
