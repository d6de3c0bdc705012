"""The event loop carebridge's own processes run on: uvloop where it is installed, asyncio's
otherwise, or when ``CAREBRIDGE_EVENT_LOOP=asyncio`` says so; and how often the cyclic garbage
collector runs meanwhile (``CAREBRIDGE_GC``).

A sync is CPU-bound in this process (each request's sending, parsing, mapping and saving), and
asyncio's pure-Python loop is a sixth of that CPU; uvloop's loop, written in C over libuv, runs
the same coroutines for less (ADR 0022). The API server's loop is granian's (``--loop``); this
module is for the commands that run a coroutine themselves: ``carebridge sync``, the worker,
exports.

**The collector.** Python starts a young-generation collection every 700 container allocations
(net of frees) and a full one as the survivors grow by a quarter. A sync allocates millions of
short-lived containers (parsed answers, wire and domain models, rows) and keeps a few hundred
thousand (the crosswalk's people, caches, SQLAlchemy's statements): at the interpreter's
thresholds the collector made ~2,100 young, ~190 middle and ~17 full collections in a
10,000-patient sync, each full one a walk of ~230,000 objects, about a sixth of the sync's CPU.
Almost everything it walks is freed by reference counting anyway, or is alive. ``throughput``
(the default) starts a young collection every :data:`YOUNG` allocations instead (~210 young,
~18 middle, 1 full in the same sync); cyclic garbage is still collected, only later, so memory
stays bounded by what :data:`YOUNG` containers hold. ``python`` keeps the interpreter's
thresholds. Either way, :func:`run` puts the interpreter's thresholds back when it returns.
"""

from __future__ import annotations

import gc
import importlib.util
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, TypeVarTuple

import anyio

from carebridge.errors import ConfigError

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

LOOP_ENV = "CAREBRIDGE_EVENT_LOOP"
LOOPS = ("auto", "uvloop", "asyncio")
GC_ENV = "CAREBRIDGE_GC"
GC_MODES = ("throughput", "python")
YOUNG = 50_000
"""Container allocations (net of frees) between two young-generation collections under
``throughput`` (the interpreter's default is 700)."""
THROUGHPUT = (YOUNG, 20, 20)
"""The collector's thresholds under ``throughput``: a middle collection every 20 young ones, a
full one every 20 middle ones (and, as always, only once the survivors grew by a quarter)."""


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


def collector(environ: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """The collector's thresholds while a command runs (``CAREBRIDGE_GC``: ``throughput``, the
    default, or ``python`` for the interpreter's own, answered as None).

    Raises:
        ConfigError: the setting names no mode.
    """
    text = (os.environ if environ is None else environ).get(GC_ENV, "").strip().lower()
    wanted = text or "throughput"
    if wanted not in GC_MODES:
        raise ConfigError(f"{GC_ENV} must be one of {', '.join(GC_MODES)}")
    return THROUGHPUT if wanted == "throughput" else None


def check(environ: Mapping[str, str] | None = None) -> None:
    """Refuse bad ``CAREBRIDGE_EVENT_LOOP`` and ``CAREBRIDGE_GC`` settings (before a command
    starts anything).

    Raises:
        ConfigError: either setting is invalid.
    """
    choice(environ)
    collector(environ)


@contextmanager
def _thresholds(wanted: tuple[int, int, int] | None) -> Iterator[None]:
    """The collector at ``wanted`` (None: as it is) until the block ends, then as it was."""
    if wanted is None:
        yield
        return
    before = gc.get_threshold()
    gc.set_threshold(*wanted)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def run(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``fn(*args)`` to completion on a new loop of the chosen kind, with the collector as
    ``CAREBRIDGE_GC`` says.

    Raises:
        ConfigError: ``CAREBRIDGE_EVENT_LOOP`` or ``CAREBRIDGE_GC`` is invalid (before anything
            runs).
    """
    options = backend_options()
    with _thresholds(collector()):
        return anyio.run(fn, *args, backend="asyncio", backend_options=options)
