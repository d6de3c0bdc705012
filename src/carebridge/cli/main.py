"""The ``carebridge`` command."""

from __future__ import annotations

import typer

from carebridge.cli.sandbox import sandbox_app

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="carebridge: CareCloud, normalized."
)
app.add_typer(sandbox_app, name="sandbox")


def main() -> None:
    """Run the CLI."""
    app()
