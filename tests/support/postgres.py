"""PostgreSQL for the tests: the server CI runs at 127.0.0.1:5432, one fresh database a test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_ADMIN = f"{SERVER}/test"
"""The database the fresh ones are created from and dropped through."""


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database named ``cb_test_<random>``; yields its URL and drops it after."""
    name = f"cb_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
