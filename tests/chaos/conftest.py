"""The chaos suite's figures: each scenario records what it compared and what it found, and the
run ends with one table of them (and, when ``CHAOS_REPORT`` names a file, the same rows as JSON
lines appended to it).

The short form of every scenario runs in the default suite (and so in CI); ``make chaos`` runs
the long form too: more seeds, more kills, more duplicates.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import orjson
import pytest
from tests.chaos.figures import COLUMNS, Figures

_RECORDED: list[Figures] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """A scenario's figures, kept for the run's closing table."""
    found = Figures(scenario=request.node.name)
    yield found
    _RECORDED.append(found)
    target = os.environ.get("CHAOS_REPORT")
    if target:
        with open(target, "ab") as out:
            out.write(orjson.dumps(asdict(found)) + b"\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RECORDED:
        return
    write = terminalreporter.write_line
    terminalreporter.section("chaos figures")
    width = max(len(f.scenario) for f in _RECORDED)
    write(f"{'scenario':<{width}}  " + "  ".join(f"{c:>10}" for c in COLUMNS))
    totals = dict.fromkeys(COLUMNS, 0)
    for f in _RECORDED:
        cells = {c: (len(f.seeds) if c == "seeds" else getattr(f, c)) for c in COLUMNS}
        for c in COLUMNS:
            totals[c] += cells[c]
        write(f"{f.scenario:<{width}}  " + "  ".join(f"{cells[c]:>10}" for c in COLUMNS))
        if f.notes:
            write(f"{'':<{width}}  " + ", ".join(f"{k}={v}" for k, v in f.notes.items()))
    write(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>10}" for c in COLUMNS))
