"""CPU per record of ``SqlSyncStore.save_page`` over pages of mapped sandbox patients.

Run: ``.venv/bin/python bench/store_save_page.py`` (``PATIENTS``, 1,000; ``PAGE``, 200;
``ROUNDS``, 5; ``CACHE``, a file that keeps the mapped patients between runs).
``PYTHONPATH=<other tree>/src`` runs it against another checkout: alternate runs of the two,
several times, on a busy machine.

The patients are read and mapped as ``bench/mapping.py`` does (seed 42, the first practice),
then, per round, a fresh migrated SQLite file store takes them page by page as the sync's
patients stream does (a lease held and renewed with every page, a cursor, the tenant's event
counter), three times:

- **new**: every record is new (``patient.created`` events, their diffs);
- **same**: the same records again (nothing changed, no events);
- **changed**: each record with a new phone (``patient.updated`` events).

It prints µs of CPU per record: the process's (``time.process_time``: every thread, SQLite's
and the driver's included) and the event loop thread's (``time.thread_time``), median and
spread over the rounds. ``ARMS=async,store`` alternates, round by round in one process, the
pages' transactions through the async engine (``engine.begin()``, aiosqlite) and the store's
own way (``store``, the default).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mapping import Connector, capture

from carebridge.ports.sync import Hold
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants
from carebridge.store.sync_state import SqlSyncStore

PATIENTS = int(os.environ.get("PATIENTS", "1000"))
PAGE = int(os.environ.get("PAGE", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
TENANT = "ten_bench"
AT = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


async def one_round(
    records: list[Any], changed: list[Any], folder: str, arm: str = "store"
) -> dict[str, tuple]:
    url = f"sqlite:///{folder}/store.db"
    migrate.upgrade(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            tenants.insert().values(
                id=TENANT, name=TENANT, upstream="carecloud", settings={}, created_at=AT
            )
        )
    store = SqlSyncStore(engine)
    if arm == "async" and getattr(store, "transactions", None) is not None:
        store.transactions.sync = None  # every page in ``engine.begin()``, through aiosqlite
    hold = Hold("run:bench", timedelta(minutes=5))
    assert (await store.acquire(TENANT, "patients", "run:bench", now=AT, ttl=hold.ttl)).granted
    out: dict[str, tuple] = {}
    for name, batch in (("new", records), ("same", records), ("changed", changed)):
        cpu, main = time.process_time(), time.thread_time()
        for start in range(0, len(batch), PAGE):
            page = batch[start : start + PAGE]
            await store.save_page(
                TENANT,
                "patient",
                page,
                stream="patients",
                cursor={"pass": {"after": str(page[-1].id)}},
                fetched_at=AT,
                hold=hold,
            )
        n = len(batch)
        out[name] = (
            (time.process_time() - cpu) / n * 1e6,
            (time.thread_time() - main) / n * 1e6,
        )
    await engine.dispose()
    return out


def patients() -> list[Any]:
    """The mapped patients, kept in ``CACHE`` (a pickle) when it is set."""
    cache = os.environ.get("CACHE")
    if cache and Path(cache).exists():
        kept: list[Any] = pickle.loads(Path(cache).read_bytes())  # noqa: S301 - our own file
        if len(kept) == PATIENTS:
            return kept
    connector = Connector(clock=lambda: AT)
    records = [connector.patient(show, balance) for show, balance in capture(PATIENTS)]
    if cache:
        Path(cache).write_bytes(pickle.dumps(records))
    return records


def main() -> None:
    records = patients()
    changed = []
    for r in records:
        name = r.__dict__["name"]
        changed.append(
            r.model_copy(update={"name": name.model_copy(update={"middle": name.middle + "Q"})})
        )
    arms = os.environ.get("ARMS", "store").split(",")
    results: dict[str, list[tuple]] = {}
    for _ in range(ROUNDS):
        for arm in arms:
            with tempfile.TemporaryDirectory() as folder:
                done = asyncio.run(one_round(records, changed, folder, arm))
            for name, figures in done.items():
                results.setdefault(f"{arm}:{name}", []).append(figures)
    print(f"{len(records)} patients, pages of {PAGE}, {ROUNDS} rounds; us of CPU per record")
    for name, rounds in results.items():
        cpu = [r[0] for r in rounds]
        main_ = [r[1] for r in rounds]
        print(
            f"{name:<14} process median {statistics.median(cpu):7.1f} "
            f"(min {min(cpu):7.1f} max {max(cpu):7.1f})   "
            f"loop thread median {statistics.median(main_):7.1f} "
            f"(min {min(main_):7.1f} max {max(main_):7.1f})"
        )


if __name__ == "__main__":
    main()
