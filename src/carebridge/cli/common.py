"""What every command shares: one ``error:`` line and exit 2 for bad input, and the vault key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from carebridge.errors import CarebridgeError
from carebridge.wiring import loop
from carebridge.wiring.admin import KeyRing, key_ring

T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise (code 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine function on carebridge's event loop (:mod:`carebridge.wiring.loop`); a
    carebridge error or a bad value (an unsupported store URL, unknown scopes) becomes one
    ``error:`` line."""
    try:
        return loop.run(fn)
    except (CarebridgeError, ValueError) as err:
        raise fail(str(err)) from None


def ring() -> KeyRing:
    """The vault's key ring from ``CAREBRIDGE_VAULT_KEY`` (or its key file)."""
    try:
        return key_ring()
    except CarebridgeError as err:
        raise fail(str(err)) from None
