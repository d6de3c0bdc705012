"""The conformance checks that need no control plane, against a real CareCloud tenant.

Marked ``live`` (deselected by default; run with ``pytest -m live``) and skipped unless the
credentials are in the environment (``conformance.py`` lists them). The checks are the ones
``test_resilience.py`` runs against the sandbox, which adds faults on top.
"""

from __future__ import annotations

import pytest
from tests.connectors import conformance
from tests.connectors.conformance import live_target

pytestmark = [pytest.mark.live, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_live_v2_refresh_once_and_read_pages() -> None:
    await conformance.v2_refreshes_once_and_reads(live_target("v2"))


async def test_live_portal_sign_in_with_totp() -> None:
    target = live_target("portal")
    assert target.totp_portal is not None
    await conformance.portal_signs_in(target, target.totp_portal)


async def test_live_connector_backend_token_and_search() -> None:
    await conformance.connector_backend_token_reads_patients(live_target("fhir"))
