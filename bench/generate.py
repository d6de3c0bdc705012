"""Time and peak RSS to generate a large tenant into a SQLite file, then dump it whole.

Run: ``.venv/bin/python bench/generate.py [PATIENTS]`` (default 100,000). The dump streams
every ground-truth table in batches of 1,000 rows, as ``GET /_sandbox/truth/{table}`` does.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

from carebridge.sandbox.config import SandboxConfig
from carebridge.sandbox.db import TRUTH_TABLES, TenantDB
from carebridge.sandbox.generator import generate


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    patients = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    baseline = _rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tenant.db"
        db = TenantDB(path)
        start = time.perf_counter()
        generate(db, SandboxConfig(seed=42, patients=patients), date(2026, 11, 24))
        generated = time.perf_counter() - start
        gen_rss = _rss_mib()
        counts = {
            t: db.scalar(f"SELECT COUNT(*) FROM {t}")
            for t in ("patients", "appointments", "transactions")
        }
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
        dumped = time.perf_counter() - start
        size = path.stat().st_size
    print(
        f"patients={counts['patients']:,} appointments={counts['appointments']:,} transactions={counts['transactions']:,}"
    )
    print(f"generate: {generated:.1f} s; file {size / 2**20:.0f} MiB")
    print(f"dump all tables as NDJSON: {dumped:.1f} s, {written / 2**20:.0f} MiB")
    print(
        f"peak RSS: {_rss_mib():.0f} MiB (after generate {gen_rss:.0f} MiB; interpreter start {baseline:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
