"""Alembic migrations of the store (run through :mod:`carebridge.store.migrate`)."""
