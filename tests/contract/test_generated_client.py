"""A client generated from ``/openapi.json`` by a well-known generator (openapi-python-client)
compiles, imports with our Python, and its list calls return typed objects.

openapi-python-client pins a typer that conflicts with ours, so it lives in a virtualenv of its
own, ``.venv-tools`` (``make tools``; CI makes it). Without it the test is skipped, saying so.
The generated client calls the API in process (its httpx client over the app's ASGI transport).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.support.api import API, Live, running

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / ".venv-tools" / "bin" / "openapi-python-client"
PACKAGE = "carebridge_generated"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not GENERATOR.exists(),
        reason="openapi-python-client is not installed: `make tools` puts it in .venv-tools",
    ),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    with tempfile.TemporaryDirectory() as folder:
        async with running(f"{folder}/store.db", patients=6) as started:
            yield started


def generate(document: dict[str, Any], into: Path) -> Path:
    """Run the generator over ``document``; the generated package's folder."""
    source = into / "openapi.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    target = into / PACKAGE
    done = subprocess.run(  # noqa: S603 - the generator installed by `make tools`
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(source),
            "--output-path",
            str(target),
            "--meta",
            "none",
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout
    return target


def operation_module(package: Path, path: str, method: str) -> ModuleType:
    """The generated module of one operation (found by the URL and method it sends)."""
    for candidate in sorted((package / "api").rglob("*.py")):
        text = candidate.read_text(encoding="utf-8")
        if f'"method": "{method}"' in text and f'"url": "{path}"' in text:
            dotted = ".".join(candidate.relative_to(package.parent).with_suffix("").parts)
            return importlib.import_module(dotted)
    raise AssertionError(f"no generated module sends {method.upper()} {path}")


async def test_a_generated_client_compiles_and_its_list_calls_return_typed_objects(
    live: Live, tmp_path: Path
) -> None:
    document = (await live.client.get("/openapi.json")).json()
    package = generate(document, tmp_path)
    compiled = subprocess.run(  # noqa: S603 - our own Python compiling the generated code
        [sys.executable, "-m", "compileall", "-q", str(package)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module(PACKAGE)
        transport = live.client._transport
        client = generated.AuthenticatedClient(
            base_url=API, token=live.keys["admin_a"], httpx_args={"transport": transport}
        )
        for path in ("/patients", "/appointments", "/providers"):
            module = operation_module(package, path, "get")
            answer = await module.asyncio_detailed(client=client)
            assert answer.status_code == 200, answer.content
            page = answer.parsed
            assert page is not None
            assert type(page).__module__.startswith(f"{PACKAGE}.models")
            assert page.data
            for item in page.data:
                assert type(item).__module__.startswith(f"{PACKAGE}.models")
                assert isinstance(item.id, str)
        await client.get_async_httpx_client().aclose()
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
