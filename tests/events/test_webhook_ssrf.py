"""Webhooks cannot be aimed at the deployment's own network (SSRF).

Proved here: every spelling of a loopback, private, link-local, shared, metadata or reserved
address is refused, and so are local names, credentials in URLs and plain http, unless the
development allow-list names the host; registration answers a 422 problem that never repeats
the URL, and refuses a name that resolves to a private address; at send time the guarded client
resolves the host once, checks every address, and connects to the checked one (a name that
rebinds to loopback after registration never reaches it); a subscription stored before the
policy (one aimed at the emulator's control plane) is never sent; failed attempts do not tell a
closed port from an open one; redirects are not followed.

The receivers are real sockets on loopback; the DNS is a fake the tests control.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.support.api import API, Live, running

from carebridge.api.app import create_app
from carebridge.api.routes import webhooks as webhook_routes
from carebridge.domain.urls import (
    ALLOW_ENV,
    LOOPBACK,
    IPAddress,
    UrlPolicy,
    UrlRefused,
    blocked,
    parse_ipv4,
)
from carebridge.errors import ConfigError
from carebridge.events.webhooks import (
    FAILED,
    REFUSED,
    Deliverer,
    DeliveryPolicy,
    webhook_client,
)
from carebridge.services.webhooks import Webhooks
from carebridge.store.webhooks import SqlWebhooks
from carebridge.wiring.api import webhook_urls

pytestmark = pytest.mark.anyio

STRICT = UrlPolicy()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the policy, pure ---------------------------------------------------------------------------

NOT_PUBLIC = [
    "https://127.0.0.1/",
    "https://127.0.0.1./",
    "https://127.1/",
    "https://127.0.1/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0x7F.0.0.1/",
    "https://0177.0.0.1/",
    "https://017700000001/",
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::127.0.0.1]/",
    "https://0.0.0.0/",
    "https://0/",
    "https://[::]/",
    "https://10.0.0.1/",
    "https://10.1/",
    "https://167772161/",
    "https://172.16.0.1/",
    "https://172.31.255.255/",
    "https://192.168.1.1/",
    "https://[fc00::1]/",
    "https://[fd12:3456::1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://2852039166/",
    "https://0xa9fea9fe/",
    "https://[fd00:ec2::254]/",
    "https://[::ffff:169.254.169.254]/",
    "https://100.100.100.200/",
    "https://168.63.129.16/",
    "https://100.64.0.1/",
    "https://169.254.1.1/",
    "https://[fe80::1]/",
    "https://224.0.0.1/",
    "https://[ff02::1]/",
    "https://255.255.255.255/",
    "https://240.0.0.1/",
    "https://192.0.2.1/",
    "https://[2001:db8::1]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:7f00:1::]/",
    "https://[2002:a00:1::1]/",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
]


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_every_spelling_of_an_address_that_is_not_public_is_refused(url: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        STRICT.check_url(url)
    message = str(refused.value)
    assert "public" in message
    assert url.split("/")[2] not in message  # the reason, never the URL


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/",
        "https://LOCALHOST./",
        "https://api.localhost/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://metadata/",
        "https://db.internal/",
        "https://printer.local/",
        "https://router.home.arpa/",
        "https://intranet/",
    ],
)
def test_local_and_internal_names_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused, match="local or internal name"):
        STRICT.check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must be https"),
        ("https://user:pass@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com@127.0.0.1/x", "credentials"),
        ("https://hooks.example.com\\@127.0.0.1/x", "'\\\\'"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:0/x", "port"),
        ("https://hooks.example.com:99999/x", "port"),
        ("https://hooks.exa mple.com/x", "whitespace"),
        ("https://hooks.example.com/x\r\nHost: evil", "whitespace"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://127.0.0.1%2e/x", "not a valid host name"),
        ("https://1.2.3.4.5/x", "not a valid IPv4"),
        ("https://08.0.0.1/x", "not a valid IPv4"),
        ("https://hooks.256/x", "not a valid IPv4"),
        ("https://[fe80::1%25eth0]/x", "zone"),
    ],
)
def test_malformed_or_ambiguous_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        STRICT.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/carebridge?token=abc",
        "https://hooks.example.com:8443/x",
        "https://HOOKS.Example.COM./x",
        "https://8.8.8.8/x",
        "https://[2606:4700:4700::1111]/x",
        "https://[::ffff:8.8.8.8]/x",
        "https://bücher.example/x",
    ],
)
def test_public_https_urls_pass(url: str) -> None:
    target = STRICT.check_url(url)
    assert target.scheme == "https"
    assert not target.listed


def test_inet_aton_forms_are_read_as_the_resolver_reads_them() -> None:
    for spelled, meant in {
        "127.1": "127.0.0.1",
        "2130706433": "127.0.0.1",
        "0x7f000001": "127.0.0.1",
        "0177.0.0.01": "127.0.0.1",
        "10.0x10.1": "10.16.0.1",
        "192.168.257": "192.168.1.1",
        "0": "0.0.0.0",  # noqa: S104 - an address spelled, not bound
    }.items():
        assert parse_ipv4(spelled) == ipaddress.IPv4Address(meant), spelled
        assert socket.inet_aton(spelled) == ipaddress.IPv4Address(meant).packed, spelled
    assert parse_ipv4("hooks.example.com") is None


def test_the_allow_list_admits_the_hosts_it_lists_over_http_and_nothing_else() -> None:
    dev = UrlPolicy.parse(LOOPBACK)
    for url in (
        "http://127.0.0.1:9000/hook",
        "http://127.0.0.2/hook",
        "http://2130706433/hook",
        "http://localhost:9000/hook",
        "http://[::1]:9000/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ):
        assert dev.check_url(url).listed, url
    for url in (
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://hooks.example.com/",
        "https://metadata.google.internal/",
    ):
        with pytest.raises(UrlRefused):
            dev.check_url(url)
    with pytest.raises(UrlRefused, match="credentials"):
        dev.check_url("http://user:pw@127.0.0.1/")
    assert blocked(ipaddress.ip_address("127.0.0.1")) == "loopback"
    dev.check_address(ipaddress.ip_address("127.0.0.1"))
    with pytest.raises(UrlRefused):
        dev.check_address(ipaddress.ip_address("10.0.0.1"))


def test_the_allow_list_setting_is_read_and_a_bad_entry_is_a_config_error() -> None:
    policy = webhook_urls({ALLOW_ENV: " 10.20.0.0/16 , hooks.dev.test ,[::1] "})
    assert policy.listed("10.20.3.4")
    assert policy.listed("hooks.dev.test.")
    assert policy.listed("::1")
    assert not policy.listed("10.21.0.1")
    assert webhook_urls({}) == STRICT
    with pytest.raises(ConfigError, match=ALLOW_ENV):
        webhook_urls({ALLOW_ENV: "127.0.0.1,not a host!"})


# --- the harness ----------------------------------------------------------------------------------


@dataclass
class FakeDns:
    """The DNS the tests control: a name answers its current addresses, or fails."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        del port
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


class Raw:
    """A bare HTTP/1.1 server on loopback that records what reached it and answers per
    ``mode``: ok (204), close (hangs up unanswered), hang (never answers), redirect (307)."""

    def __init__(self, mode: str = "ok", location: str = "") -> None:
        self.mode = mode
        self.location = location
        self.connections = 0
        self.heads: list[str] = []
        self.release = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Raw:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.mode == "close":
                return
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            self.heads.append(head)
            length = next(
                (
                    int(h.split(":", 1)[1])
                    for h in head.split("\r\n")
                    if h.lower().startswith("content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            if self.mode == "hang":
                await self.release.wait()
                return
            if self.mode == "redirect":
                writer.write(
                    f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {self.location}\r\n"
                    "Content-Length: 0\r\n\r\n".encode()
                )
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Harness:
    live: Live
    store: SqlWebhooks
    dns: FakeDns

    def deliverer(self, urls: UrlPolicy, *, timeout: float = 2.0) -> Deliverer:
        return Deliverer(
            self.store,
            webhook_client(urls, timeout=timeout, resolver=self.dns),
            self.live.clock.now,
            random.Random(7),
            DeliveryPolicy(timeout=timeout),
            urls=urls,
        )

    async def subscribe(self, url: str) -> httpx.Response:
        return await self.live.post("/webhooks", {"url": url, "event_types": ["patient.created"]})

    async def stored(self, url: str) -> str:
        """A subscription written straight to the store, as one made before the policy was."""
        hook = await self.store.create(
            "ten_a",
            url=url,
            event_types=("patient.created",),
            secret="whsec_" + "A" * 43 + "=",
            now=self.live.clock.now(),
            scopes=frozenset({"admin"}),
        )
        return hook.id

    async def errors(self, hook: str) -> set[str | None]:
        log = await self.store.deliveries("ten_a", hook, limit=500, before=None)
        assert log
        return {line.last_error for line in log}


@asynccontextmanager
async def harness(db: str, urls: UrlPolicy = STRICT) -> AsyncIterator[Harness]:
    async with running(db, patients=12) as live:
        d = live.deployment
        store = SqlWebhooks(d.engine, d.vault)
        dns = FakeDns()
        app = create_app(
            d.live,
            d.keys,
            d.audit,
            events=d.events,
            extra_routers=[
                webhook_routes.router(Webhooks(store, d.clock, urls=urls, resolver=dns))
            ],
        )
        built = live.client
        live.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API)
        try:
            yield Harness(live, store, dns)
        finally:
            await live.client.aclose()
            live.client = built


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(str(tmp_path / "store.db")) as made:
        yield made


# --- registration ---------------------------------------------------------------------------------


async def test_registration_refuses_hosts_that_are_not_public_with_a_problem(h: Harness) -> None:
    for url in (
        "https://2130706433/hook",
        "https://[::ffff:169.254.169.254]/latest",
        "https://localhost/hook",
        "http://hooks.example.com/hook",
        "https://user:secret@hooks.example.com/hook",
    ):
        refused = await h.subscribe(url)
        assert refused.status_code == 422, (url, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("/url-refused")
        assert problem["detail"].startswith("the url")
        for piece in ("2130706433", "169.254", "hooks.example.com", "secret"):
            assert piece not in refused.text
    assert (await h.live.get("/webhooks")).json()["data"] == []


async def test_registration_refuses_a_name_that_resolves_to_a_private_address(
    h: Harness,
) -> None:
    h.dns.answers["inside.example.com"] = ["93.184.216.34", "10.0.0.7"]
    refused = await h.subscribe("https://inside.example.com/hook")
    assert refused.status_code == 422, refused.text
    assert "resolves to an address that is not public (private)" in refused.json()["detail"]
    h.dns.answers["hooks.example.com"] = ["93.184.216.34"]
    assert (await h.subscribe("https://hooks.example.com/hook")).status_code == 201
    # a name that does not resolve now is not refused: every delivery resolves it again
    assert (await h.subscribe("https://later.example.com/hook")).status_code == 201
    assert h.dns.asked == ["inside.example.com", "hooks.example.com", "later.example.com"]


# --- delivery -------------------------------------------------------------------------------------


async def test_a_name_that_rebinds_to_loopback_after_registration_never_reaches_it(
    h: Harness,
) -> None:
    target = await Raw().start()
    try:
        h.dns.answers["rebind.example.com"] = ["93.184.216.34"]
        made = await h.subscribe(f"https://rebind.example.com:{target.port}/hook")
        assert made.status_code == 201, made.text
        await h.live.get("/patients", limit=500)  # patient.created events
        h.dns.answers["rebind.example.com"] = ["127.0.0.1"]  # the attacker's DNS flips
        assert await h.deliverer(STRICT).drain() > 0
        assert await h.errors(made.json()["id"]) == {REFUSED}
        assert target.connections == 0
        # every address is checked, not only the first
        h.dns.answers["rebind.example.com"] = ["93.184.216.34", "127.0.0.1"]
        h.live.clock.advance(DeliveryPolicy().cap)
        assert await h.deliverer(STRICT).drain() > 0
        assert await h.errors(made.json()["id"]) == {REFUSED}
        assert target.connections == 0
    finally:
        await target.stop()


async def test_a_subscription_stored_before_the_policy_is_never_sent(h: Harness) -> None:
    """The issue's attack: a delivery to the emulator's control plane on loopback."""
    control = await Raw().start()
    try:
        hook = await h.stored(f"http://127.0.0.1:{control.port}/_sandbox/drift?breaking=1")
        await h.live.get("/patients", limit=500)
        assert await h.deliverer(STRICT).drain() > 0
        assert await h.errors(hook) == {REFUSED}
        assert control.connections == 0
        assert h.dns.asked == []  # refused before any look-up
    finally:
        await control.stop()


async def test_the_guarded_client_refuses_what_the_static_check_cannot_see() -> None:
    """A client used on its own still resolves, checks and refuses (no Deliverer in front)."""
    dns = FakeDns({"inside.example.com": ["192.168.0.10"]})
    async with webhook_client(STRICT, timeout=2.0, resolver=dns) as client:
        for url in ("https://inside.example.com/x", "http://127.0.0.1:9/x", "http://0x7f.1:9/x"):
            with pytest.raises(httpx.ConnectError, match="public"):
                await client.post(url, content=b"{}")


async def test_deliveries_connect_to_the_address_checked_with_the_urls_host(
    tmp_path: Path,
) -> None:
    """The connection goes to the address the check resolved (the system's resolver does not
    know ``.invalid`` names at all), once per connection, with the URL's own ``Host``."""
    receiver = await Raw().start()
    urls = UrlPolicy.parse("hooks.invalid")
    try:
        async with harness(str(tmp_path / "store.db"), urls) as h:
            h.dns.answers["hooks.invalid"] = ["127.0.0.1"]
            made = await h.subscribe(f"http://hooks.invalid:{receiver.port}/hook?token=t")
            assert made.status_code == 201, made.text
            await h.live.get("/patients", limit=500)
            sent = await h.deliverer(urls).drain()
            assert sent > 0
            assert await h.errors(made.json()["id"]) == {None}  # all delivered
            assert len(receiver.heads) == sent
            assert all(f"host: hooks.invalid:{receiver.port}" in x.lower() for x in receiver.heads)
            assert all(x.startswith("POST /hook?token=t HTTP/1.1") for x in receiver.heads)
            assert set(h.dns.asked) == {"hooks.invalid"}
            assert len(h.dns.asked) == receiver.connections
    finally:
        await receiver.stop()


async def test_failed_attempts_do_not_tell_a_closed_port_from_an_open_one(tmp_path: Path) -> None:
    hangs_up, never_answers = await Raw("close").start(), await Raw("hang").start()
    urls = UrlPolicy.parse("127.0.0.1")
    try:
        async with harness(str(tmp_path / "store.db"), urls) as h:
            hooks = {
                "closed": (await h.subscribe(f"http://127.0.0.1:{_closed_port()}/x")).json()["id"],
                "hangs up": (await h.subscribe(f"http://127.0.0.1:{hangs_up.port}/x")).json()["id"],
                "silent": (await h.subscribe(f"http://127.0.0.1:{never_answers.port}/x")).json()[
                    "id"
                ],
            }
            await h.live.get("/patients", limit=500)
            await h.deliverer(urls, timeout=0.3).drain()
            for name, hook in hooks.items():
                assert await h.errors(hook) == {FAILED}, name
            assert hangs_up.connections
            assert never_answers.connections
    finally:
        await hangs_up.stop()
        await never_answers.stop()


async def test_redirects_are_not_followed(tmp_path: Path) -> None:
    inside = await Raw().start()
    bouncer = await Raw("redirect", f"http://127.0.0.1:{inside.port}/x").start()
    urls = UrlPolicy.parse("127.0.0.1")
    try:
        async with harness(str(tmp_path / "store.db"), urls) as h:
            hook = (await h.subscribe(f"http://127.0.0.1:{bouncer.port}/x")).json()["id"]
            await h.live.get("/patients", limit=500)
            await h.deliverer(urls).drain()
            assert await h.errors(hook) == {"status 307"}
            assert inside.connections == 0
    finally:
        await inside.stop()
        await bouncer.stop()
