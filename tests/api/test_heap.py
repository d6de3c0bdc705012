"""The API process's garbage collector (``carebridge.api.heap``): once the app is built, what
start-up made is frozen out of the collector's scans and the youngest generation is allowed to
grow, once per process. Checked in a fresh process: freezing is process-wide, and this test
process must keep CPython's settings."""

from __future__ import annotations

import json
import subprocess
import sys

from carebridge.api.heap import YOUNG_THRESHOLD

_PROBE = """
import gc, json
from carebridge.api import heap
before = (gc.get_threshold(), gc.get_freeze_count())
made = [[i] for i in range(1000)]  # objects that live on, as an app's do
first = heap.settle()
after = (gc.get_threshold(), gc.get_freeze_count())
second = heap.settle()
print(json.dumps({"before": before, "after": after, "first": first, "second": second,
                  "again": (gc.get_threshold(), gc.get_freeze_count())}))
"""


def test_settle_freezes_start_up_and_raises_the_young_threshold_once() -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed probe
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    (young, middle, oldest), frozen = seen["before"]
    assert frozen == 0
    assert young < YOUNG_THRESHOLD
    (young_after, middle_after, oldest_after), frozen_after = seen["after"]
    assert (young_after, middle_after, oldest_after) == (YOUNG_THRESHOLD, middle, oldest)
    assert frozen_after > 1000  # the probe's lists, with every module's objects
    assert seen["first"] is True
    assert seen["second"] is False
    assert seen["again"] == seen["after"]  # a second call freezes nothing more
