"""carebridge's own processes run their coroutines on uvloop where it is installed, on asyncio's
loop when ``CAREBRIDGE_EVENT_LOOP=asyncio`` says so, and refuse a bad setting in one line."""

from __future__ import annotations

import asyncio
import gc
import weakref
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


# --- the collector -------------------------------------------------------------------------


async def _thresholds_inside() -> tuple[int, int, int]:
    return gc.get_threshold()


def test_throughput_is_the_default_and_python_keeps_the_interpreters_thresholds() -> None:
    assert loop.collector({}) == loop.THROUGHPUT
    assert loop.collector({loop.GC_ENV: " Throughput "}) == loop.THROUGHPUT
    assert loop.collector({loop.GC_ENV: "python"}) is None
    assert loop.THROUGHPUT[0] == loop.YOUNG > 700


@pytest.mark.parametrize("bad", ["off", "fast", "0"])
def test_a_collector_mode_it_does_not_know_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=loop.GC_ENV):
        loop.collector({loop.GC_ENV: bad})
    with pytest.raises(ConfigError, match=loop.GC_ENV):
        loop.check({loop.GC_ENV: bad})


def test_run_sets_the_collector_while_it_runs_and_puts_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    monkeypatch.delenv(loop.GC_ENV, raising=False)
    assert loop.run(_thresholds_inside) == loop.THROUGHPUT
    assert gc.get_threshold() == before
    monkeypatch.setenv(loop.GC_ENV, "python")
    assert loop.run(_thresholds_inside) == before
    assert gc.get_threshold() == before


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def _cycle_collected_without_asking() -> bool:
    """A cycle dropped, then more than a young generation's worth of containers kept: the
    collector ran on its own and took the cycle (the count starts from a collection, so the
    cycle is young when it does)."""
    gc.collect()
    cycle = _Cycle()
    gone = weakref.ref(cycle)
    del cycle
    kept: list[list[int]] = [[] for _ in range(loop.YOUNG + 1_000)]
    return len(kept) > loop.YOUNG and gone() is None


def test_cyclic_garbage_is_still_collected_under_throughput(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loop.GC_ENV, raising=False)
    assert loop.run(_cycle_collected_without_asking)


def test_the_cli_refuses_a_bad_collector_mode_in_one_line(tmp_path: Path) -> None:
    env = {
        "CAREBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CAREBRIDGE_VAULT_KEY": KeyRing({"k1": bytes(KEY_BYTES)}, "k1").to_text(),
        loop.GC_ENV: "off",
    }
    result = CliRunner().invoke(app, ["sync"], env=env)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"error: {loop.GC_ENV} must be one of throughput, python" in result.output
