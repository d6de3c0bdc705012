"""Every resource a small tenant's Connector serves validates with ``fhir.resources.R4B``: all
of a full bulk export after the activity clock has run, and every page of every search."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from tests.support.sandbox import ANCHOR, LiveTenant, fhir_base, smart_token, start_live

from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.fhir.catalog import TYPES


@pytest.fixture(scope="module")
def small() -> Iterator[LiveTenant]:
    config = SandboxConfig(
        seed=11, patients=16, practices=2, anchor=ANCHOR, appointments_per_patient=8
    )
    tenant, stop = start_live(config)
    with tenant.client() as c:  # let the practice work a day, so clock-made rows are served too
        assert c.post("/_sandbox/clock/advance", json={"minutes": 24 * 60}).status_code == 200
    yield tenant
    stop()


def _valid(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.mark.parametrize("practice", [0, 1])
def test_every_exported_resource_validates(small: LiveTenant, practice: int) -> None:
    headers = {"Authorization": f"Bearer {smart_token(small)}"}
    with small.client() as http:
        kickoff = http.get(
            f"{fhir_base(small, practice)}/Patient/$export",
            headers={**headers, "Prefer": "respond-async"},
        )
        assert kickoff.status_code == 202
        small.clock.advance(timedelta(seconds=small.tenant.config.bulk_export_seconds))
        headers = {"Authorization": f"Bearer {smart_token(small)}"}
        manifest = http.get(kickoff.headers["content-location"], headers=headers).json()
        counts: dict[str, int] = {}
        for output in manifest["output"]:
            r = http.get(output["url"], headers=headers)
            assert r.status_code == 200
            for line in r.content.splitlines():
                resource = orjson.loads(line)
                assert resource["resourceType"] == output["type"]
                _valid(resource)
                counts[output["type"]] = counts.get(output["type"], 0) + 1
    for kind in ("Patient", "Encounter", "Observation", "Coverage", "Condition"):
        assert counts.get(kind, 0) > 0, kind


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_every_search_page_validates(small: LiveTenant, kind: str) -> None:
    headers = {"Authorization": f"Bearer {smart_token(small)}"}
    seen = 0
    with httpx.Client(timeout=10, headers=headers) as http:
        for practice in (0, 1):
            url: str | None = f"{fhir_base(small, practice)}/{kind}?_count=200"
            while url:
                bundle = http.get(url).json()
                _valid(bundle)  # the Bundle with all its entries
                seen += len(bundle.get("entry", []))
                url = next(
                    (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"),
                    None,
                )
    assert seen > 0
