"""Process control of ``carebridge run`` and ``carebridge serve``, with real processes.

Proved here: a second run in a folder whose run is live refuses with one line and leaves the
live store alone (the lock goes with its holder, even on kill -9); ``serve`` and ``run`` refuse
a port something listens on, even with ``SO_REUSEPORT`` (as granian binds); SIGTERM to ``run``
stops the emulator and the API server before it exits; and, end to end, a second ``run`` beside
a live one changes nothing its ``curl`` lines need.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from carebridge.cli.run import port_in_use, run_lock
from carebridge.store.vault import KeyRing

CLI = [sys.executable, "-m", "carebridge"]


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")} | extra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _listening(*, reuse_port: bool) -> Iterator[int]:
    """A socket listening on a loopback port, as a running server's (granian sets
    ``SO_REUSEPORT``)."""
    with socket.socket() as sock:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- a second run -------------------------------------------------------------------------------


def test_a_second_run_in_a_live_runs_folder_refuses_and_leaves_its_store(tmp_path: Path) -> None:
    home = tmp_path / ".carebridge"
    home.mkdir(mode=0o700)
    store = home / "carebridge.db"
    store.write_bytes(b"the live run's store")
    (home / "api_key").write_text("cbk_live")
    holder = subprocess.Popen(  # noqa: S603 - a process that holds the run's lock, like a live run
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from carebridge.cli.run import run_lock\n"
            "with run_lock(pathlib.Path(sys.argv[1])):\n"
            "    print('held', flush=True); sys.stdin.read()",
            str(home),
        ],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(  # noqa: S603 - our own CLI
            [*CLI, "run", f"--port={_free_port()}", f"--sandbox-port={_free_port()}"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"error: another carebridge run (pid {holder.pid}) is using .carebridge/; stop it first"
        ]
        assert second.stdout == ""
        assert store.read_bytes() == b"the live run's store"
        assert (home / "api_key").read_text() == "cbk_live"
        assert not (home / "vault.key").exists()
    finally:
        holder.kill()
        holder.communicate()
    # the lock went with its holder, though it was killed: the next run may take it
    with run_lock(home):
        assert (home / "run.lock").read_text().strip() == str(os.getpid())


# --- ports --------------------------------------------------------------------------------------


def test_a_port_in_use_is_seen_even_when_shared_with_so_reuseport() -> None:
    with _listening(reuse_port=True) as taken:
        assert port_in_use("127.0.0.1", taken)
    with _listening(reuse_port=False) as taken:
        assert port_in_use("127.0.0.1", taken)
    assert not port_in_use("127.0.0.1", _free_port())


def test_serve_refuses_a_port_another_server_listens_on(tmp_path: Path) -> None:
    env = _env(
        CAREBRIDGE_VAULT_KEY=KeyRing.generate().to_text(),
        CAREBRIDGE_DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
    )
    with _listening(reuse_port=True) as taken:
        serve = subprocess.run(  # noqa: S603 - our own CLI
            [*CLI, "serve", f"--port={taken}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert serve.returncode == 2
    assert serve.stderr.strip().splitlines() == [
        f"error: port {taken} on 127.0.0.1 is in use (is carebridge already running?)"
    ]
    assert not (tmp_path / "store.db").exists()


def test_run_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    with _listening(reuse_port=True) as taken:
        run = subprocess.run(  # noqa: S603 - our own CLI
            [*CLI, "run", f"--port={_free_port()}", f"--sandbox-port={taken}"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: port {taken} on 127.0.0.1 is in use (is carebridge already running?)"
    ]
    assert not (tmp_path / ".carebridge" / "carebridge.db").exists()


# --- signals ------------------------------------------------------------------------------------


def _start_run(cwd: Path, port: int, sandbox_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [*CLI, "run", f"--port={port}", f"--sandbox-port={sandbox_port}", "--patients=10"],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal to the run alone, not to a process group
    )


def _reap(run: subprocess.Popen[str]) -> None:
    if run.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    for stream in (run.stdout, run.stderr):
        if stream is not None:
            stream.close()


def test_sigterm_to_run_stops_the_emulator_it_started(tmp_path: Path) -> None:
    port, sandbox_port = _free_port(), _free_port()
    run = _start_run(tmp_path, port, sandbox_port)
    try:
        _wait_until(lambda: _listens(sandbox_port), 120, "the emulator never listened")
        children = _descendants(run.pid)
        assert children
        run.send_signal(signal.SIGTERM)  # the run alone, as `kill <pid>` does
        assert run.wait(timeout=60) == 0
        assert run.stderr is not None
        assert run.stderr.read().strip().splitlines()[-1] == "carebridge: stopped."
        assert not [pid for pid in children if _alive(pid)]
        assert not _listens(sandbox_port)
    finally:
        _reap(run)


@pytest.mark.slow
def test_a_second_run_beside_a_live_one_changes_nothing_and_sigterm_stops_both_servers(
    tmp_path: Path,
) -> None:
    port, sandbox_port = _free_port(), _free_port()
    run = _start_run(tmp_path, port, sandbox_port)
    try:
        assert run.stdout is not None
        for line in run.stdout:
            if line.startswith("Ctrl-C"):
                break
        key = (tmp_path / ".carebridge" / "api_key").read_text().strip()
        auth = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/patients?limit=1", headers=auth, timeout=30).status_code == 200

        second = subprocess.run(  # noqa: S603 - our own CLI, in the same folder
            [*CLI, "run", f"--port={_free_port()}", f"--sandbox-port={_free_port()}"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2
        assert "another carebridge run" in second.stderr
        assert httpx.get(f"{base}/patients?limit=1", headers=auth, timeout=30).status_code == 200

        children = _descendants(run.pid)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 0
        assert not [pid for pid in children if _alive(pid)]
        assert not _listens(port)
        assert not _listens(sandbox_port)
    finally:
        _reap(run)
