"""v2 routes (being written)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from carebridge.sandbox.tenant import Tenant


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The routes of this module."""
    del tenant
    return []
