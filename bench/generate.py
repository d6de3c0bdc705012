"""Time and peak RSS of generating a tenant, in memory or into a SQLite file.

Run: ``.venv/bin/python bench/generate.py [--patients N] [--file PATH | --memory] [--dump]``
(defaults: 100,000 patients into a temporary file). ``--dump`` also streams every ground-truth
table in batches of 1,000 rows, as ``GET /_sandbox/truth/{table}`` does. Peak RSS is the
process's high-water mark (``getrusage``), so run one measurement per process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.db import TRUTH_TABLES, TenantDB
from carecloud_sandbox.generator import generate


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dump(db: TenantDB) -> tuple[float, int]:
    start = time.perf_counter()
    written = 0
    for table, order in TRUTH_TABLES.items():
        last = None
        while True:
            rows = db.all(
                f"SELECT * FROM {table}"
                + (f" WHERE {order} > ?" if last is not None else "")
                + f" ORDER BY {order} LIMIT 1000",
                () if last is None else (last,),
            )
            if not rows:
                break
            written += sum(len(orjson.dumps(dict(r))) + 1 for r in rows)
            last = rows[-1][order]
    return time.perf_counter() - start, written


def main() -> None:
    """Generate one tenant and print its size, the time taken and the peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--practices", type=int, default=2)
    parser.add_argument("--appointments-per-patient", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=42)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--file", type=Path, help="SQLite file to write (must not exist)")
    where.add_argument("--memory", action="store_true", help="keep the tenant in memory")
    parser.add_argument("--dump", action="store_true", help="also stream every truth table")
    args = parser.parse_args()

    baseline = _rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        path = None if args.memory else (args.file or Path(tmp) / "tenant.db")
        db = TenantDB(path)
        config = SandboxConfig(
            seed=args.seed,
            patients=args.patients,
            practices=args.practices,
            appointments_per_patient=args.appointments_per_patient,
        )
        stages: dict[str, float] = {}
        started = time.perf_counter()

        def progress(stage: str, *_: int) -> None:
            stages.setdefault(stage.split(" practice")[0], time.perf_counter() - started)

        generate(db, config, date(2026, 11, 24), progress=progress)
        generated = time.perf_counter() - started
        gen_rss = _rss_mib()
        counts = {
            t: db.scalar(f"SELECT COUNT(*) FROM {t}")
            for t in ("patients", "appointments", "transactions", "documents")
        }
        size = path.stat().st_size if path is not None else 0
        if path is not None:
            wal = path.with_name(path.name + "-wal")
            size += wal.stat().st_size if wal.exists() else 0
        print(", ".join(f"{t}={n:,}" for t, n in counts.items()))
        print(
            f"generate ({'memory' if path is None else 'file'}): {generated:.1f} s"
            + (f"; file {size / 2**20:.0f} MiB" if path is not None else "")
        )
        print("stage starts: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
        print(f"peak RSS after generate: {gen_rss:.0f} MiB (interpreter + imports {baseline:.0f})")
        if args.dump:
            dumped, written = _dump(db)
            print(f"dump all truth tables as NDJSON: {dumped:.1f} s, {written / 2**20:.0f} MiB")
            print(f"peak RSS after dump: {_rss_mib():.0f} MiB")
        db.close()


if __name__ == "__main__":
    main()
