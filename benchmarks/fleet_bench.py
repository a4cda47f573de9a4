"""A fleet of ``nanobanana batch`` workers on one file and one PostgreSQL journal.

Usage: ``python benchmarks/fleet_bench.py [--runs 5] [--rows 300] [--big 10000] [--postgres URL]``

Part 1: ``--runs`` times, 3 workers on one ``--rows``-row file, one of them SIGKILLed at a random
moment; a table of the kill moment, the rows each worker paid for (the journal's owner pid), the
uncertain rows, the duplicate submissions (the simulator records every request; must be 0), and
the rows not final in a surviving worker's manifest (must be 0). Part 2: 3 workers on one
``--big``-row file, nobody killed: rows/s of the fleet and each worker's peak RSS. The simulator
runs in this process (tasks take 0.3 s); each run gets a schema of its own, dropped after.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.fleet import FleetReport, run_fleet, write_rows


def _schema_url(url: str) -> tuple[str, str]:
    import psycopg

    schema = f"nb_fleet_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return schema, f"{url}{sep}options=-csearch_path%3D{schema}"


def _drop(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def one(url: str, rows: int, kill_at: int | None, concurrency: int = 8) -> FleetReport:
    schema, scoped = _schema_url(url)
    try:
        with tempfile.TemporaryDirectory() as tmp, FakeNanoBananaServer(task_duration=0.3) as sim:
            root = Path(tmp)
            file = write_rows(root / "rows.jsonl", rows)
            return run_fleet(
                sim,
                scoped,
                file,
                root,
                kill_at_submission=kill_at,
                lease=2.0,
                timeout=1800,
                extra=["--concurrency", str(concurrency)],
            )
    finally:
        _drop(url, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "NANOBANANA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    try:
        import psycopg

        psycopg.connect(args.postgres, connect_timeout=5).close()
    except Exception as exc:
        print(f"fleet: skipped, PostgreSQL unreachable at {args.postgres} ({exc})")
        return
    print(f"fleet: 3 workers, {args.rows} rows, one SIGKILLed at a random moment")
    print(
        "run  kill at (submission, s)  exit codes  paid by worker (w0/w1/w2)  uncertain  "
        "duplicates  not final"
    )
    for n in range(1, args.runs + 1):
        at = random.randint(20, args.rows * 5 // 6)  # a moment inside the run, however fast
        r = one(args.postgres, args.rows, at)
        moment = f"#{at}, {r.kill_after or 0:.2f} s"
        paid = "/".join(str(r.paid_by_worker.get(i, 0)) for i in range(3))
        codes = ",".join(str(c) for c in r.codes)
        print(
            f"{n:>3}  {moment:<22}  {codes:<10}  {paid:<25}  {r.uncertain:>9}  "
            f"{r.duplicates:>10}  {sum(r.not_final.values()):>9}"
        )
    if args.big:
        r = one(args.postgres, args.big, None, concurrency=32)
        paid = "/".join(str(r.paid_by_worker.get(i, 0)) for i in range(3))
        rss = ", ".join(f"{kib / 1024:.0f} MiB" for kib in r.max_rss_kib)
        print(
            f"fleet: 3 workers, {args.big} rows, --concurrency 32, nobody killed: "
            f"{r.seconds:.1f} s, {args.big / r.seconds:.0f} rows/s; paid by worker {paid}; "
            f"duplicates {r.duplicates}; exit codes {r.codes}; peak RSS per worker {rss}"
        )


if __name__ == "__main__":
    main()
