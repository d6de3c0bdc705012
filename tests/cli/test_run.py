"""``carebridge run`` (``make run``) end to end: the README's curl lines (the seven seed
endpoints, a webhook subscription and the event log) are the ones the command prints, and each
of them works against the running stack with the demo key; the ``export`` line it prints points
the CLI in another process at the same store and vault."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carebridge.cli.run import SCOPES, curl_lines, export_line
from carebridge.domain.kinds import KINDS
from carebridge.services.keys import SCOPES as EVERY_SCOPE

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_lines() -> list[str]:
    text = README.read_text()
    section = text.split("## The seed endpoints", 1)[1].split("```sh", 1)[1]
    block = section.split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.startswith("curl ")]


def test_the_readme_shows_the_lines_the_command_prints() -> None:
    assert _readme_lines() == curl_lines("http://127.0.0.1:8700", ".carebridge")
    assert len(_readme_lines()) == 9


def test_the_demo_key_holds_every_scope_a_tenant_user_can() -> None:
    granted = set(SCOPES.split(","))
    assert granted == set(EVERY_SCOPE) - {"admin"}
    for kind in KINDS.values():
        assert kind.read_scope in granted, kind.name
        assert all(w.scope in granted for w in kind.writes), kind.name
    assert {"event.read", "webhook.read", "webhook.write", "sync.write", "audit.read"} <= granted


def test_the_export_line_names_the_store_and_the_vault(tmp_path: Path) -> None:
    home = tmp_path / "a folder" / ".carebridge"
    line = export_line(home, vault_file=True)
    assert line.startswith("export ")
    names = dict(item.split("=", 1) for item in shlex.split(line)[1:])
    assert names == {
        "CAREBRIDGE_DATABASE_URL": f"sqlite:///{home}/carebridge.db",
        "CAREBRIDGE_VAULT_KEY_FILE": f"{home}/vault.key",
    }
    assert "VAULT" not in export_line(home, vault_file=False)  # a key from the environment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_make_run_serves_the_seven_endpoints_and_the_curl_lines_work(tmp_path: Path) -> None:
    port, sandbox_port = _free_port(), _free_port()
    command = [sys.executable, "-m", "carebridge", "run", f"--port={port}"]
    command.append(f"--sandbox-port={sandbox_port}")
    child = subprocess.Popen(  # noqa: S603 - our own CLI
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")},
    )
    printed: list[str] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 240
        for line in child.stdout:
            printed.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C") or time.monotonic() > deadline:
                break
        assert printed, child.poll()
        assert printed[-1].startswith("Ctrl-C"), (printed, child.poll())
        shown = [line for line in printed if line.startswith("curl ")]
        expected = [line.replace("127.0.0.1:8700", f"127.0.0.1:{port}") for line in _readme_lines()]
        assert shown == expected
        exports = [line for line in printed if line.startswith("export ")]
        assert exports == [export_line(tmp_path / ".carebridge", vault_file=True)]
        listed = subprocess.run(  # noqa: S603 - the CLI, pointed by the printed export
            ["/bin/bash", "-c", f"{exports[0]} && {sys.executable} -m carebridge keys list "
             f"--tenant ten_sandbox && {sys.executable} -m carebridge sync --tenant ten_sandbox "
             "--stream providers --quiet"],
            cwd=tmp_path.parent,  # another directory: the export's paths are absolute
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")},
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert "make run" in listed.stdout  # the demo key, read from the run's own store
        # ... and a sync opened the tenant's upstream credentials with the run's vault key

        answers = []
        for line in expected:
            done = subprocess.run(  # noqa: S603 - the README's own lines
                ["/bin/bash", "-c", line],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, (line, done.stderr)
            answers.append(json.loads(done.stdout))
        for line, answer in zip(expected, answers, strict=True):
            assert "/problems/" not in str(answer.get("type", "")), (line, answer)
            assert answer.get("status") not in range(400, 600), (line, answer)
        signed_in, patients, appointments, booked, encounters, claim, eligibility = answers[:7]
        hook, events = answers[7:]
        assert signed_in["status"] == "authenticated"
        assert re.match(r"^cbs_", signed_in["token"])
        assert len(patients["data"]) == 2
        assert len(appointments["data"]) == 2
        assert booked["confirmation"] == "confirmed"
        assert booked["data"]["status"] == "scheduled"
        assert all(e["patient_id"] == patients["data"][0]["id"] for e in encounters["data"])
        assert claim["data"]["claim_number"]
        assert eligibility["patient_id"] == patients["data"][0]["id"]
        assert hook["id"].startswith("whk_")
        assert hook["secret"].startswith("whsec_")
        assert set(events) == {"data", "has_more", "next_cursor"}
        assert all(e["id"].startswith("evt_") for e in events["data"])
        assert not (tmp_path / ".carebridge" / "api_key").stat().st_mode & 0o077
    finally:
        os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
