"""The ``carebridge`` command."""

from __future__ import annotations

import typer

from carebridge.cli.admin import audit_app, keys_app, tenants_app, vault_app
from carebridge.cli.export import export_command
from carebridge.cli.mcp import mcp_command
from carebridge.cli.run import run_command, serve_command
from carebridge.cli.sandbox import sandbox_app
from carebridge.cli.sync import sync_command
from carebridge.cli.users import users_app
from carebridge.cli.worker import worker_command

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="carebridge: CareCloud, normalized."
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(vault_app, name="vault")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.command("run")(run_command)
app.command("serve")(serve_command)
app.command("export")(export_command)
app.command("sync")(sync_command)
app.command("worker")(worker_command)
app.command("mcp")(mcp_command)


def main() -> None:
    """Run the CLI."""
    app()
