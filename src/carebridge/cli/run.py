"""``carebridge run`` (the whole stack on one machine) and ``carebridge serve`` (the API).

``run`` starts the emulated CareCloud tenant on a loopback port, then carebridge against it on
a fresh SQLite store in ``.carebridge/``: it onboards the sandbox's first practice as tenant
``ten_sandbox``, mints an API key with every scope a tenant's user can hold and a sign-in user,
prepares request bodies with live ids (a free slot, a charge to bill, a webhook), and prints
the ``export`` that points the CLI in another shell at the same store and vault, then one
``curl`` line per seed endpoint, a webhook subscription and the event log. Everything it
writes stays in ``.carebridge/`` (mode 0700), which each run starts afresh.

Process control: a run holds an exclusive lock on ``.carebridge/run.lock`` for its whole life,
so a second run in the same folder refuses (one ``error:`` line) instead of deleting the live
store; ``run`` and ``serve`` refuse a port that something already listens on (checked with a
plain bind, without ``SO_REUSEPORT``, so a second granian cannot share the port); SIGTERM,
SIGHUP and SIGINT stop ``run``'s children (the emulator and the API server) before it exits.
The API server gets the loopback webhook allow-list (``CAREBRIDGE_WEBHOOK_ALLOW``), so local
receivers work.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer

from carebridge.cli.common import fail as _fail
from carebridge.domain.urls import ALLOW_ENV, LOOPBACK
from carebridge.errors import CarebridgeError
from carebridge.services.admin import SHELL, KeySpec, TenantSpec, UserSpec
from carebridge.services.keys import SCOPES as EVERY_SCOPE
from carebridge.wiring import admin
from carebridge.wiring.admin import KeyRing
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

TENANT = "ten_sandbox"
SCOPES = ",".join(sorted(scope for scope in EVERY_SCOPE if scope != "admin"))
"""The demo key's scopes: every scope a tenant's user can hold (each kind's, from the kinds
registry, and the audit log's, events', webhooks' and syncs'), short of ``admin``."""
DATABASE = "carebridge.db"
VAULT_KEY = "vault.key"
WEBHOOK_RECEIVER = "http://127.0.0.1:8799/carebridge"
"""Where the demo's webhook body points (a loopback receiver of your own)."""


def granian(host: str, port: int, *options: str) -> list[str]:
    """The command that serves the API app (``carebridge.api.main:app``) with granian."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        *options,
        "carebridge.api.main:app",
    ]


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP or SIGINT) arrived: unwind, stopping the children."""


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGTERM, SIGHUP and SIGINT into :class:`Stopped` for the block; once one has come,
    later ones are ignored, so the children's shutdown is not cut off half-way."""
    wanted = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        for each in wanted:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {each: signal.signal(each, stop) for each in wanted}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port``: a plain bind (``SO_REUSEADDR`` for sockets
    in TIME_WAIT, never ``SO_REUSEPORT``) is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # the server reports an unknown interface itself
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
                probe.listen(1)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    return True
    return False


def _free(host: str, *ports: int) -> None:
    for port in ports:
        if port_in_use(host, port):
            raise _fail(f"port {port} on {host} is in use (is carebridge already running?)")


@contextlib.contextmanager
def run_lock(home: Path) -> Iterator[None]:
    """Hold ``home/run.lock`` exclusively for the block; another run holding it is an error
    (the lock goes with the process, even on kill -9)."""
    path = home / "run.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            where = home.relative_to(Path.cwd()) if home.is_relative_to(Path.cwd()) else home
            raise _fail(
                f"another carebridge run (pid {holder}) is using {where}/; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def export_line(home: Path, *, vault_file: bool) -> str:
    """The ``export`` that points the CLI (``carebridge keys ...``, ``carebridge sync``...) in
    another shell at the run's store and vault (the vault's key file, unless the key came
    from the environment, which that shell must then share)."""
    names = [f"CAREBRIDGE_DATABASE_URL={shlex.quote(f'sqlite:///{home / DATABASE}')}"]
    if vault_file:
        names.append(f"CAREBRIDGE_VAULT_KEY_FILE={shlex.quote(str(home / VAULT_KEY))}")
    return "export " + " ".join(names)


def curl_lines(base: str, home: str) -> list[str]:
    """The ready-to-paste requests, one per seed endpoint, then a webhook subscription and the
    event log (the README shows the same)."""
    key = f'-H "Authorization: Bearer $(cat {home}/api_key)"'
    json_body = "-H 'Content-Type: application/json'"
    patient = f"$(cat {home}/patient_id)"
    return [
        f"curl -s -X POST {base}/authenticate {json_body} -d @{home}/authenticate.json",
        f'curl -s "{base}/patients?limit=2" {key}',
        f'curl -s "{base}/appointments?limit=2" {key}',
        f"curl -s -X POST {base}/create_appointment {key} {json_body}"
        f' -H "Idempotency-Key: book-$(date +%s)" -d @{home}/create_appointment.json',
        f'curl -s "{base}/encounters?patient_id={patient}&limit=2" {key}',
        f"curl -s -X POST {base}/submit_claim {key} {json_body}"
        f' -H "Idempotency-Key: claim-$(date +%s)" -d @{home}/submit_claim.json',
        f'curl -s "{base}/eligibility?patient_id={patient}" {key}',
        f"curl -s -X POST {base}/webhooks {key} {json_body} -d @{home}/webhook.json",
        f'curl -s "{base}/events?limit=2" {key}',
    ]


def _write(path: Path, content: str) -> None:
    path.write_text(content)
    path.chmod(0o600)


@contextlib.contextmanager
def _child(command: list[str], env: dict[str, str] | None, ready: str, name: str) -> Iterator[str]:
    """A child process that is ready when ``ready`` answers 2xx; stopped when the block ends."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: S603 - our argv
    base = ready.split("/", 3)[:3]
    try:
        deadline = time.monotonic() + 300
        while True:
            if child.poll() is not None:
                raise _fail(f"{name} exited with {child.returncode} (is its port free?)")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=2).is_success:
                    break
            if time.monotonic() > deadline:
                raise _fail(f"{name} did not start within 300 s")
            time.sleep(0.25)
        yield "/".join(base)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def _sandbox(
    host: str, port: int, seed: int, patients: int
) -> contextlib.AbstractContextManager[str]:
    """The emulated tenant in a child process."""
    command = [
        sys.executable,
        "-m",
        "carebridge",
        "sandbox",
        "serve",
        f"--host={host}",
        f"--port={port}",
        f"--seed={seed}",
        f"--patients={patients}",
        "--practices=2",
    ]
    return _child(command, None, f"http://{host}:{port}/_sandbox/credentials", "the sandbox")


async def _prepare(client: httpx.AsyncClient, key: str, home: Path) -> None:
    """Bodies with live ids: the first patient, a free slot tomorrow, a charge to bill."""
    auth = {"Authorization": f"Bearer {key}"}
    patients = await client.get("/patients", params={"limit": 1}, headers=auth)
    patients.raise_for_status()
    patient = patients.json()["data"][0]["id"]
    _write(home / "patient_id", patient)
    resources = (await client.get("/resources", headers=auth)).json()["data"]
    providers = (await client.get("/providers", headers=auth)).json()["data"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    booking: dict[str, Any] | None = None
    for resource in resources:
        for reason in resource["visit_reason_ids"]:
            slots = await client.get(
                "/availability",
                params={
                    "visit_reason_id": reason,
                    "resource_id": resource["id"],
                    "start": tomorrow.isoformat(),
                    "end": (tomorrow + timedelta(days=14)).isoformat(),
                },
                headers=auth,
            )
            if slots.is_success and slots.json()["data"]:
                slot = slots.json()["data"][0]
                booking = {
                    "patient_id": patient,
                    "resource_id": slot["resource_id"],
                    "location_id": slot["location_id"],
                    "visit_reason_id": reason,
                    "start": slot["start"],
                    "chief_complaint": "follow-up",
                }
                break
        if booking:
            break
    if booking is None:
        raise _fail("the sandbox offers no free slot in the next two weeks")
    _write(home / "create_appointment.json", json.dumps(booking, indent=2) + "\n")
    charge = await client.post(
        "/create_charge",
        json={
            "patient_id": patient,
            "procedure_code": "99213",
            "diagnosis_codes": ["J06.9"],
            # Yesterday in UTC is not in the future in any practice's time zone; today in UTC
            # is tomorrow for a US practice between midnight UTC and its own midnight.
            "service_date": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
            "provider_id": providers[0]["id"],
        },
        headers=auth | {"Idempotency-Key": f"run-charge-{secrets.token_hex(4)}"},
    )
    if charge.status_code != 201:
        raise _fail(f"could not prepare a charge to bill ({charge.status_code})")
    claim = {"patient_id": patient, "charge_ids": [charge.json()["data"]["id"]]}
    _write(home / "submit_claim.json", json.dumps(claim, indent=2) + "\n")


async def _onboard(url: str, sandbox: str, home: Path, ring: KeyRing) -> str:
    """A fresh store with the sandbox tenant, an API key and a sign-in user; returns the key."""
    for stale in home.glob(f"{DATABASE}*"):
        stale.unlink()
    deployment = await open_deployment(url, ring)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            document = (await client.get(f"{sandbox}/_sandbox/credentials")).json()
        settings, vaulted = from_sandbox(document, practice=0)
        name = "Emulated CareCloud practice"
        tenant = TenantSpec(TENANT, name, "carecloud", settings, vaulted)
        await deployment.admin.onboard(SHELL, tenant)
        password = secrets.token_urlsafe(12)
        scopes = ["patient.read", "appointment.read", "appointment.write"]
        user = UserSpec(TENANT, "frontdesk", scopes, password=password)
        await deployment.admin.add_user(SHELL, user)
        new_key = await deployment.admin.mint_key(SHELL, KeySpec(TENANT, SCOPES, "make run"))
    finally:
        await deployment.aclose()
    _write(home / "api_key", new_key.key)
    sign_in = {"tenant": TENANT, "username": "frontdesk", "password": password}
    _write(home / "authenticate.json", json.dumps(sign_in) + "\n")
    hook = {"url": WEBHOOK_RECEIVER, "event_types": ["appointment.*", "claim.*"]}
    _write(home / "webhook.json", json.dumps(hook, indent=2) + "\n")
    return new_key.key


@contextlib.contextmanager
def _api(host: str, port: int, url: str, ring: KeyRing) -> Iterator[str]:
    """carebridge's API in a child process (granian), until the block ends."""
    allow = ",".join(filter(None, (LOOPBACK, os.environ.get(ALLOW_ENV))))
    env = os.environ | {
        "CAREBRIDGE_DATABASE_URL": url,
        "CAREBRIDGE_VAULT_KEY": ring.to_text(),
        ALLOW_ENV: allow,  # the README's local receivers
    }
    env.pop("CAREBRIDGE_VAULT_KEY_FILE", None)
    command = granian(host, port, "--log-level", "warning")
    with _child(command, env, f"http://{host}:{port}/health", "carebridge") as base:
        yield base


def run_command(
    host: Annotated[str, typer.Option(help="Interface for both servers.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="carebridge's port.")] = 8700,
    sandbox_port: Annotated[int, typer.Option(min=1, max=65535, help="The sandbox's port.")] = 8701,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic practice.")] = 42,
    patients: Annotated[int, typer.Option(min=10, max=200_000, help="Sandbox patients.")] = 120,
    home: Annotated[Path, typer.Option(help="Where the demo's store and files go.")] = Path(
        ".carebridge"
    ),
) -> None:
    """Run the emulated CareCloud and carebridge against it, and print curl lines."""
    if port == sandbox_port:
        raise _fail("--port and --sandbox-port must differ")
    home = home.resolve()
    if not home.is_relative_to(Path.cwd()):
        raise _fail("--home must be inside the current directory")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with stop_signals(), run_lock(home):
            _free(host, port, sandbox_port)
            _run(host, port, sandbox_port, seed, patients, home)
    except Stopped:
        typer.echo("carebridge: stopped.", err=True)
        raise typer.Exit(0) from None


def _run(host: str, port: int, sandbox_port: int, seed: int, patients: int, home: Path) -> None:
    """The run itself, under the lock and the stop signals."""
    key_file = home / VAULT_KEY
    vault_file = "CAREBRIDGE_VAULT_KEY" not in os.environ
    if not vault_file:
        ring = admin.key_ring()
    else:
        if not key_file.exists():
            _write(key_file, admin.new_key_ring().to_text())
        ring = admin.parse_key_ring(key_file.read_text().strip())
    url = f"sqlite:///{home / DATABASE}"
    try:
        with _sandbox(host, sandbox_port, seed, patients) as sandbox:
            key = asyncio.run(_onboard(url, sandbox, home, ring))
            with _api(host, port, url, ring) as base:
                typer.echo("carebridge: reading the practice through the connector ...")
                asyncio.run(_prepared(base, key, home))
                typer.echo(
                    f"carebridge is serving {base} (OpenAPI: {base}/docs), upstream {sandbox}"
                )
                typer.echo(f"tenant {TENANT}; the key, a user and request bodies are in {home}/\n")
                typer.echo("point the CLI in another shell at this store and vault:")
                typer.echo(export_line(home, vault_file=vault_file) + "\n")
                for line in curl_lines(base, str(home.relative_to(Path.cwd()))):
                    typer.echo(line)
                typer.echo("\nCtrl-C stops both.")
                while True:
                    time.sleep(3600)
    except (CarebridgeError, httpx.HTTPError) as err:
        raise _fail(str(err) or type(err).__name__) from None


async def _prepared(base: str, key: str, home: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        await _prepare(client, key, home)


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8700,
    workers: Annotated[int, typer.Option(min=1, max=64, help="granian workers.")] = 1,
) -> None:
    """Serve the API with granian over the store of CAREBRIDGE_DATABASE_URL."""
    if "CAREBRIDGE_VAULT_KEY" not in os.environ and "CAREBRIDGE_VAULT_KEY_FILE" not in os.environ:
        raise _fail("set CAREBRIDGE_VAULT_KEY or CAREBRIDGE_VAULT_KEY_FILE")
    _free(host, port)
    typer.echo(f"carebridge: serving {admin.database_url()} on http://{host}:{port}")
    command = granian(host, port, "--workers", str(workers))
    with stop_signals():
        server = subprocess.Popen(command)  # noqa: S603 - fixed argv
        try:
            code = server.wait()
        except Stopped:
            server.terminate()
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                code = server.wait()
    raise typer.Exit(code)
