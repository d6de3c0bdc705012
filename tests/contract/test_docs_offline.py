"""``/docs`` (Swagger UI) and ``/redoc`` render offline: headless Chromium (the Debian package,
driven by Playwright; never a downloaded browser) loads them from ``carebridge serve`` in its
own process with every request that leaves loopback refused, and Swagger UI shows every
operation of ``/openapi.json`` and the Authorize button.

Decorative images aside (ReDoc's badge), nothing the pages load may come from off the machine.
Skipped, saying so, where ``/usr/bin/chromium`` is absent (a machine with only Python and
make); ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.support.processes import free_port, wait_for

from carebridge.wiring.admin import new_key_ring

CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``carebridge serve`` over an empty store, in its own process; its base URL."""
    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    environment |= {
        "CAREBRIDGE_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "CAREBRIDGE_VAULT_KEY": new_key_ring().to_text(),
        "CAREBRIDGE_SYNC_INTERVAL": "0",
    }
    child = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "carebridge", "serve", f"--port={port}"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health")
        yield base
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=30)


def operations(base: str) -> int:
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    methods = {"get", "post", "put", "patch", "delete"}
    return sum(1 for item in document["paths"].values() for m in item if m in methods)


def test_docs_and_redoc_render_offline_with_every_operation_and_authorize(server: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    left_loopback: list[str] = []

    def only_loopback(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            left_loopback.append(f"{route.request.resource_type} {route.request.url}")
            route.abort("internetdisconnected")

    expected = operations(server)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.goto(f"{server}/docs", wait_until="networkidle")
            page.wait_for_selector(".opblock", timeout=30_000)
            shown = page.locator(".opblock").count()
            authorize = page.locator("button.authorize")
            assert authorize.count() == 1
            assert authorize.is_visible()

            page.goto(f"{server}/redoc", wait_until="networkidle")
            page.wait_for_selector("[role=menuitem], .menu-content", timeout=30_000)
            redoc_text = page.locator("body").inner_text()
        finally:
            browser.close()
    assert shown == expected
    assert "carebridge" in redoc_text.lower()
    # Nothing the pages need comes from off the machine: no script, style sheet, font or data.
    # (ReDoc's "powered by" badge image points at its CDN; it is refused and not needed.)
    needed = [r for r in left_loopback if not r.startswith("image ")]
    assert not needed
