"""``python -m carebridge``: the CLI."""

from carebridge.cli.main import main

main()
