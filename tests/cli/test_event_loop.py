"""carebridge's own processes run their coroutines on uvloop where it is installed, on asyncio's
loop when ``CAREBRIDGE_EVENT_LOOP=asyncio`` says so, and refuse a bad setting in one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carebridge.cli.main import app
from carebridge.errors import ConfigError
from carebridge.store.vault import KEY_BYTES, KeyRing
from carebridge.wiring import loop

uvloop = pytest.importorskip("uvloop")


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_is_uvloop_where_installed_and_asyncio_on_request() -> None:
    assert loop.choice({}) == "uvloop"
    assert loop.choice({loop.LOOP_ENV: " Auto "}) == "uvloop"
    assert loop.choice({loop.LOOP_ENV: "uvloop"}) == "uvloop"
    assert loop.choice({loop.LOOP_ENV: "asyncio"}) == "asyncio"
    assert loop.backend_options({loop.LOOP_ENV: "asyncio"}) == {"use_uvloop": False}


@pytest.mark.parametrize("bad", ["trio", "uv", "0"])
def test_a_loop_it_does_not_know_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=loop.LOOP_ENV):
        loop.choice({loop.LOOP_ENV: bad})


def test_run_uses_the_chosen_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop.LOOP_ENV, raising=False)
    assert loop.run(_loop_module).startswith("uvloop")
    monkeypatch.setenv(loop.LOOP_ENV, "asyncio")
    assert loop.run(_loop_module).startswith("asyncio")


def test_the_cli_refuses_a_bad_loop_in_one_line(tmp_path: Path) -> None:
    env = {
        "CAREBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CAREBRIDGE_VAULT_KEY": KeyRing({"k1": bytes(KEY_BYTES)}, "k1").to_text(),
        loop.LOOP_ENV: "trio",
    }
    result = CliRunner().invoke(app, ["sync"], env=env)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"error: {loop.LOOP_ENV} must be one of auto, uvloop, asyncio" in result.output
