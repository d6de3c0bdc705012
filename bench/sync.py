"""The sync engine's throughput against dlt and against the tenant's rate limit, its memory on a
large tenant, and change-to-webhook latency.

Run: ``.venv/bin/python bench/sync.py [--patients 10000] [--rounds 3] [--limit 200]
[--appointments 100000,1000000] [--skip-rss] [--skip-latency]``

(a) **Throughput against dlt.** An emulated tenant (seed 42, ``--patients``) runs in its own
    process (``bench/connector.py``'s ``start_sandbox``). carebridge, in this process over a
    temporary SQLite store with no throttle limit (10,000 requests/s allowed) and on the event
    loop ``carebridge sync`` runs on (uvloop; ``CAREBRIDGE_EVENT_LOOP=asyncio`` for asyncio's),
    syncs the v2 streams of the first practice (providers, locations, resources, visit reasons, the
    appointment window) and its patients. In the same run, dlt's ``rest_api`` source (a
    bench-only dependency) pulls the same v2 endpoints into DuckDB, patients included: each
    patient's ``GET /v2/patients/{id}`` and ``/balance`` (the two reads carebridge makes of a
    patient), the patients' GUIDs handed to dlt for free (v2 has no patient list; a naive client
    is given them, carebridge finds them itself). Records are entities (patients, appointments,
    the practice's lists) on both sides; requests are counted on both sides (carebridge's
    surface clients, dlt's ``requests`` session). Each of ``--rounds`` rounds runs both, each
    carebridge sync into a fresh store; the ratio of records/s is printed as its median and
    spread (min-max).
(b) **Share of the rate-limited ceiling.** The tenant's hidden limit is set (``--limit``
    requests/s, burst 20) and carebridge syncs the same streams into a fresh store with its
    default throttle (AIMD from 20 requests/s, as ``carebridge sync`` runs): the ceiling is the
    time the sync's requests need at the limit (requests / limit), and the share is that time
    over the time taken.
(c) **Memory.** For each ``--appointments`` size, a fresh child process syncs the appointment
    stream of a synthetic tenant of that many appointments (an in-memory upstream that makes
    them as it is read, pages of 100 like v2's, so no server is involved) into SQLite, on the
    loop and with the collector's thresholds ``carebridge sync`` runs with (``wiring/loop.py``),
    and reports its peak RSS (``ru_maxrss``) against the child's RSS before the sync.
(d) **Latency.** With a webhook subscribed to appointment events and a real HTTP receiver
    verifying each delivery (standardwebhooks), each change is a booking made upstream by the
    connector alone (carebridge's store does not see it); then, as a worker does on a nudge,
    the appointment stream is synced (a full read of its window) and a delivery round runs.
    The latency is from the booking's answer to the receiver's verified arrival; p50 and p95 are
    printed. The schedule's polling interval (a minute by default) comes on top.

The machine is usually shared: read ratios measured in the same run, not absolute times.
"""

from __future__ import annotations

import argparse
import functools
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.connector import start_sandbox

from carebridge.connectors.carecloud.paging import v2_next
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.domain.urls import LOOPBACK, UrlPolicy
from carebridge.events.webhooks import new_secret
from carebridge.ports.upstream import NewAppointment
from carebridge.store.sync_state import SqlSyncStore
from carebridge.store.vault import KeyRing
from carebridge.sync import engine
from carebridge.wiring import loop
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

TENANT = "ten_bench"
V2_STREAMS = ["providers", "locations", "resources", "visit_reasons", "appointments"]
SYNCED = ["providers", "locations", "resources", "visit_reasons", "patients", "appointments"]
"""What (a) and (b) sync: the v2 streams and the patients."""
DLT_TABLES = {
    "appointments",
    "providers",
    "locations",
    "appointment_resources",
    "visit_reasons",
    "patients",
}
"""dlt's tables of entities (its balance rows and nested tables are not records)."""


def _unthrottled() -> AimdThrottle:
    return AimdThrottle(
        ThrottleConfig(
            start_rate=10_000,
            max_rate=10_000,
            start_concurrency=8,
            max_concurrency=8,
            burst=10.0,
        )
    )


async def carebridge_sync(
    base_url: str, streams: list[str] | None, *, throttle: Any = _unthrottled
) -> tuple[int, float, int, dict[str, int]]:
    """A fresh store and connection; returns (records read, seconds, requests, per-stream
    counts). ``throttle`` makes the connection's throttle (None: the default one)."""
    workdir = tempfile.mkdtemp(prefix="cb-bench-sync-")
    deployment = await open_deployment(
        f"sqlite:///{workdir}/store.db", KeyRing.generate(), throttle=throttle
    )
    try:
        document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
        settings, secrets = from_sandbox(document)
        await deployment.onboard(
            tenant_id=TENANT, name="bench", upstream="carecloud", settings=settings, secrets=secrets
        )
        upstream = await deployment.upstreams.of(TENANT)
        started = time.perf_counter()
        report = await engine.sync(
            SqlSyncStore(deployment.engine),
            upstream,
            TENANT,
            streams,
            clock=lambda: datetime.now(UTC),
        )
        seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"the sync failed: {report.as_json()}")
        counts = {name: r.read for name, r in report.streams.items()}
        health = upstream.health()
        sent = sum(b["sent"] for b in health["brokers"].values())
        budget = upstream.connection.throttle.budget()
        counts["_rate"], counts["_concurrency"] = round(budget.rate), budget.concurrency
        return sum(n for k, n in counts.items() if not k.startswith("_")), seconds, sent, counts
    finally:
        await deployment.aclose()


def patient_guids(base_url: str, practice_id: int) -> list[str]:
    """The practice's patient GUIDs, from the sandbox's ground truth (a control route, not the
    upstream): what a naive client is handed."""
    body = httpx.get(
        f"{base_url}/_sandbox/truth/patients",
        params={"practice_id": practice_id},
        timeout=60,
    ).text
    return [orjson.loads(line)["id"] for line in body.splitlines() if line.strip()]


def dlt_pull(base_url: str, patients: bool = True) -> tuple[int, float, int]:
    """dlt's rest_api source over the same v2 endpoints, into DuckDB: (records, seconds,
    requests). With ``patients``, each patient's show and balance too (GUIDs handed to it).

    v2's ``Link`` header ends every entry with ``", "`` (the upstream's quirk); dlt's
    ``header_link`` paginator, which parses it with ``requests``, then misses ``next`` and stops
    after the first page. So dlt gets a paginator that reads the header the way carebridge
    does (``v2_next``): without it dlt would read 100 appointments of the window.
    """
    import dlt
    import requests  # noqa: TID251 - dlt's own HTTP library, patched only to count its requests
    from dlt.sources.helpers.rest_client.paginators import BasePaginator, SinglePagePaginator
    from dlt.sources.rest_api import rest_api_source

    class V2Link(BasePaginator):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._next: str | None = None

        def update_state(self, response: Any, data: Any = None) -> None:
            del data
            self._next = v2_next(response.headers.get("link"))
            self._has_next_page = self._next is not None

        def update_request(self, request: Any) -> None:
            request.url = self._next
            request.params = {}

    document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
    grant = httpx.post(
        document["token_url"],
        auth=(document["client_id"], document["client_secret"]),
        data={
            "grant_type": "refresh_token",
            "refresh_token": document["practices"][0]["refresh_token"],
        },
        timeout=10,
    ).json()
    today = datetime.now(UTC).date()
    window = {
        "start_date": (today - engine.WINDOW_BACK).isoformat(),
        "end_date": (today + engine.WINDOW_AHEAD).isoformat(),
    }
    guids = patient_guids(base_url, int(document["practices"][0]["id"])) if patients else []

    @dlt.resource(name="patient_ids", selected=False)
    def patient_ids() -> Any:
        yield [{"id": guid} for guid in guids]

    per_patient: list[Any] = []
    if patients:
        per_patient = [
            patient_ids,
            {
                "name": "patients",
                "endpoint": {
                    "path": "patients/{resources.patient_ids.id}",
                    "data_selector": "patient",
                    "paginator": SinglePagePaginator(),
                },
            },
            {
                "name": "balances",
                "endpoint": {
                    "path": "patients/{resources.patient_ids.id}/balance",
                    "paginator": SinglePagePaginator(),
                },
            },
        ]
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{base_url}/v2/",
                "auth": {"type": "bearer", "token": grant["access_token"]},
                "paginator": V2Link(),
            },
            "resource_defaults": {"write_disposition": "replace"},
            "resources": [
                *per_patient,
                {"name": "appointments", "endpoint": {"path": "appointments", "params": window}},
                {
                    "name": "providers",
                    "endpoint": {"path": "providers", "data_selector": "providers"},
                },
                {
                    "name": "locations",
                    "endpoint": {"path": "locations", "data_selector": "locations"},
                },
                {"name": "appointment_resources", "endpoint": {"path": "appointment_resources"}},
                {"name": "visit_reasons", "endpoint": {"path": "visit_reasons"}},
            ],
        }
    )
    workdir = tempfile.mkdtemp(prefix="cb-bench-dlt-")
    pipeline = dlt.pipeline(
        pipeline_name="bench_carecloud",
        destination=dlt.destinations.duckdb(f"{workdir}/dlt.duckdb"),
        dataset_name="carecloud",
        pipelines_dir=f"{workdir}/pipelines",
    )
    sent = 0
    send = requests.Session.send

    def counted(self: Any, request: Any, **kwargs: Any) -> Any:
        nonlocal sent
        sent += 1
        return send(self, request, **kwargs)

    requests.Session.send = counted  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        pipeline.run(source)
        seconds = time.perf_counter() - started
    finally:
        requests.Session.send = send  # type: ignore[method-assign]
    rows = pipeline.last_trace.last_normalize_info.row_counts
    return sum(n for table, n in rows.items() if table in DLT_TABLES), seconds, sent


def limited_sync(base_url: str, limit: float) -> tuple[int, float, int, dict[str, int]]:
    """carebridge's sync with its default throttle under a hidden limit of ``limit``
    requests/s (burst 20): (records, seconds, requests sent, 429s included, counts with the
    throttle's final rate and concurrency)."""
    put = {"rate_limit_rps": limit, "rate_limit_burst": 20}
    httpx.put(f"{base_url}/_sandbox/settings", json=put, timeout=10).raise_for_status()
    try:
        records, seconds, sent, counts = loop.run(
            functools.partial(carebridge_sync, base_url, SYNCED, throttle=None)
        )
    finally:
        off = {"rate_limit_rps": 0}
        httpx.put(f"{base_url}/_sandbox/settings", json=off, timeout=10).raise_for_status()
    return records, seconds, sent, counts


RSS_CHILD = r"""
import resource, sys, tempfile, time
from datetime import UTC, datetime, timedelta
from carebridge.domain import Appointment
from carebridge.domain.provenance import Provenance
from carebridge.domain.values import AppointmentId, LocationId, PatientId, ProviderId, ResourceId, VisitReasonId
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync import engine
from carebridge.wiring import loop

N = int(sys.argv[1])
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

class Synthetic:
    async def appointments(self, start, end, **_):
        span = max(1, (end - start).days) * 24 * 4
        for n in range(N):
            at = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(minutes=15 * (n % span))
            yield Appointment(
                sources=(Provenance(surface="v2", endpoint="GET /v2/appointments", upstream_id=str(n), fetched_at=NOW),),
                id=AppointmentId.new(f"bench:{n}"),
                patient_id=PatientId.new(f"p{n % 50000}"),
                provider_id=ProviderId.new("prv"),
                location_id=LocationId.new("loc"),
                resource_id=ResourceId.new(f"r{n % 40}"),
                visit_reason_id=VisitReasonId.new("vr"),
                start=at,
                end=at + timedelta(minutes=15),
                status="scheduled",
                created_at=NOW,
                updated_at=NOW,
            )

async def main():
    url = f"sqlite:///{tempfile.mkdtemp()}/rss.db"
    migrate.upgrade(url)
    db = create_engine(url)
    async with db.begin() as conn:
        await conn.execute(tenants.insert().values(id="ten_rss", name="rss", upstream="carecloud", settings={}, created_at=NOW))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = await engine.sync(SqlSyncStore(db), Synthetic(), "ten_rss", ["appointments"], clock=lambda: NOW)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(before, peak, report.streams["appointments"].read, f"{seconds:.1f}")

loop.run(main)  # as `carebridge sync` runs: its event loop and its collector's thresholds
"""


LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
"""Starts the RSS child from a small process: Linux carries the high-water RSS of the process
that forks into the child's ``ru_maxrss`` across ``exec``, so a child forked straight from this
(large) process would report this process's peak, not its own."""


def rss(appointments: int) -> tuple[int, int, int, float]:
    """(RSS before in KiB, peak in KiB, records, seconds) of the synthetic sync child."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", RSS_CHILD, str(appointments)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the RSS child failed:\n{done.stderr[-2000:]}")
    before, peak, read, seconds = done.stdout.split()
    return int(before), int(peak), int(read), float(seconds)


class Receiver:
    """A real HTTP receiver on a loopback port that verifies each delivery (standardwebhooks)
    and notes when each entity's events arrived."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.arrived: dict[tuple[str, str], float] = {}
        self.rejected = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            payload = Webhook(self.secret).verify(body, headers)
            data = payload["data"]
            self.arrived.setdefault((data["entity_id"], data["type"]), time.perf_counter())
            status = 204
        except Exception:  # noqa: BLE001 - a malformed header is a ValueError, not ours
            self.rejected += 1
            status = 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _serve(app: Any) -> tuple[str, Any]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/hook", server


async def latency(base_url: str, changes: int) -> list[float]:
    """Seconds from each booking's answer to its verified ``appointment.created`` delivery."""
    workdir = tempfile.mkdtemp(prefix="cb-bench-latency-")
    deployment = await open_deployment(
        f"sqlite:///{workdir}/store.db",
        KeyRing.generate(),
        throttle=_unthrottled,
        webhook_allow=UrlPolicy.parse(LOOPBACK),  # the receiver is local
    )
    receiver = Receiver(new_secret())
    hook, server = _serve(receiver)
    try:
        document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
        settings, secrets = from_sandbox(document)
        await deployment.onboard(
            tenant_id=TENANT, name="bench", upstream="carecloud", settings=settings, secrets=secrets
        )
        await deployment.sync(tenant_id=TENANT, streams=[*V2_STREAMS, "patients"])
        await deployment.webhooks.create(
            TENANT,
            url=hook,
            event_types=("appointment.*",),
            secret=receiver.secret,
            now=datetime.now(UTC),
            scopes=frozenset({"appointment.read"}),  # deliveries carry the appointments
        )
        facade = await deployment.upstreams.of(TENANT)
        people = [p.id async for p in _first(facade.patients(), 50)]
        slots = await _free_slots(facade, changes)
        waits: list[float] = []
        for n, slot in enumerate(slots):
            booked = await facade.create_appointment(
                NewAppointment(
                    patient_id=people[n % len(people)],
                    resource_id=slot.resource_id,
                    location_id=slot.location_id,
                    visit_reason_id=slot.visit_reason_id,
                    start=slot.start,
                )
            )
            changed = time.perf_counter()
            # what a worker does on its nudge: sync the stream, then a delivery round
            await deployment.sync(tenant_id=TENANT, streams=["appointments"])
            await deployment.deliverer.drain()
            arrived = receiver.arrived.get((booked.value.id, "appointment.created"))
            if arrived is None:
                raise SystemExit(f"booking {n} was not delivered")
            waits.append(arrived - changed)
        if receiver.rejected:
            raise SystemExit(f"{receiver.rejected} deliveries failed verification")
        return waits
    finally:
        server.should_exit = True
        await deployment.aclose()


async def _first(items: Any, count: int) -> Any:
    n = 0
    async for item in items:
        yield item
        n += 1
        if n >= count:
            return


async def _free_slots(facade: Any, need: int) -> list[Any]:
    found: list[Any] = []
    taken: set[tuple[str, datetime]] = set()
    start = datetime.now(UTC).date() + timedelta(days=1)
    resources = [r async for r in facade.resources()]
    for resource in resources:
        for reason in resource.visit_reason_ids[:1]:
            slots = await facade.availability(
                reason, start, start + timedelta(days=20), resource_ids=(resource.id,)
            )
            for slot in slots:
                if (slot.resource_id, slot.start) not in taken and len(found) < need:
                    taken.add((slot.resource_id, slot.start))
                    found.append(slot)
    if len(found) < need:
        raise SystemExit(f"only {len(found)} free slots")
    return found


def _cpu(pid: int, since: tuple[float, float] | None = None) -> tuple[float, float]:
    """(this process's CPU seconds, process ``pid``'s), or their growth since ``since``."""
    from bench.connector import process_cpu

    now = (time.process_time(), process_cpu(pid))
    return now if since is None else (now[0] - since[0], now[1] - since[1])


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (spread {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=float, default=100.0, help="(b)'s limit, requests/s")
    parser.add_argument("--appointments", default="100000,1000000", help="(c)'s sizes")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--changes", type=int, default=40, help="latency samples (d)")
    args = parser.parse_args()

    import bench.connector as connector

    connector.PATIENTS = args.patients
    base_url, stop = start_sandbox()
    rounds: list[tuple[tuple[int, float, int, dict[str, int]], tuple[int, float, int]]] = []
    limited: tuple[int, float, int, dict[str, int]] | None = None
    waits: list[float] = []
    cpus: list[tuple[tuple[float, float], tuple[float, float]]] = []
    try:
        emulator = connector.SANDBOX_PIDS[-1]
        for _ in range(args.rounds):
            ours_cpu = _cpu(emulator)
            ours = loop.run(carebridge_sync, base_url, SYNCED)
            ours_cpu = _cpu(emulator, ours_cpu)
            theirs_cpu = _cpu(emulator)
            theirs = dlt_pull(base_url)
            theirs_cpu = _cpu(emulator, theirs_cpu)
            rounds.append((ours, theirs))
            cpus.append((ours_cpu, theirs_cpu))
        if args.limit:
            limited = limited_sync(base_url, args.limit)
        if not args.skip_latency:
            waits = loop.run(latency, base_url, args.changes)
    finally:
        stop()

    print(f"(a) the v2 streams and patients of a {args.patients:,}-patient tenant (practice 1)")
    print(
        "    "
        + ", ".join(f"{k} {v:,}" for k, v in rounds[0][0][3].items() if not k.startswith("_"))
    )
    print(
        f"{'':4}{'round':<7}{'':<12} {'records':>8} {'requests':>9} {'req/rec':>8} {'s':>7} {'rec/s':>8}"
    )
    ratios: list[float] = []
    for n, ((records, seconds, sent, _), (d_records, d_seconds, d_sent)) in enumerate(rounds, 1):
        for name, r, s, q in (
            ("carebridge", records, seconds, sent),
            ("dlt", d_records, d_seconds, d_sent),
        ):
            print(f"{'':4}{n:<7}{name:<12} {r:>8,} {q:>9,} {q / r:>8.2f} {s:>7.2f} {r / s:>8,.0f}")
        ratios.append((records / seconds) / (d_records / d_seconds))
    print(f"    carebridge/dlt records/s: {_spread(ratios)} over {len(ratios)} rounds")
    print("    CPU seconds (client process / emulator process) and the ratio they allow:")
    bounds: list[float] = []
    for n, (((ours_c, ours_e), (dlt_c, dlt_e)), (_, (_, d_seconds, _))) in enumerate(
        zip(cpus, rounds, strict=True), 1
    ):
        # carebridge's wall time is at least the busier of its two single-threaded processes
        bound = d_seconds / max(ours_c, ours_e)
        bounds.append(bound)
        print(
            f"{'':4}{n:<7}carebridge {ours_c:6.1f} / {ours_e:5.1f}   dlt {dlt_c:6.1f} / {dlt_e:5.1f}"
            f"   best reachable at this CPU: {bound:.2f}x"
            f" (the emulator alone: {d_seconds / ours_e:.2f}x)"
        )
    print(f"    best reachable ratio at carebridge's CPU: {_spread(bounds)}")

    if limited is not None:
        records, seconds, sent, counts = limited
        needed = rounds[0][0][2]  # the plan's requests, from an unlimited round
        ceiling = needed / args.limit
        print(f"(b) the same sync under a hidden limit of {args.limit:.0f} requests/s (burst 20),")
        print("    default throttle (AIMD from 20 requests/s):")
        print(
            f"    {records:,} records in {seconds:.1f} s, {sent:,} requests "
            f"({sent - needed:,} refused and retried); at the limit: {ceiling:.1f} s"
        )
        print(
            f"    share of the rate-limited ceiling: {ceiling / seconds:.0%} (the throttle ended "
            f"at {counts['_rate']} requests/s, {counts['_concurrency']} in flight)"
        )

    if waits:
        ordered = sorted(waits)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(
            f"(d) change -> verified webhook, {len(waits)} bookings (sync of the window + delivery):"
        )
        print(f"    p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")

    if not args.skip_rss:
        sizes = [int(n) for n in args.appointments.split(",") if n.strip()]
        peaks: list[int] = []
        print("(c) peak RSS syncing the appointment stream, each size in a fresh process:")
        for size in sizes:
            before, peak, read, secs = rss(size)
            peaks.append(peak)
            print(
                f"    {read:>9,} appointments in {secs:>6.1f} s: "
                f"RSS before {before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB"
            )
        if len(peaks) > 1:
            print(f"    largest/smallest peak: {max(peaks) / min(peaks):.2f}")


if __name__ == "__main__":
    main()
