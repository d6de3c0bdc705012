"""Fixtures of the connector tests: one small tenant (seed 1, 40 patients, one practice) in
process per module that asks for it (``live``), a Connector client with a SMART backend-services
token (``fhir``), every resource the FHIR mappers read, searched once (``resources``), and the
patients' index (``index``). A module that needs another tenant defines its own ``live``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.connectors.harness import InProcessTenant, of, open_tenant, search_all
from tests.support.sandbox import ANCHOR, fhir_base, smart_token

from carebridge.connectors.carecloud.mapping import fhir as f
from carebridge.connectors.carecloud.wire import fhir as w
from carecloud_sandbox.config import SandboxConfig


@pytest.fixture(scope="module")
def live() -> Iterator[InProcessTenant]:
    tenant, transport = open_tenant(SandboxConfig(seed=1, patients=40, practices=1, anchor=ANCHOR))
    yield tenant
    transport.shut()
    tenant.tenant.db.close()


@pytest.fixture(scope="module")
def fhir(live: InProcessTenant) -> Iterator[httpx.Client]:
    """A Connector client with a SMART backend-services token."""
    headers = {"Authorization": f"Bearer {smart_token(live)}"}
    with httpx.Client(base_url=fhir_base(live), headers=headers, transport=live.transport) as c:
        yield c


@pytest.fixture(scope="module")
def resources(fhir: httpx.Client) -> dict[str, list[w.Resource]]:
    """Every resource of every type the mappers read, searched once."""
    return {name: search_all(fhir, name) for name in w.RESOURCE_TYPES}


@pytest.fixture(scope="module")
def index(resources: dict[str, list[w.Resource]]) -> f.PatientIndex:
    return f.PatientIndex.from_patients(of(resources, w.Patient))
