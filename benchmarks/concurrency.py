"""Concurrency figures for one client's shared poller (``make bench``), side by side with ``batch``.

Every scenario runs 64 tasks of 2 s against the simulator in a child process (so it never competes
for the GIL with the measured code) and reports, from the simulator's own request log:

* wall time against the physical limit (``submission phase + longest task``);
* task-read requests (``POST /nano-banana/tasks``) against what ``batch`` sends for the same job;
* for ``batch_as_completed``: the lag between each task finishing (its record's ``created_at`` +
  2 s) and its result being yielded.

Scenarios: ``batch``; ``batch_as_completed``; ``abatch_as_completed``; 64 threads calling
``generator.invoke``; 64 parallel tool calls (``asyncio.gather`` of ``tool.ainvoke``) on one
toolkit; and the memory of a 1000-item ``batch`` (MiB of RSS per 1000 tasks, in a fresh process).
Run: ``.venv/bin/python benchmarks/concurrency.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import SimProcess

from langchain_nanobanana import (
    NanoBananaClient,
    NanoBananaImageGenerator,
    NanoBananaToolkit,
)

TASKS = 64
DURATION = 2.0
TASKS_PATH = "/nano-banana/tasks"
SUBMIT_PATH = "/nano-banana/images"


def _client(sim: SimProcess, interval: float) -> NanoBananaClient:
    return NanoBananaClient(
        sim.token, base_url=sim.base_url, poll_interval=interval, max_poll_interval=10.0
    )


def _limit(submitted_at: list[float], start: float) -> float:
    """Physical limit: the last submission's answer + the task's duration, from ``start``."""
    return (max(submitted_at) - start) + DURATION


def _submission_times(sim: SimProcess, start_wall: float) -> list[float]:
    return [r["created_at"] - start_wall for r in sim.tasks().values()]


def scenario_batch(sim: SimProcess, interval: float) -> dict[str, Any]:
    """``batch`` of 64 prompts, ``max_concurrency=8``."""
    with _client(sim, interval) as client:
        gen = NanoBananaImageGenerator(client=client)
        sim.clear()
        wall0, t0 = time.time(), time.monotonic()
        results = gen.batch([f"b{i}" for i in range(TASKS)], config={"max_concurrency": 8})
        elapsed = time.monotonic() - t0
    assert all(r.status == "succeeded" for r in results)
    return _figures(sim, "batch", elapsed, wall0)


def scenario_as_completed(sim: SimProcess, interval: float) -> dict[str, Any]:
    """``batch_as_completed``: wall time and the lag of each yield after its task finished."""
    with _client(sim, interval) as client:
        gen = NanoBananaImageGenerator(client=client)
        sim.clear()
        wall0, t0 = time.time(), time.monotonic()
        yielded: dict[str, float] = {}
        for _, result in gen.batch_as_completed(
            [f"c{i}" for i in range(TASKS)], config={"max_concurrency": 8}
        ):
            assert not isinstance(result, Exception)
            yielded[result.task_id or ""] = time.time()
        elapsed = time.monotonic() - t0
    records = sim.tasks()
    lags = [yielded[t] - (r["created_at"] + DURATION) for t, r in records.items() if t in yielded]
    out = _figures(sim, "batch_as_completed", elapsed, wall0)
    out["max_yield_lag_s"] = round(max(lags), 3)
    out["median_yield_lag_s"] = round(sorted(lags)[len(lags) // 2], 3)
    return out


def scenario_aas_completed(sim: SimProcess, interval: float) -> dict[str, Any]:
    """``abatch_as_completed`` in one event loop."""

    async def run(gen: NanoBananaImageGenerator) -> int:
        count = 0
        async for _, result in gen.abatch_as_completed(
            [f"a{i}" for i in range(TASKS)], config={"max_concurrency": 8}
        ):
            assert not isinstance(result, Exception)
            count += 1
        return count

    with _client(sim, interval) as client:
        gen = NanoBananaImageGenerator(client=client)
        sim.clear()
        wall0, t0 = time.time(), time.monotonic()
        assert asyncio.run(run(gen)) == TASKS
        elapsed = time.monotonic() - t0
    return _figures(sim, "abatch_as_completed", elapsed, wall0)


def scenario_threads(sim: SimProcess, interval: float) -> dict[str, Any]:
    """64 threads each calling ``generator.invoke`` on one client."""
    with _client(sim, interval) as client:
        client.ensure_pool_size(TASKS)
        gen = NanoBananaImageGenerator(client=client)
        sim.clear()
        errors: list[BaseException] = []

        def call(i: int) -> None:
            try:
                gen.invoke(f"t{i}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(TASKS)]
        wall0, t0 = time.time(), time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - t0
    assert not errors, errors[:3]
    return _figures(sim, "64 threads x invoke", elapsed, wall0)


def scenario_tools(sim: SimProcess, interval: float) -> dict[str, Any]:
    """64 parallel tool calls (``asyncio.gather`` of ``ainvoke``) on one toolkit."""
    with _client(sim, interval) as client:
        client.ensure_pool_size(TASKS)
        tool = NanoBananaToolkit(client=client).get_tools()[0]
        sim.clear()

        async def run() -> list[Any]:
            calls = [
                {
                    "type": "tool_call",
                    "id": f"call-{i}",
                    "name": tool.name,
                    "args": {"prompt": f"tool {i}"},
                }
                for i in range(TASKS)
            ]
            return await asyncio.gather(*(tool.ainvoke(c) for c in calls))

        wall0, t0 = time.time(), time.monotonic()
        messages = asyncio.run(run())
        elapsed = time.monotonic() - t0
    assert all(m.status != "error" for m in messages)
    return _figures(sim, "64 parallel tool calls", elapsed, wall0)


def _figures(sim: SimProcess, name: str, elapsed: float, wall0: float) -> dict[str, Any]:
    submitted = _submission_times(sim, wall0)
    limit = max(submitted) + DURATION
    return {
        "scenario": name,
        "wall_s": round(elapsed, 3),
        "limit_s": round(limit, 3),
        "ratio": round(elapsed / limit, 3),
        "submissions": sim.count(SUBMIT_PATH),
        "task_reads": sim.count(TASKS_PATH),
    }


def memory_1000() -> dict[str, Any]:
    """A 1000-item ``batch`` in a fresh process: RSS growth in MiB per 1000 tasks."""
    code = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
import psutil
from _sim import SimProcess
from langchain_nanobanana import NanoBananaClient, NanoBananaImageGenerator
with SimProcess() as sim:
    sim.set("task_duration", 1.0)
    with NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=0.5) as client:
        gen = NanoBananaImageGenerator(client=client)
        gen.batch(["warm"] * 20, config={"max_concurrency": 16})
        gc.collect()
        proc = psutil.Process()
        before = proc.memory_info().rss
        peak = [before]
        import threading
        stop = threading.Event()
        def sample():
            while not stop.wait(0.005):
                peak[0] = max(peak[0], proc.memory_info().rss)
        threading.Thread(target=sample, daemon=True).start()
        t0 = time.monotonic()
        out = gen.batch([f"m{i}" for i in range(1000)], config={"max_concurrency": 16})
        elapsed = time.monotonic() - t0
        stop.set()
        reads = sim.count("/nano-banana/tasks")
    assert all(r.status == "succeeded" for r in out)
    print(json.dumps({"peak_growth_mib": round((peak[0] - before) / 2**20, 2),
                      "wall_s": round(elapsed, 2), "task_reads": reads}))
"""
    root = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", code, root], capture_output=True, text=True, check=True
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["mib_per_1000_tasks"] = figures["peak_growth_mib"]
    return figures


def main() -> int:
    """Run every scenario and print a table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one poll interval, no memory run")
    args = parser.parse_args()
    intervals = [1.0] if args.quick else [1.0, 0.25]
    rows: list[dict[str, Any]] = []
    with SimProcess() as sim:
        sim.set("task_duration", DURATION)
        for interval in intervals:
            batch = scenario_batch(sim, interval)
            others = [
                scenario_as_completed(sim, interval),
                scenario_aas_completed(sim, interval),
                scenario_threads(sim, interval),
                scenario_tools(sim, interval),
            ]
            for row in [batch, *others]:
                row["poll_interval"] = interval
                row["reads_vs_batch"] = round(row["task_reads"] / max(1, batch["task_reads"]), 2)
                rows.append(row)
    ok = True
    print(
        f"{'scenario':28} {'interval':>8} {'wall s':>8} {'limit s':>8} {'ratio':>6} "
        f"{'reads':>6} {'x batch':>8} {'max lag s':>9}"
    )
    for row in rows:
        lag = row.get("max_yield_lag_s", "")
        print(
            f"{row['scenario']:28} {row['poll_interval']:>8} {row['wall_s']:>8} "
            f"{row['limit_s']:>8} {row['ratio']:>6} {row['task_reads']:>6} "
            f"{row['reads_vs_batch']:>8} {lag!s:>9}"
        )
        if row["scenario"] == "batch_as_completed":
            ok &= row["ratio"] <= 1.25 + row["poll_interval"] / row["limit_s"]
            ok &= row["max_yield_lag_s"] <= row["poll_interval"] + 0.25
        if row["scenario"] != "batch":
            ok &= row["reads_vs_batch"] <= 2.0
    if not args.quick:
        memory = memory_1000()
        print(
            f"1000-item batch: peak RSS growth {memory['peak_growth_mib']} MiB "
            f"({memory['mib_per_1000_tasks']} MiB per 1000 tasks), {memory['wall_s']} s, "
            f"{memory['task_reads']} task reads"
        )
    print("targets:", "PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
