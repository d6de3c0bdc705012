"""``--state PATH``: a tenant survives a restart, with its data and its tokens."""

from __future__ import annotations

from pathlib import Path

from tests.support.sandbox import ANCHOR, start_live

from carecloud_sandbox.config import SandboxConfig


def test_a_tenant_in_a_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "tenant.db")
    config = SandboxConfig(seed=11, patients=20, practices=2, anchor=ANCHOR)
    first, stop = start_live(config, state=state)
    token = first.token(0)
    with first.client(token) as c:
        created = c.post(
            "/v2/patients", json={"patient": {"first_name": "Sam", "last_name": "Restarttest"}}
        )
        assert created.status_code == 201
    guid = created.json()["patient"]
    generated_at = first.tenant.db.get_meta("generated")
    stop()

    second, stop = start_live(
        SandboxConfig(seed=99, patients=500, practices=1, anchor=ANCHOR), state=state
    )
    try:
        assert second.tenant.db.get_meta("generated") == generated_at, "no regeneration"
        assert second.tenant.db.scalar("SELECT COUNT(*) FROM patients") == 21
        with second.client(token) as c:
            shown = c.get(f"/v2/patients/{guid}")
        assert shown.status_code == 200, "the access token issued before the restart still works"
        assert shown.json()["patient"]["last_name"] == "Restarttest"
    finally:
        stop()


def test_the_default_state_is_in_memory() -> None:
    live, stop = start_live(SandboxConfig(seed=11, patients=5, practices=1, anchor=ANCHOR))
    try:
        assert live.tenant.db.path == ":memory:"
    finally:
        stop()
