"""Routes of the fhir surface."""

from __future__ import annotations

from starlette.routing import BaseRoute

from carebridge.sandbox.tenant import Tenant


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The surface's routes, including its control-plane routes under /_sandbox."""
    del tenant
    return []
