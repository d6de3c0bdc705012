"""``carebridge sandbox``: the emulated CareCloud tenant.

The emulator is the sibling package ``carecloud_sandbox``, installed with the
``carebridge[sandbox]`` extra. This command is the only place the product reaches it, and it
imports it only when run, so a deployment without the extra still starts.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from carebridge.cli.common import fail as _fail

sandbox_app = typer.Typer(no_args_is_help=True, help="The emulated CareCloud tenant.")


@sandbox_app.command("serve")
def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to bind (keep it on loopback).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8700,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic practice.")] = 42,
    patients: Annotated[int, typer.Option(min=0, max=2_000_000, help="Patients in all.")] = 2000,
    practices: Annotated[int, typer.Option(min=1, max=50, help="Practices in the tenant.")] = 2,
    state: Annotated[
        Path | None, typer.Option(help="SQLite file that keeps the tenant across restarts.")
    ] = None,
    anchor: Annotated[
        str | None, typer.Option(help="The generator's 'today' (YYYY-MM-DD); default today.")
    ] = None,
    rate_limit: Annotated[
        float, typer.Option(min=0, help="Hidden per-client limit in requests/s (0 = off).")
    ] = 0.0,
    token_ttl: Annotated[int, typer.Option(min=1, help="Access token lifetime, seconds.")] = 3600,
    rotate_refresh_tokens: Annotated[
        bool, typer.Option(help="Issue a new refresh token on every refresh.")
    ] = False,
    realtime: Annotated[
        bool,
        typer.Option(help="Let the practice work as wall-clock time passes (the activity clock)."),
    ] = False,
) -> None:
    """Generate (or reopen) a tenant, print its credentials, and serve it until stopped."""
    try:
        from carecloud_sandbox.config import SandboxConfig
        from carecloud_sandbox.serve import open_tenant, serve
    except ImportError as err:
        raise _fail(
            f"the emulated tenant is not installed ({err.name}); install carebridge[sandbox]"
        ) from None

    try:
        anchor_date = date.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise _fail(f"--anchor must be a date like 2026-11-24, not {anchor!r}") from None
    if state is not None and state.exists() and state.is_dir():
        raise _fail(f"--state {state} is a directory; give a file path")
    config = SandboxConfig(
        seed=seed,
        patients=patients,
        practices=practices,
        anchor=anchor_date,
        rate_limit_rps=rate_limit,
        access_token_ttl=token_ttl,
        rotate_refresh_tokens=rotate_refresh_tokens,
        base_url=f"http://{host}:{port}",
    )
    try:
        tenant = open_tenant(config, state)
    except sqlite3.DatabaseError as err:
        raise _fail(f"--state {state} is not a usable tenant database ({err})") from None
    try:
        serve(tenant, host, port, realtime=realtime)
    except OSError as err:
        raise _fail(f"cannot serve on {host}:{port} ({err.strerror or err})") from None
