"""The API process's garbage collector, set for serving (issue 13, ADR 0018's amendment).

CPython's collector counts container objects allocated and not yet freed; every 700 it scans
the youngest generation, and objects alive at that moment (those of the requests in flight:
32 concurrent requests hold thousands) move to older generations, until a full collection
scans every object in the process: the app's routes, models and schemas, SQLAlchemy's
metadata, the imported modules (about 135,000 objects, 60 ms on the bench machine). The event
loop is stopped all that time, so each full collection was the tail of every request in
flight: 12 of them in 6 s of load, under 62 % of the slowest 1 % of requests.

:func:`settle` is called once the app is built and its store open: it collects what start-up
left, moves every surviving object out of the collector's reach (``gc.freeze``: they live as
long as the process anyway), and lets the youngest generation grow to
:data:`YOUNG_THRESHOLD` objects, so a request's objects are mostly freed by their reference
counts before a scan sees them. Cycles made while serving are still collected; a full
collection then scans only what was made after start-up.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (net of frees) between scans of the youngest generation (CPython's: 700)."""

_settled = False


def settle() -> bool:
    """Collect, freeze what survives, and raise the youngest generation's threshold; once per
    process (False when an earlier call did it: apps built again, in tests, freeze nothing
    more)."""
    global _settled
    if _settled:
        return False
    _settled = True
    gc.collect()
    gc.freeze()
    young, middle, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, oldest)
    return True
