"""Audit appends per second with 0, 100k and 1M entries already in the log: the cost of an
append must not grow with the log.

Run: ``.venv/bin/python bench/audit.py [--writers 32] [--entries 4000] [--rounds 3]
[--sizes 0,100000,1000000]``

A temporary SQLite store (WAL; the ``synchronous`` setting is printed) holds one tenant.
At each size the log is first grown to that many entries of one valid chain (seeded fast:
MACs computed here, rows written with ``executemany``, the checkpoint signed to match), then
each round starts a fresh :class:`carebridge.store.audit.AuditLog` (as a process start would:
its first commit reads the checkpoint under the row lock; a quarter round warms up first) and
``--writers`` concurrent tasks
append ``--entries`` entries in all, each returning once its entry is committed (group commit
batches them). The chain is verified at the end.

It prints entries/s and commits per size, and the ratio of each size's rate to the empty log's
(min / median / max over the rounds, round i against round i). This machine is shared: read the
ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carebridge.store import migrate
from carebridge.store.audit import AuditEntry, AuditLog, entry_mac, head_mac, verify
from carebridge.store.engine import create_engine
from carebridge.store.schema import audit_heads, audit_log, tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

TENANT = "ten_bench"
AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
VAULT = Vault(KeyRing({"bench": bytes(KEY_BYTES)}, "bench"))
CHUNK = 50_000


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        TENANT, "key_bench", "GET /patients", (f"pat_{n % 5000:05d}",), AT + timedelta(0, n)
    )


async def _key(url: str) -> bytes:
    """The tenant's audit key (created by a first, real append)."""
    engine = create_engine(url)
    try:
        log = AuditLog(engine, VAULT)
        await log.record(_entry(0))
        return log._keys[TENANT]  # the bench signs the seeded checkpoint with it
    finally:
        await engine.dispose()


def grow(url: str, key: bytes, to: int) -> None:
    """Append entries of one valid chain until the log holds ``to``, and sign the checkpoint."""
    sync = create_sync_engine(url)
    try:
        with sync.begin() as conn:
            head = conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == TENANT)).one()
            count, previous = int(head.entries), str(head.head)
            while count < to:
                rows = []
                for n in range(count, min(to, count + CHUNK)):
                    entry = _entry(n)
                    digest = entry_mac(key, previous, entry)
                    rows.append(
                        {
                            "tenant_id": TENANT,
                            "principal": entry.principal,
                            "route": entry.route,
                            "patient_ids": list(entry.patient_ids),
                            "at": entry.at,
                            "prev_hash": previous,
                            "hash": digest,
                        }
                    )
                    previous = digest
                conn.execute(audit_log.insert(), rows)
                count += len(rows)
            last = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq.desc())).first()
            last_seq = int(last[0]) if last else 0
            conn.execute(
                update(audit_heads)
                .where(audit_heads.c.tenant_id == TENANT)
                .values(
                    last_seq=last_seq,
                    entries=count,
                    head=previous,
                    mac=head_mac(key, TENANT, last_seq, count, previous),
                )
            )
        with sync.connect() as conn:  # fold the seeding's WAL into the file before measuring
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        sync.dispose()


def synchronous(url: str) -> int:
    """SQLite's ``synchronous`` setting on the store's connections (2: FULL, 1: NORMAL)."""
    sync = create_sync_engine(url)
    try:
        with sync.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    finally:
        sync.dispose()


async def measure(url: str, writers: int, entries: int, start: int) -> tuple[float, int]:
    """Entries/s of ``writers`` concurrent appenders writing ``entries`` in all (a fresh log);
    and how many commits it took."""
    engine = create_engine(url)
    log = AuditLog(engine, VAULT)
    counter = iter(range(start, start + entries))

    async def writer() -> None:
        for n in counter:
            await log.record(_entry(n))

    try:
        began = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        elapsed = time.perf_counter() - began
    finally:
        await engine.dispose()
    return entries / elapsed, log.commits


async def _verified(url: str) -> tuple[int, bool]:
    engine = create_engine(url)
    try:
        result = await verify(engine, VAULT, TENANT)
        return result.entries, result.intact
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=32, help="concurrent appenders")
    parser.add_argument("--entries", type=int, default=4000, help="entries per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="0,100000,1000000", help="log sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    rates: dict[int, list[float]] = {}
    commits: dict[int, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="carebridge-bench-audit-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        migrate.upgrade(url)
        sync = create_sync_engine(url)
        with sync.begin() as conn:
            conn.execute(
                tenants.insert().values(
                    id=TENANT, name="bench", upstream="carecloud", settings={}, created_at=AT
                )
            )
        sync.dispose()
        key = asyncio.run(_key(url))
        written = 1
        for size in sizes:
            began = time.perf_counter()
            grow(url, key, max(size, written))
            seeded = time.perf_counter() - began
            written = max(size, written)
            print(f"log grown to {written:,} entries in {seeded:.1f} s", flush=True)
            asyncio.run(measure(url, args.writers, args.entries // 4, written))  # warm-up
            written += args.entries // 4
            for _ in range(args.rounds):
                rate, made = asyncio.run(measure(url, args.writers, args.entries, written))
                rates.setdefault(size, []).append(rate)
                commits.setdefault(size, []).append(made)
                written += args.entries
        entries, intact = asyncio.run(_verified(url))
        mode = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[synchronous(url)]

    print(
        f"audit appends: {args.writers} concurrent writers, {args.entries:,} entries per round, "
        f"{args.rounds} rounds per size; SQLite WAL, synchronous={mode}, one commit per batch"
    )
    print(f"{'log size':>10} {'entries/s (median)':>19} {'min':>8} {'max':>8} {'commits':>8}")
    for size in sizes:
        r = rates[size]
        print(
            f"{size:>10,} {statistics.median(r):>19,.0f} {min(r):>8,.0f} {max(r):>8,.0f} "
            f"{statistics.median(commits[size]):>8,.0f}"
        )
    base = rates[sizes[0]]
    for size in sizes[1:]:
        ratios = [a / b for a, b in zip(rates[size], base, strict=True)]
        print(
            f"ratio {size:,}/{sizes[0]:,} (entries/s): median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
        )
    print(f"chain verified: {entries:,} entries, intact={intact}")
    if not intact:
        raise SystemExit("the chain does not verify")


if __name__ == "__main__":
    main()
