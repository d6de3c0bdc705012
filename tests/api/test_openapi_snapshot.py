"""The API's OpenAPI document is a contract: moving a route to another module must not change
it. ``openapi.json`` next to this file is the document as served; the test compares the text
(paths in order, operation ids, summaries, descriptions, schemas).

After a deliberate change to the API, rewrite the snapshot with
``CAREBRIDGE_WRITE_OPENAPI=1 pytest tests/api/test_openapi_snapshot.py`` and review its diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from carebridge.api.main import build
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import open_deployment

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).with_name("openapi.json")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


async def test_the_openapi_document_is_unchanged(tmp_path: Path) -> None:
    deployment = await open_deployment(f"sqlite:///{tmp_path / 'store.db'}", KeyRing.generate())
    try:
        document = build(deployment, admin_token="operator").openapi()
        again = build(deployment, admin_token="operator").openapi()  # another app, one process
    finally:
        await deployment.aclose()
    if os.environ.get("CAREBRIDGE_WRITE_OPENAPI"):
        SNAPSHOT.write_text(_text(document))
    assert _text(again) == _text(document)  # building an app leaves shared schemas as they were
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', _text(document)))
    assert refs <= set(document["components"]["schemas"])  # every reference resolves
    saved = SNAPSHOT.read_text()
    assert list(document["paths"]) == list(json.loads(saved)["paths"])
    assert _text(document) == saved
