"""Fixtures shared by the whole suite.

Retries: every test runs with stamina's testing mode on, capped rather than overridden, so each
call keeps the attempts its policy configures but never waits between them (the connector's
backoffs would otherwise sleep in real time). A test that needs other attempts says so with its
own ``stamina.set_testing`` block, which nests inside this one.

Fixtures more than one test package uses are defined here, once, over ``tests/support/`` (where
the helpers they build on live); test modules name them as parameters and never import them:

- ``pg_url``: a fresh PostgreSQL database (the server CI runs at 127.0.0.1:5432), dropped
  afterwards (the store's, the API's, the events', the jobs', the services' and the chaos
  suite's ``postgres`` tests);
- ``sandbox``: the emulated tenant served over HTTP by ``carebridge sandbox serve`` in a child
  process (40 patients, one practice), as its base URL (the jobs' and the sync lease's tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina
from tests.support.postgres import fresh_database
from tests.support.processes import served_sandbox

ATTEMPTS_CAP = 1_000
"""High enough never to cut a policy's own attempts short."""


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=ATTEMPTS_CAP, cap=True):
        yield


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def sandbox() -> Iterator[str]:
    """The emulated tenant served over HTTP from a child process: its base URL."""
    with served_sandbox(patients=40, practices=1) as base:
        yield base
