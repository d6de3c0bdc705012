"""The event loop carebridge's own processes run on: uvloop where it is installed, asyncio's
otherwise, or when ``CAREBRIDGE_EVENT_LOOP=asyncio`` says so.

A sync is CPU-bound in this process (each request's sending, parsing, mapping and saving), and
asyncio's pure-Python loop is a sixth of that CPU; uvloop's loop, written in C over libuv, runs
the same coroutines for less (ADR 0022). The API server's loop is granian's (``--loop``); this
module is for the commands that run a coroutine themselves: ``carebridge sync``, the worker,
exports.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, TypeVarTuple

import anyio

from carebridge.errors import ConfigError

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

LOOP_ENV = "CAREBRIDGE_EVENT_LOOP"
LOOPS = ("auto", "uvloop", "asyncio")


def choice(environ: Mapping[str, str] | None = None) -> str:
    """The loop to run on: ``uvloop`` or ``asyncio`` (``CAREBRIDGE_EVENT_LOOP``: ``auto``, the
    default, is uvloop when it is installed).

    Raises:
        ConfigError: the setting names no loop, or names uvloop where it is not installed.
    """
    text = (os.environ if environ is None else environ).get(LOOP_ENV, "").strip().lower()
    wanted = text or "auto"
    if wanted not in LOOPS:
        raise ConfigError(f"{LOOP_ENV} must be one of {', '.join(LOOPS)}")
    installed = importlib.util.find_spec("uvloop") is not None
    if wanted == "uvloop" and not installed:
        raise ConfigError(f"{LOOP_ENV}=uvloop, but uvloop is not installed")
    if wanted == "asyncio" or not installed:
        return "asyncio"
    return "uvloop"


def backend_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``anyio.run``'s options for the chosen loop."""
    return {"use_uvloop": choice(environ) == "uvloop"}


def run(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``fn(*args)`` to completion on a new loop of the chosen kind.

    Raises:
        ConfigError: ``CAREBRIDGE_EVENT_LOOP`` is invalid (before anything runs).
    """
    return anyio.run(fn, *args, backend="asyncio", backend_options=backend_options())
