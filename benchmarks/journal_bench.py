"""Cost of the write-ahead journal (``langchain_nanobanana.journal``) per submission.

Usage: ``python benchmarks/journal_bench.py [--keys 1000] [--dir DIR]``

For each of ``--keys`` keys in one fresh journal file it times the three writes a submission
makes — ``begin`` (reserve), ``submitted`` (task id), ``succeeded`` (result JSON of one image and
one downloaded file) — and prints the mean and percentiles in ms; then the cost of a re-run
(``begin`` on a finished key: the answer without any request), of opening the file (including
``PRAGMA quick_check``), of ``request_identity`` for a generate body and for an edit carrying a
10 MiB image as a data URI, and the file size per 1000 entries (after the WAL is checkpointed
into the main file by ``close``). Target (issue): at most 1 ms of journal overhead per submission
with WAL and ``synchronous=NORMAL``.

Then the same three writes on the PostgreSQL journal (``--postgres URL``, default
``$NANOBANANA_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``; in a schema
of its own, dropped after; skipped with a line when the server is unreachable). Target (issue
14): at most 5 ms per submission on loopback.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from langchain_nanobanana.journal import Journal, KeyStore, PostgresJournal, request_identity

SCOPE = "https://api.acedata.cloud"


def _result(i: int) -> dict[str, object]:
    """About what ``ImageResult.model_dump(mode="json")`` gives for one image."""
    task_id = f"6b3c2a1e-{i:08d}-4d5e-9f00-123456789abc"
    url = f"https://platform.cdn.acedata.cloud/nanobanana/{task_id}.png"
    return {
        "status": "succeeded",
        "task_id": task_id,
        "trace_id": f"trace-{i:08d}-0000-0000-0000-000000000000",
        "images": [{"prompt": "a watercolor fox in the snow, soft light", "image_url": url}],
        "error": None,
        "raw": {
            "success": True,
            "task_id": task_id,
            "trace_id": f"trace-{i:08d}-0000-0000-0000-000000000000",
            "data": [{"prompt": "a watercolor fox in the snow, soft light", "image_url": url}],
        },
    }


def _ms(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p50 = ms[len(ms) // 2]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"mean {statistics.fmean(ms):.3f} ms  p50 {p50:.3f} ms  p99 {p99:.3f} ms"


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _writes(
    journal: KeyStore, keys: int, identity: str
) -> tuple[list[float], dict[str, list[float]]]:
    per_key: list[float] = []
    steps: dict[str, list[float]] = {"begin": [], "submitted": [], "succeeded": []}
    for i in range(keys):
        key = f"sku-{i:06d}"
        result = _result(i)
        t0 = time.perf_counter()
        journal.begin(SCOPE, key, identity)
        t1 = time.perf_counter()
        journal.submitted(SCOPE, key, str(result["task_id"]), str(result["trace_id"]))
        t2 = time.perf_counter()
        journal.succeeded(SCOPE, key, result, files=[f"out/{key}_0.png"])
        t3 = time.perf_counter()
        per_key.append(t3 - t0)
        steps["begin"].append(t1 - t0)
        steps["submitted"].append(t2 - t1)
        steps["succeeded"].append(t3 - t2)
    return per_key, steps


def run_postgres(keys: int, url: str) -> None:
    """The three writes of a submission on the PostgreSQL journal, in a schema of its own."""
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except Exception as exc:
        print(f"journal (PostgreSQL): skipped, {url} unreachable ({exc})")
        return
    schema = f"nb_bench_{os.getpid()}"
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    try:
        body = {"action": "generate", "prompt": "a watercolor fox in the snow, soft light"}
        with PostgresJournal(f"{url}{sep}options=-csearch_path%3D{schema}") as journal:
            per_key, steps = _writes(journal, keys, request_identity(body))
            rerun = []
            for i in range(keys):
                t0 = time.perf_counter()
                journal.begin(SCOPE, f"sku-{i:06d}", request_identity(body))
                rerun.append(time.perf_counter() - t0)
        print(f"journal (PostgreSQL, loopback): {keys} keys")
        print(f"  begin+submitted+succeeded per key: {_ms(per_key)}  (target <= 5 ms)")
        for name, values in steps.items():
            print(f"    {name:<10} {_ms(values)}")
        print(f"  re-run of a finished key (begin -> done, no request): {_ms(rerun)}")
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def run(keys: int, directory: str) -> None:
    path = Path(directory) / "bench-journal.sqlite"
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    body = {"action": "generate", "prompt": "a watercolor fox in the snow, soft light"}
    identity = request_identity(body)
    per_key: list[float] = []
    steps: dict[str, list[float]] = {"begin": [], "submitted": [], "succeeded": []}
    with Journal(path) as journal:
        for i in range(keys):
            key = f"sku-{i:06d}"
            result = _result(i)
            t0 = time.perf_counter()
            journal.begin(SCOPE, key, identity)
            t1 = time.perf_counter()
            journal.submitted(SCOPE, key, str(result["task_id"]), str(result["trace_id"]))
            t2 = time.perf_counter()
            journal.succeeded(SCOPE, key, result, files=[f"out/{key}_0.png"])
            t3 = time.perf_counter()
            per_key.append(t3 - t0)
            steps["begin"].append(t1 - t0)
            steps["submitted"].append(t2 - t1)
            steps["succeeded"].append(t3 - t2)
        rerun: list[float] = []
        for i in range(keys):
            t0 = time.perf_counter()
            decision = journal.begin(SCOPE, f"sku-{i:06d}", identity)
            rerun.append(time.perf_counter() - t0)
            assert decision.kind == "done"
    size = _size(path)
    t0 = time.perf_counter()
    Journal(path).close()
    opened = time.perf_counter() - t0

    image = os.urandom(10 * 2**20)
    edit = {
        "action": "edit",
        "prompt": "make it snow",
        "image_urls": ["data:image/png;base64," + base64.b64encode(image).decode()],
    }
    ident_small = _time(lambda: request_identity(body), 1000)
    ident_big = _time(lambda: request_identity(edit), 5)

    print(f"journal: {keys} keys in one file ({path})")
    print(f"  begin+submitted+succeeded per key: {_ms(per_key)}")
    for name, values in steps.items():
        print(f"    {name:<10} {_ms(values)}")
    print(f"  re-run of a finished key (begin -> done, no request): {_ms(rerun)}")
    print(f"  open with quick_check ({keys} entries): {opened * 1000:.2f} ms")
    print(f"  file size: {size / 1024:.1f} KiB total, {size / keys * 1000 / 1024:.1f} KiB per 1000")
    print(f"  request_identity: generate body {ident_small * 1e6:.1f} us; ", end="")
    print(f"edit with a 10 MiB data URI {ident_big * 1000:.1f} ms")


def _time(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="directory for the file (default: a temp dir)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "NANOBANANA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL URL for the second part ('' skips it)",
    )
    args = parser.parse_args()
    if args.dir:
        run(args.keys, args.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(args.keys, tmp)
    if args.postgres:
        run_postgres(args.keys, args.postgres)


if __name__ == "__main__":
    main()
