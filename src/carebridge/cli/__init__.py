"""The command-line entry point (Typer): thin commands over services."""
