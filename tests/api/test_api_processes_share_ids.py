"""Two API processes and a restart over one store see one set of ids and give the same answers.

Identity is not per process: the store holds the records and the connector's crosswalk, so an
appointment one API process listed can be cancelled through another that never listed it, and a
restarted process answers as the first two did. Each API process is ``carebridge serve`` (granian)
in its own OS process, over one SQLite file and one emulated tenant.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from tests.support.processes import free_port, served_sandbox, wait_for

from carebridge.services.admin import SHELL, KeySpec
from carebridge.wiring.admin import new_key_ring, parse_key_ring
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

TENANT = "ten_procs"


def _volatile(record: dict[str, Any]) -> dict[str, Any]:
    """A record without the instants that say when it was read (not what it says)."""
    return {k: v for k, v in record.items() if k not in ("sources", "fetched_at")}


async def _onboard(database: str, ring_text: str, sandbox: str) -> str:
    deployment = await open_deployment(database, parse_key_ring(ring_text))
    try:
        async with httpx.AsyncClient() as client:
            document = (await client.get(f"{sandbox}/_sandbox/credentials")).json()
        settings, secrets = from_sandbox(document, practice=0)
        await deployment.onboard(
            tenant_id=TENANT, name="procs", upstream="carecloud", settings=settings, secrets=secrets
        )
        minted = await deployment.admin.mint_key(
            SHELL, KeySpec(tenant_id=TENANT, scopes="admin", label="procs")
        )
        return minted.key
    finally:
        await deployment.aclose()


@contextmanager
def _api(database: str, ring_text: str, log: Path) -> Iterator[str]:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    environment |= {
        "CAREBRIDGE_DATABASE_URL": database,
        "CAREBRIDGE_VAULT_KEY": ring_text,
        "CAREBRIDGE_SYNC_INTERVAL": "0",
    }
    with open(log, "ab") as errors:
        child = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "carebridge", "serve", f"--port={port}"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health")
        yield base
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=30)


def _get(base: str, key: str, path: str, **params: Any) -> Any:
    answer = httpx.get(
        f"{base}{path}", params=params, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with served_sandbox(patients=15) as base:
        yield base


def test_two_api_processes_and_a_restart_share_ids_and_answers(
    sandbox: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    ring_text = new_key_ring().to_text()
    key = anyio.run(_onboard, database, ring_text, sandbox)
    today = datetime.now(UTC).date()
    window = {"start": f"{today}T00:00:00Z", "end": f"{today + timedelta(days=14)}T00:00:00Z"}

    with _api(database, ring_text, tmp_path / "a.log") as a:
        listed = _get(a, key, "/patients", limit=100)["data"]
        appointments = _get(a, key, "/appointments", limit=500, **window)["data"]
        booked = [x for x in appointments if x["status"] not in ("cancelled", "no_show")]
        assert listed
        assert booked
        patient, target = listed[0], booked[0]

        with _api(database, ring_text, tmp_path / "b.log") as b:
            # B never listed: the same id reads the same patient, and A's appointment cancels.
            assert _volatile(_get(b, key, f"/patients/{patient['id']}")) == _volatile(patient)
            cancelled = httpx.post(
                f"{b}/cancel_appointment",
                json={"appointment_id": target["id"]},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "procs-cancel"},
                timeout=120,
            )
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["data"]["id"] == target["id"]
            assert cancelled.json()["data"]["status"] == "cancelled"
            assert cancelled.json()["confirmation"] == "confirmed"

        # A sees what B did, under the same id.
        seen = _get(a, key, "/appointments", limit=500, **window)["data"]
        assert {x["id"]: x["status"] for x in seen}[target["id"]] == "cancelled"

    # A restart: a new process over the same store answers as the first two did.
    with _api(database, ring_text, tmp_path / "c.log") as c:
        again = _get(c, key, "/patients", limit=100)["data"]
        assert [p["id"] for p in again] == [p["id"] for p in listed]
        assert _volatile(_get(c, key, f"/patients/{patient['id']}")) == _volatile(patient)
        after = _get(c, key, "/appointments", limit=500, **window)["data"]
        assert {x["id"] for x in after} >= {x["id"] for x in appointments}
        assert {x["id"]: x["status"] for x in after}[target["id"]] == "cancelled"
        replay = httpx.post(
            f"{c}/cancel_appointment",
            json={"appointment_id": target["id"]},
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "procs-cancel"},
            timeout=120,
        )
        assert replay.status_code == 200, replay.text
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json() == cancelled.json()
