"""Fixtures shared by the whole suite.

Retries: every test runs with stamina's testing mode on, capped rather than overridden, so each
call keeps the attempts its policy configures but never waits between them (the connector's
backoffs would otherwise sleep in real time). A test that needs other attempts says so with its
own ``stamina.set_testing`` block, which nests inside this one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

ATTEMPTS_CAP = 1_000
"""High enough never to cut a policy's own attempts short."""


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=ATTEMPTS_CAP, cap=True):
        yield
