"""The ``carebridge sandbox`` command: help, and bad options as one readable line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from carebridge.cli.main import app


def test_help_lists_the_serve_options() -> None:
    result = CliRunner().invoke(app, ["sandbox", "serve", "--help"])
    assert result.exit_code == 0
    assert "--state" in result.output


def test_bad_anchor_is_one_line_and_exit_code_2() -> None:
    result = CliRunner().invoke(app, ["sandbox", "serve", "--anchor", "tomorrow"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--anchor" in result.output


def test_a_corrupt_state_file_is_refused_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(app, ["sandbox", "serve", "--state", str(bad), "--patients", "5"])
    assert result.exit_code == 2
    assert "not a usable tenant database" in result.output
