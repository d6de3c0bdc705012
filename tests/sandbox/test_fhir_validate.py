"""Resources the Connector serves validate as FHIR with ``fhir.resources.R4B``: each type's
search walked page by page in both practices (up to ``PAGES`` pages of ``PAGE`` entries: the
validator runs at about a thousand resources a second), and the NDJSON lines of a bulk export
(every line of files up to ``SAMPLE`` lines, an even spread of ``SAMPLE`` lines of larger ones)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from tests.support.sandbox import LiveTenant, fhir_base, smart_credentials, smart_token

from carecloud_sandbox.fhir.catalog import TYPES
from carecloud_sandbox.fhir.resources import VITAL_SIGNS


# Observation has ~8 resources per visit; its vital signs are walked a page per LOINC code.
@pytest.fixture(scope="module")
def live(fhir_live: LiveTenant) -> LiveTenant:
    """The Connector modules share one tenant (see ``fhir_live``)."""
    return fhir_live


WALKED = [name for name in TYPES if name != "Observation"]
PAGE = 100
PAGES = 2
SAMPLE = 100


def _validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.fixture(scope="module")
def headers(live: LiveTenant, fhir_http: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {smart_token(live, http=fhir_http)}"}


def _walk(http: httpx.Client, url: str, headers: dict[str, str], pages: int | None = None) -> int:
    """Validate every entry of every page (or the first ``pages``); return how many."""
    seen: set[str] = set()
    bundle: dict[str, Any] = {}
    next_url: str | None = url
    done = 0
    while next_url and (pages is None or done < pages):
        r = http.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        bundle = r.json()
        _validate(bundle)  # the searchset Bundle itself, entries included
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            key = f"{resource['resourceType']}/{resource['id']}"
            assert key not in seen, key
            seen.add(key)
            assert entry["fullUrl"].endswith(key)
            assert resource["meta"]["lastUpdated"].endswith("Z")
        next_url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
        done += 1
    if pages is None:
        assert len(seen) == bundle["total"]
    return len(seen)


@pytest.mark.parametrize("practice", [0, 1])
@pytest.mark.parametrize("name", WALKED)
def test_every_search_result_validates(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str], practice: int, name: str
) -> None:
    url = f"{fhir_base(live, practice)}/{name}?_count={PAGE}"
    assert _walk(fhir_http, url, headers, pages=PAGES) > 0


@pytest.mark.parametrize("practice", [0, 1])
def test_observations_validate(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str], practice: int
) -> None:
    base = f"{fhir_base(live, practice)}/Observation"
    url = f"{base}?category=laboratory&_count={PAGE}"
    assert _walk(fhir_http, url, headers, pages=PAGES) > 0
    for sign in VITAL_SIGNS:
        url = f"{base}?code=http://loinc.org|{sign.loinc}&_count=25"
        assert _walk(fhir_http, url, headers, pages=1) > 0


def test_capability_statement_and_group_validate(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    base = fhir_base(live)
    _validate(fhir_http.get(f"{base}/metadata").json())
    group = smart_credentials(live)["practices"][0]["group_id"]
    _validate(fhir_http.get(f"{base}/Group/{group}", headers=headers).json())
    _validate(fhir_http.get(f"{base}/Patient?bogus=1", headers=headers).json())


def test_bulk_ndjson_lines_validate(
    live: LiveTenant, fhir_http: httpx.Client, headers: dict[str, str]
) -> None:
    group = smart_credentials(live)["practices"][1]["group_id"]
    url = f"{fhir_base(live, 1)}/Group/{group}/$export"
    kickoff = fhir_http.get(url, headers={**headers, "Prefer": "respond-async"})
    assert kickoff.status_code == 202
    live.clock.advance(timedelta(seconds=live.tenant.config.bulk_export_seconds))
    fresh = {"Authorization": f"Bearer {smart_token(live, http=fhir_http)}"}
    manifest = fhir_http.get(kickoff.headers["content-location"], headers=fresh).json()
    assert {o["type"] for o in manifest["output"]} == set(TYPES)
    for output in manifest["output"]:
        r = fhir_http.get(output["url"], headers=fresh)
        assert r.status_code == 200
        lines = [orjson.loads(line) for line in r.content.splitlines()]
        assert len(lines) == output["count"]
        assert len({x["id"] for x in lines}) == len(lines)
        step = max(1, len(lines) // SAMPLE)
        for resource in lines[::step]:
            assert resource["resourceType"] == output["type"]
            _validate(resource)
