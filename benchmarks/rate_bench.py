"""Rate control per client against a rate-limited simulator (SPEC "A fleet on one account").

Usage: ``python benchmarks/rate_bench.py [--rows 1000] [--concurrency 32] [--limit 50]
[--task-duration 0] [--only cli,batch]``

The simulator runs in its own process (``_sim.SimProcess``) with ``rate_limit`` = ``--limit`` API
requests per second (a sliding 1 s window over submissions and task reads; beyond it ``429`` with
``Retry-After: 1``). Four runs, each on a fresh simulator:

* ``nanobanana batch ROWS.jsonl --concurrency 32 --no-download`` as a subprocess (wall time from
  process start to exit), without and with ``--rate-limit 50``;
* ``NanoBananaImageGenerator(client=...).batch(prompts, config={"max_concurrency": 32})`` in this
  process, without and with ``NanoBananaClient(rate_limit=50)``.

Figures: wall time against the physical limit (``rows / limit`` seconds: every submission is one
API request), the share of API requests answered 429, and duplicate submissions (tasks created
minus rows). Targets: wall <= 1.10 x ``rows / limit``; 429s <= 5 % of the API requests; no
duplicate. ``--no-download`` because image downloads are not API requests (never rate limited)
and would measure the simulator's PNG encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _sim import SimProcess

from langchain_nanobanana import NanoBananaClient, NanoBananaImageGenerator
from langchain_nanobanana._transport import SUBMIT_PATH, TASKS_PATH
from langchain_nanobanana.runnables import ImageGeneratorInput

TOKEN = "bench-token"


def _sim(limit: float, duration: float) -> SimProcess:
    sim = SimProcess(TOKEN)
    sim.set("rate_limit", limit)
    sim.set("task_duration", duration)
    return sim


def _figures(
    sim: SimProcess, name: str, wall: float, rows: int, limit: float, ok_rows: int
) -> dict[str, Any]:
    submits, reads = sim.count(SUBMIT_PATH), sim.count(TASKS_PATH)
    refused = sim.rate_limited()
    tasks = sim.tasks()
    prompts = Counter(str(t.get("request", {}).get("prompt")) for t in tasks.values())
    ideal = rows / limit
    return {
        "run": name,
        "wall_s": round(wall, 2),
        "api_span_s": round(sim.span(), 2),
        "limit_s": round(ideal, 2),
        "ratio": round(wall / ideal, 3),
        "api_requests": submits + reads,
        "submissions": submits,
        "reads": reads,
        "answered_429": refused,
        "share_429": round(refused / max(1, submits + reads), 4),
        "tasks": len(tasks),
        "duplicates": sum(n - 1 for n in prompts.values() if n > 1) + max(0, len(tasks) - rows),
        "succeeded": ok_rows,
    }


def run_cli(args: argparse.Namespace, rate_limit: float | None) -> dict[str, Any]:
    """``nanobanana batch`` as a subprocess; wall time from process start to exit."""
    with _sim(args.limit, args.task_duration) as sim, tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        rows_file.write_text(
            "".join(
                json.dumps({"id": f"r{i}", "prompt": f"row {i}"}) + "\n" for i in range(args.rows)
            )
        )
        out = Path(tmp) / "out"
        cmd = [
            sys.executable,
            "-m",
            "langchain_nanobanana",
            "batch",
            str(rows_file),
            "--concurrency",
            str(args.concurrency),
            "--no-download",
            "--quiet",
            "--out",
            str(out),
            "--base-url",
            sim.base_url,
        ]
        if rate_limit is not None:
            cmd += ["--rate-limit", f"{rate_limit:g}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACEDATACLOUD_")}
        env["ACEDATACLOUD_API_TOKEN"] = TOKEN
        start = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        end = time.monotonic()
        wall = end - start
        first, last = sim.first_last()
        manifest = out / "manifest.jsonl"
        lines = manifest.read_text().splitlines() if manifest.exists() else []
        ok = sum(1 for line in lines if json.loads(line).get("status") == "succeeded")
        if proc.returncode != 0:
            print(f"  (exit {proc.returncode}) {proc.stderr[-400:]}", file=sys.stderr)
        name = "nanobanana batch" + (f" --rate-limit {rate_limit:g}" if rate_limit else "")
        figures = _figures(sim, name, wall, args.rows, args.limit, ok)
        # where the time outside the API requests goes: start-up, and after the last answer
        figures["first_request_s"] = round(first - start, 2)
        figures["after_last_s"] = round(end - last, 2)
        return figures


def run_batch(args: argparse.Namespace, rate_limit: float | None) -> dict[str, Any]:
    """``NanoBananaImageGenerator.batch`` in this process."""
    with _sim(args.limit, args.task_duration) as sim:
        client = NanoBananaClient(TOKEN, base_url=sim.base_url, rate_limit=rate_limit)
        generator = NanoBananaImageGenerator(client=client)
        prompts: list[ImageGeneratorInput] = [f"prompt {i}" for i in range(args.rows)]
        start = time.monotonic()
        results = generator.batch(
            prompts, config={"max_concurrency": args.concurrency}, return_exceptions=True
        )
        wall = time.monotonic() - start
        ok = sum(1 for r in results if getattr(r, "status", None) == "succeeded")
        client.close()
        name = "Runnable.batch" + (f" rate_limit={rate_limit:g}" if rate_limit else "")
        return _figures(sim, name, wall, args.rows, args.limit, ok)


def main() -> int:
    """Run the four scenarios, print a table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--limit", type=float, default=50.0, help="simulator requests/s")
    parser.add_argument("--task-duration", type=float, default=0.0, help="seconds per task")
    parser.add_argument("--only", default="cli,batch", help="cli, batch or both (default)")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    for kind in args.only.split(","):
        for rate in (None, args.limit):
            runs.append(run_cli(args, rate) if kind == "cli" else run_batch(args, rate))
            print(json.dumps(runs[-1]), flush=True)
    print(
        f"\n{args.rows} rows, concurrency {args.concurrency}, simulator limited to "
        f"{args.limit:g} API requests/s (sliding 1 s window), tasks {args.task_duration:g} s; "
        f"physical limit {args.rows / args.limit:g} s"
    )
    head = f"{'run':36} {'wall s':>7} {'x limit':>8} {'API req':>8} {'429s':>5} {'429 %':>6}"
    print(head + f" {'dup':>4} {'ok':>5}")
    ok = True
    for r in runs:
        print(
            f"{r['run']:36} {r['wall_s']:>7} {r['ratio']:>8} {r['api_requests']:>8} "
            f"{r['answered_429']:>5} {100 * r['share_429']:>6.2f} {r['duplicates']:>4} "
            f"{r['succeeded']:>5}"
        )
        ok &= r["ratio"] <= 1.10 and r["share_429"] <= 0.05 and r["duplicates"] == 0
        ok &= r["succeeded"] == args.rows
    print(
        "targets (<= 1.10 x limit, <= 5 % 429, no duplicate, all succeeded):",
        "PASS" if ok else "MISS",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
