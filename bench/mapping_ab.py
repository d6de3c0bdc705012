"""Paired A/B of the v2 patient path's CPU: this checkout against another, in one process.

Run: ``.venv/bin/python bench/mapping_ab.py <other checkout>`` (``PATIENTS``, 500; ``ROUNDS``, 5).

``bench/mapping.py`` run once per checkout compares runs minutes apart, which a busy machine
(other processes on the same cores) skews by more than a change is worth. Here both run in one
process: the other checkout's ``src/carebridge`` is copied to a temporary directory as the
package ``carebridge_b`` (its imports renamed), the same bodies are checked by each checkout's
own drift check and wire models, and the two are timed in alternating batches of 25 patients
(``time.process_time``), so a slow spell costs both alike. For each step (the drift check of
the show and balance bodies; ``map_patient`` with the balances and the dropped-field tally) it
prints µs of CPU per patient for each checkout, the ratio and its per-round range. Before
timing, it asserts that both map every patient to the same record (JSON), the same given
fields and the same dropped report.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from mapping import BALANCE, SHOWN, capture
from pydantic import BaseModel

PATIENTS = int(os.environ.get("PATIENTS", "500"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
BATCH = 25

Step = Callable[[int, int], float]


def _renamed_copy(checkout: Path, into: Path) -> None:
    """``checkout``'s ``src/carebridge`` as the package ``carebridge_b`` under ``into``."""
    target = into / "carebridge_b"
    shutil.copytree(checkout / "src" / "carebridge", target)
    name = re.compile(r"\bcarebridge(?=[.\s]|$)", re.MULTILINE)
    for path in target.rglob("*.py"):
        path.write_text(name.sub("carebridge_b", path.read_text()))


def _fields(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return (
            sorted(value.model_fields_set),
            [_fields(getattr(value, n)) for n in type(value).model_fields],
        )
    if isinstance(value, tuple | list):
        return [_fields(v) for v in value]
    return None


class Side:
    """One checkout's drift check and mapping over the same bodies."""

    def __init__(self, root: str, bodies: list[tuple[bytes, bytes]]) -> None:
        drift = importlib.import_module(f"{root}.connectors.carecloud.drift")
        self.vmap = importlib.import_module(f"{root}.connectors.carecloud.mapping.v2")
        self.common = importlib.import_module(f"{root}.connectors.carecloud.mapping.common")
        vw = importlib.import_module(f"{root}.connectors.carecloud.wire.v2")
        self.drift, self.vw, self.bodies = drift, vw, bodies
        self.report = drift.DriftReport(clock=lambda: datetime.now(UTC))
        self.checked = [self._check(show, balance) for show, balance in bodies]
        self.dropped: Counter[str] = Counter()

    def _check(self, show: bytes, balance: bytes) -> tuple[Any, Any]:
        wire = self.drift.check(orjson.loads(show), self.vw.PatientShowResponse, SHOWN, self.report)
        rows = self.drift.check_list(
            orjson.loads(balance), self.vw.BalancePayload, BALANCE, self.report
        )
        return wire, rows

    def mapped(self, index: int, fetched_at: datetime) -> Any:
        wire, rows = self.checked[index]
        ctx = self.common.Context(tenant="t1", surface="v2", endpoint=SHOWN, fetched_at=fetched_at)
        return self.vmap.map_patient(wire.patient, ctx, balances=rows)

    def check(self, lo: int, hi: int) -> float:
        started = time.process_time()
        for show, balance in self.bodies[lo:hi]:
            self._check(show, balance)
        return time.process_time() - started

    def map(self, lo: int, hi: int) -> float:
        started = time.process_time()
        for index in range(lo, hi):
            mapped = self.mapped(index, datetime.now(UTC))
            if mapped.dropped:
                self.dropped.update(mapped.dropped)
        return time.process_time() - started


def paired(name: str, a: Step, b: Step, count: int) -> None:
    a(0, count), b(0, count)  # warm both (shapes, spellings, memos)
    total_a = total_b = 0.0
    ratios = []
    for round_ in range(ROUNDS):
        in_a = in_b = 0.0
        for lo in range(0, count, BATCH):
            hi = min(lo + BATCH, count)
            if (lo // BATCH + round_) % 2:
                in_a += a(lo, hi)
                in_b += b(lo, hi)
            else:
                in_b += b(lo, hi)
                in_a += a(lo, hi)
        ratios.append(in_a / in_b)
        total_a, total_b = total_a + in_a, total_b + in_b
    per = 1e6 / ROUNDS / count
    print(
        f"{name:<28} this {total_a * per:7.1f} us  other {total_b * per:7.1f} us  "
        f"this/other {total_a / total_b:.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
    )


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: bench/mapping_ab.py <other checkout>")
    with tempfile.TemporaryDirectory() as tmp:
        _renamed_copy(Path(sys.argv[1]), Path(tmp))
        sys.path.insert(0, tmp)
        bodies = capture(PATIENTS)
        this, other = Side("carebridge", bodies), Side("carebridge_b", bodies)
        at = datetime(2026, 12, 1, tzinfo=UTC)
        for index in range(len(bodies)):
            mine, theirs = this.mapped(index, at), other.mapped(index, at)
            assert mine.value.model_dump_json() == theirs.value.model_dump_json()
            assert _fields(mine.value) == _fields(theirs.value)
            assert mine.dropped == theirs.dropped
        print(f"{len(bodies)} patients: the same records, given fields and dropped reports")
        paired("drift check + validation", this.check, other.check, len(bodies))
        paired("map_patient + dropped tally", this.map, other.map, len(bodies))


if __name__ == "__main__":
    main()
