"""Benchmarks of langchain-nanobanana against the simulator: ``make bench`` (issue 4).

(a) per-call overhead of ``NanoBananaClient.generate`` (sync mode) vs a raw pooled
    ``requests.Session.post`` of the same payload, zero simulated latency;
(b) a batch of 64 prompts, each task taking 2 s, ``max_concurrency=8``: wall time vs the physical
    limit (submission phase + longest task [+ one poll interval]), vs a plain loop of ``invoke``
    and vs the vendor's SDK ``acedatacloud`` (``wait=True``) driven by a pool of 8 threads;
(c) poll requests per batch round;
(d) peak RSS growth while downloading a 50 MiB image.

Everything runs against ``FakeNanoBananaServer`` in a child process (``_sim.py``), so the server
never competes with the measured code for the GIL. Prints the details, then a Markdown table of
results vs targets (pasted into ``BENCHMARKS.md``). ``--json PATH`` also writes every number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import multiprocessing as mp
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import requests
from _rss import measure as measure_rss
from _sim import SimProcess, with_duration
from langchain_core.callbacks import BaseCallbackHandler

from langchain_nanobanana import ImageResult, NanoBananaClient, NanoBananaImageGenerator
from langchain_nanobanana._core.polling import BATCH_CHUNK, RoundTimer
from langchain_nanobanana._transport import SUBMIT_PATH, TASKS_PATH
from langchain_nanobanana.runnables import PROGRESS_EVENT, ImageGeneratorInput

MiB = 2**20
#: The client's default first wait between polls (what users get without configuring anything).
DEFAULT_POLL_INTERVAL: float = (
    inspect.signature(NanoBananaClient).parameters["poll_interval"].default
)


# -- helpers ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


class ProgressLog(BaseCallbackHandler):
    """Records every ``nano_banana_progress`` event with the time it arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == PROGRESS_EVENT:
            self.events.append((time.perf_counter(), data))


@contextlib.contextmanager
def restart_disabled() -> Iterator[None]:
    """Poll schedule without the restart-on-progress (growth x1.5 only), for comparison: every
    round is scheduled as if no task had finished in it.
    """
    original = RoundTimer.after_round

    def growth_only(
        self: RoundTimer, now: float, *, progress: bool, started: float | None = None
    ) -> None:
        original(self, now, progress=False, started=started)

    RoundTimer.after_round = growth_only  # type: ignore[method-assign]
    try:
        yield
    finally:
        RoundTimer.after_round = original  # type: ignore[method-assign]


# -- (a) per-call overhead --------------------------------------------------------------------


def bench_overhead(sim: SimProcess, calls: int, warmup: int = 50) -> dict[str, Any]:
    sim.set("task_duration", 0.0)
    sim.set("submit_latency", 0.0)
    prompt = "a white siamese cat on a red cushion, studio light"
    url = sim.base_url + SUBMIT_PATH
    headers = {
        "authorization": f"Bearer {sim.token}",
        "accept": "application/json",
        "content-type": "application/json",
    }
    payload = {"action": "generate", "prompt": prompt}
    session = requests.Session()  # pooled: one keep-alive connection, like the client's
    client = NanoBananaClient(sim.token, base_url=sim.base_url, mode="sync")

    def raw() -> None:
        response = session.post(url, json=payload, headers=headers, timeout=(10, 60))
        response.raise_for_status()
        assert response.json()["data"][0]["image_url"]

    def lib() -> None:
        assert client.generate(prompt).urls

    for _ in range(warmup):
        raw()
        lib()
    raw_times: list[float] = []
    lib_times: list[float] = []
    raw_cpu = lib_cpu = 0.0  # this process's CPU time: the client side only (server elsewhere)
    for _ in range(calls):  # interleaved, so drift in machine load hits both alike
        cpu0, start = time.process_time(), time.perf_counter()
        raw()
        cpu1, middle = time.process_time(), time.perf_counter()
        lib()
        raw_times.append(middle - start)
        lib_times.append(time.perf_counter() - middle)
        raw_cpu += cpu1 - cpu0
        lib_cpu += time.process_time() - cpu1
    client.close()
    session.close()
    out = {
        "calls": calls,
        "raw_median_ms": statistics.median(raw_times) * 1e3,
        "raw_p90_ms": percentile(raw_times, 0.9) * 1e3,
        "lib_median_ms": statistics.median(lib_times) * 1e3,
        "lib_p90_ms": percentile(lib_times, 0.9) * 1e3,
    }
    out["ratio_median"] = out["lib_median_ms"] / out["raw_median_ms"]
    out["ratio_p90"] = out["lib_p90_ms"] / out["raw_p90_ms"]
    out["added_median_ms"] = out["lib_median_ms"] - out["raw_median_ms"]
    out["added_p90_ms"] = out["lib_p90_ms"] - out["raw_p90_ms"]
    out["raw_cpu_ms"] = raw_cpu / calls * 1e3
    out["lib_cpu_ms"] = lib_cpu / calls * 1e3
    section("(a) per-call overhead, sync mode, zero simulated latency")
    print(
        f"raw requests.Session.post: median {out['raw_median_ms']:.3f} ms, "
        f"p90 {out['raw_p90_ms']:.3f} ms ({calls} calls)"
    )
    print(
        f"NanoBananaClient.generate: median {out['lib_median_ms']:.3f} ms, "
        f"p90 {out['lib_p90_ms']:.3f} ms ({calls} calls)"
    )
    print(
        f"ratio {out['ratio_median']:.3f} (median), {out['ratio_p90']:.3f} (p90); added "
        f"{out['added_median_ms']:+.3f} ms (median), {out['added_p90_ms']:+.3f} ms (p90)"
    )
    print(
        f"client-side CPU per call: raw {out['raw_cpu_ms']:.3f} ms, library "
        f"{out['lib_cpu_ms']:.3f} ms ({out['lib_cpu_ms'] - out['raw_cpu_ms']:+.3f} ms)"
    )
    return out


# -- (b) and (c) batches ----------------------------------------------------------------------


@dataclass
class BatchRun:
    """One batch: its timings (seconds) and the requests it cost."""

    label: str
    n: int
    poll_interval: float
    wall: float
    submit_phase: float
    longest_task: float
    after_last_task: float  # from the last task's finished_at to the batch's return
    rounds: int
    poll_requests: int
    chunk_slots: int  # sum over rounds of ceil(pending / BATCH_CHUNK)
    submissions: int
    elapsed: list[float] = field(default_factory=list)

    @property
    def limit(self) -> float:
        """Submission phase + longest task: no client can return before this."""
        return self.submit_phase + self.longest_task

    @property
    def limit_interval(self) -> float:
        """The issue's physical limit: submission phase + longest task + one poll interval."""
        return self.limit + self.poll_interval


def run_batch(
    sim: SimProcess,
    prompts: list[ImageGeneratorInput],
    *,
    label: str,
    poll_interval: float,
    max_concurrency: int = 8,
    use_async: bool = False,
) -> BatchRun:
    client = NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=poll_interval)
    generator = NanoBananaImageGenerator(client=client)
    log = ProgressLog()
    config: Any = {"max_concurrency": max_concurrency, "callbacks": [log]}
    sim.clear()

    async def timed_abatch() -> tuple[list[ImageResult], float, float, float]:
        begin = time.perf_counter()  # inside the loop: asyncio.run's set-up is not ours
        out = await generator.abatch(prompts, config=config)
        return out, begin, time.perf_counter(), time.time()

    start_wall = time.time()
    if use_async:
        results, start, end, end_wall = asyncio.run(timed_abatch())
    else:
        start = time.perf_counter()
        results = generator.batch(prompts, config=config)
        end, end_wall = time.perf_counter(), time.time()
    wall = end - start
    rounds = client._poller.rounds  # the client's one poller: every round it made
    client.close()
    for prompt, result in zip(prompts, results, strict=True):  # every image, in input order
        if result.status != "succeeded" or result.images[0].prompt != prompt:
            raise RuntimeError(f"{label}: wrong result for {prompt!r}: {result!r}")
    records = sim.tasks()
    mine = [records[r.task_id] for r in results if r.task_id]
    if log.events:  # the waiter started when the last submission was answered
        first_at, first = log.events[0]
        submit_phase = first_at - first["elapsed"] - start
    else:  # no round saw a task pending: the last submission's arrival stands in
        submit_phase = max(r["created_at"] for r in mine) - start_wall
    # Round k reads the tasks still pending after round k-1 (all of them in round 1), in chunks
    # of BATCH_CHUNK ids. The events give the pending count after each round they report.
    pending_before = [len(prompts), *(data["pending"] for _, data in log.events)][:rounds]
    chunk_slots = sum(math.ceil(p / BATCH_CHUNK) for p in pending_before)
    return BatchRun(
        label=label,
        n=len(prompts),
        poll_interval=poll_interval,
        wall=wall,
        submit_phase=submit_phase,
        longest_task=max(r["finished_at"] - r["created_at"] for r in mine),
        after_last_task=end_wall - max(r["finished_at"] for r in mine),
        rounds=rounds,
        poll_requests=sim.count(TASKS_PATH),
        chunk_slots=chunk_slots,
        submissions=sim.count(SUBMIT_PATH),
        elapsed=[round(data["elapsed"], 3) for _, data in log.events],
    )


def show_batch(run: BatchRun) -> None:
    print(
        f"{run.label}: wall {run.wall:.3f} s | submission phase {run.submit_phase:.3f} s + "
        f"longest task {run.longest_task:.3f} s = {run.limit:.3f} s "
        f"(x{run.wall / run.limit:.3f}); + poll interval {run.poll_interval:g} s = "
        f"{run.limit_interval:.3f} s (x{run.wall / run.limit_interval:.3f}) | returned "
        f"{run.after_last_task:.3f} s after the last task finished | {run.rounds} rounds at "
        f"{run.elapsed} s, {run.poll_requests} poll requests for {run.chunk_slots} chunk-rounds",
        flush=True,
    )


def median_run(runs: list[BatchRun]) -> BatchRun:
    return sorted(runs, key=lambda r: r.wall)[len(runs) // 2]


def run_loop(
    sim: SimProcess, prompts: list[ImageGeneratorInput], poll_interval: float
) -> dict[str, Any]:
    client = NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=poll_interval)
    generator = NanoBananaImageGenerator(client=client)
    sim.clear()
    start = time.perf_counter()
    for prompt in prompts:
        if generator.invoke(prompt).status != "succeeded":
            raise RuntimeError("loop: a task did not succeed")
    wall = time.perf_counter() - start
    client.close()
    return {"n": len(prompts), "wall": wall, "poll_requests": sim.count(TASKS_PATH)}


def run_sdk(
    sim: SimProcess, prompts: list[str], *, workers: int, poll_interval: float
) -> dict[str, Any]:
    from acedatacloud import AceDataCloud  # bench extra only, never a dependency

    sdk = AceDataCloud(api_token=sim.token, base_url=sim.base_url)

    def one(prompt: str) -> None:
        handle = sdk.nano_banana.generate(
            action="generate", prompt=prompt, wait=True, poll_interval=poll_interval
        )
        if not handle.done or not handle.urls():
            raise RuntimeError(f"SDK: task {handle.id} has no image")

    sim.clear()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, prompts))
    wall = time.perf_counter() - start
    sdk.close()
    return {"n": len(prompts), "wall": wall, "poll_requests": sim.count(TASKS_PATH)}


def bench_batches(sim: SimProcess, args: argparse.Namespace) -> dict[str, Any]:
    n, duration, concurrency = args.batch_size, args.task_duration, 8
    default_interval = DEFAULT_POLL_INTERVAL
    sim.set("task_duration", duration)
    sim.set("submit_latency", args.submit_latency)
    texts = [f"catalogue item {i}: a ceramic mug, studio light" for i in range(n)]
    prompts: list[ImageGeneratorInput] = list(texts)
    section(
        f"(b) batch of {n} prompts, each task {duration:g} s, max_concurrency={concurrency}, "
        f"submit latency {args.submit_latency:g} s"
    )
    out: dict[str, Any] = {"n": n, "task_duration": duration, "max_concurrency": concurrency}
    runs: dict[str, list[BatchRun]] = {}
    for interval, reps in ((default_interval, args.repeats), (0.25, args.repeats)):
        key = f"batch_p{interval:g}"
        runs[key] = []
        for rep in range(reps):
            label = f"batch, poll_interval={interval:g} s, run {rep + 1}"
            runs[key].append(run_batch(sim, prompts, label=label, poll_interval=interval))
            show_batch(runs[key][-1])
    label = f"abatch, poll_interval={default_interval:g} s"
    runs["abatch"] = [
        run_batch(sim, prompts, label=label, poll_interval=default_interval, use_async=True)
    ]
    show_batch(runs["abatch"][0])
    for key, key_runs in runs.items():
        out[key] = asdict(median_run(key_runs)) | {
            "limit": median_run(key_runs).limit,
            "limit_interval": median_run(key_runs).limit_interval,
            "walls": [r.wall for r in key_runs],
        }

    loop_n = min(n, args.loop_subset)
    loop = run_loop(sim, prompts[:loop_n], default_interval)
    loop["extrapolated_wall"] = loop["wall"] * n / loop_n
    out["loop"] = loop
    print(
        f"plain loop of invoke (poll_interval={default_interval:g} s): {loop_n} prompts in "
        f"{loop['wall']:.2f} s, {loop['poll_requests']} poll requests; extrapolated linearly "
        f"to {n}: {loop['extrapolated_wall']:.1f} s",
        flush=True,
    )
    sdk_runs = {}
    for sdk_interval in (3.0, default_interval):
        sdk_n = n
        result = run_sdk(sim, texts[:sdk_n], workers=concurrency, poll_interval=sdk_interval)
        result["extrapolated_wall"] = result["wall"] * n / sdk_n
        result["poll_interval"] = sdk_interval
        sdk_runs[f"sdk_p{sdk_interval:g}"] = result
        print(
            f"acedatacloud SDK, wait=True, {concurrency} threads, poll_interval="
            f"{sdk_interval:g} s: {sdk_n} prompts in {result['wall']:.2f} s, "
            f"{result['poll_requests']} poll requests"
            + (f"; extrapolated to {n}: {result['extrapolated_wall']:.1f} s" if sdk_n < n else ""),
            flush=True,
        )
    out.update(sdk_runs)

    # Mixed durations (1-3 s, seeded): the restart-on-progress of the poll schedule at work.
    section(f"(b') batch of {n} prompts with task durations spread over 1-3 s")
    sim.set("task_duration", 3600.0)  # tasks end only when the completer says so
    sim.start_completer()
    rng = random.Random(20261122)
    spread: list[ImageGeneratorInput] = [
        with_duration(f"variant {i}: a ceramic mug", rng.uniform(1.0, 3.0)) for i in range(n)
    ]
    for restart in (True, False):
        label = "spread, " + ("restart on progress" if restart else "growth x1.5 only")
        key = "spread_restart" if restart else "spread_growth_only"
        ctx = contextlib.nullcontext() if restart else restart_disabled()
        with ctx:
            spread_runs = [
                run_batch(sim, spread, label=label, poll_interval=default_interval)
                for _ in range(args.repeats)
            ]
        for run in spread_runs:
            show_batch(run)
        best = median_run(spread_runs)
        out[key] = asdict(best) | {"limit": best.limit, "limit_interval": best.limit_interval}
    sim.set("task_duration", duration)
    return out


# -- (d) streamed download ------------------------------------------------------------------


def bench_download(sim: SimProcess, nbytes: int) -> dict[str, Any]:
    section(f"(d) peak RSS growth downloading a {nbytes / MiB:g} MiB image (fresh process each)")
    ctx = mp.get_context("spawn")
    out: dict[str, Any] = {"bytes": nbytes}
    for mode in ("stream", "naive"):
        with ctx.Pool(1) as pool:
            result = pool.apply(measure_rss, (mode, sim.base_url, nbytes))
        out[mode] = result
        what = (
            "ImageResult.download(client=...) (streamed)"
            if mode == "stream"
            else "naive session.get(url).content, for contrast"
        )
        print(
            f"{what}: {result['bytes'] / MiB:.1f} MiB in {result['seconds']:.2f} s, "
            f"peak RSS growth {result['peak_growth_mib']:.2f} MiB (sampled every 1 ms), "
            f"ru_maxrss growth {result['maxrss_growth_mib']:.2f} MiB "
            f"(baseline RSS {result['baseline_mib']:.1f} MiB)",
            flush=True,
        )
    return out


# -- (e) import cost ------------------------------------------------------------------------

_IMPORT_TIMER = """
import time
start = time.perf_counter()
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableSerializable
from langchain_core.tools import BaseTool, BaseToolkit
import pydantic, requests
middle = time.perf_counter()
import langchain_nanobanana
end = time.perf_counter()
print(middle - start, end - middle)
"""


def bench_import(runs: int = 5) -> dict[str, Any]:
    section(f"(e) import cost in a fresh interpreter (median of {runs})")
    # Both phases are timed inside the same interpreter, so the package's own share is measured
    # directly rather than as the difference of two noisy medians.
    samples = [
        [
            float(x)
            for x in subprocess.run(
                [sys.executable, "-c", _IMPORT_TIMER], capture_output=True, text=True, check=True
            ).stdout.split()
        ]
        for _ in range(runs)
    ]
    deps = statistics.median(s[0] for s in samples)
    own = statistics.median(s[1] for s in samples)
    out = {"dependencies_s": deps, "total_s": deps + own, "own_s": own}
    print(
        f"langchain_core classes + requests + pydantic: {deps * 1e3:.0f} ms; then "
        f"`import langchain_nanobanana`: +{own * 1e3:.0f} ms"
    )
    return out


# -- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages = {}
    for name in (
        "langchain-nanobanana",
        "langchain-core",
        "requests",
        "urllib3",
        "pydantic",
        "acedatacloud",
        "httpx",
        "psutil",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(results: dict[str, Any]) -> list[str]:
    rows = ["| | measurement | result | target | verdict |", "| --- | --- | --- | --- | --- |"]
    if "overhead" in results:
        a = results["overhead"]
        rows.append(
            f"| a | `generate` (sync) vs raw pooled `Session.post`, {a['calls']} calls | "
            f"median {a['lib_median_ms']:.3f} vs {a['raw_median_ms']:.3f} ms: ratio "
            f"{a['ratio_median']:.3f}, {a['added_median_ms']:+.3f} ms/call (p90 "
            f"{a['lib_p90_ms']:.3f} vs {a['raw_p90_ms']:.3f} ms, {a['added_p90_ms']:+.3f} ms; "
            f"client CPU {a['lib_cpu_ms']:.3f} vs {a['raw_cpu_ms']:.3f} ms) | "
            f"< 1 ms added (median) | {verdict(a['added_median_ms'] < 1.0)} |"
        )
    if "batch" in results:
        b = results["batch"]
        n = b["n"]
        batch = b[f"batch_p{b['default_interval']:g}"]
        fast = b["batch_p0.25"]
        for name, run in (("batch", batch), ("batch", fast), ("abatch", b["abatch"])):
            ratio = run["wall"] / run["limit_interval"]
            rows.append(
                f"| b | `{name}` of {n} x {b['task_duration']:g} s tasks, poll_interval "
                f"{run['poll_interval']:g} s (median of {len(run.get('walls', [1]))}) | "
                f"{run['wall']:.2f} s; limit {run['limit']:.2f} s (submission "
                f"{run['submit_phase']:.2f} + task {run['longest_task']:.2f}): "
                f"x{run['wall'] / run['limit']:.2f}; limit + 1 interval {run['limit_interval']:.2f}"
                f" s: x{ratio:.2f} | <= 1.25 x (submission + longest task + 1 poll interval) | "
                f"{verdict(ratio <= 1.25)} |"
            )
        loop = b["loop"]
        speed = loop["extrapolated_wall"] / batch["wall"]
        rows.append(
            f"| b | plain loop of `invoke` ({loop['n']} run, x{n // loop['n']} extrapolated) | "
            f"{loop['extrapolated_wall']:.1f} s: batch is {speed:.1f}x faster | >= 3x | "
            f"{verdict(speed >= 3)} |"
        )
        for key in ("sdk_p3", f"sdk_p{b['default_interval']:g}"):
            sdk = b[key]
            speed = sdk["extrapolated_wall"] / batch["wall"]
            note = "" if sdk["n"] == n else f", {sdk['n']} run and extrapolated"
            default = " (SDK default)" if sdk["poll_interval"] == 3.0 else " (same as ours)"
            rows.append(
                f"| b | `acedatacloud` SDK, `wait=True`, 8 threads, poll "
                f"{sdk['poll_interval']:g} s{default}{note} | {sdk['extrapolated_wall']:.1f} s, "
                f"{sdk['poll_requests']} poll requests: batch is {speed:.1f}x faster | >= 3x | "
                f"{verdict(speed >= 3)} |"
            )
        for key, what in (
            ("spread_restart", "restart on progress"),
            ("spread_growth_only", "growth x1.5 only, as before this change (for comparison)"),
        ):
            run = b[key]
            ok = run["after_last_task"] <= run["poll_interval"]
            mark = verdict(ok) if key == "spread_restart" else ("(met)" if ok else "(missed)")
            rows.append(
                f"| b' | `batch`, tasks 1-3 s, poll_interval {run['poll_interval']:g} s, {what} | "
                f"{run['wall']:.2f} s, returned {run['after_last_task']:.2f} s after the last task;"
                f" x{run['wall'] / run['limit']:.2f} limit, x"
                f"{run['wall'] / run['limit_interval']:.2f} limit + 1 interval | "
                f"<= 1 interval after the last task | {mark} |"
            )
        per_chunk = batch["poll_requests"] / batch["chunk_slots"]
        rows.append(
            f"| c | poll requests per round, {n} tasks (chunks of {BATCH_CHUNK}) | "
            f"{batch['poll_requests']} requests in {batch['rounds']} rounds = "
            f"{batch['chunk_slots']} chunk-rounds: {per_chunk:.2f} per chunk per round (loop of "
            f"`invoke`: {b['loop']['poll_requests']} for {b['loop']['n']} tasks; SDK: "
            f"{b['sdk_p3']['poll_requests']} for {b['sdk_p3']['n']}) | 1 per round (per chunk) | "
            f"{verdict(per_chunk == 1.0)} |"
        )
    if "download" in results:
        d = results["download"]
        stream, naive = d["stream"], d["naive"]
        growth = max(stream["peak_growth_mib"], stream["maxrss_growth_mib"])
        rows.append(
            f"| d | peak RSS growth, {d['bytes'] / MiB:g} MiB download | streamed "
            f"{growth:.2f} MiB (naive `.content`: {naive['peak_growth_mib']:.1f} MiB) | "
            f"< 10 MB | {verdict(growth * MiB < 10e6)} |"
        )
    if "import" in results:
        e = results["import"]
        rows.append(
            f"| e | `import langchain_nanobanana` after its dependencies (fresh interpreter) | "
            f"+{e['own_s'] * 1e3:.0f} ms (dependencies {e['dependencies_s'] * 1e3:.0f} ms); no "
            "socket, thread, simulator or optional package (`test_batch.py`) | (none) | - |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="abcde", help="sections to run, e.g. 'ad' (default all)")
    parser.add_argument("--calls", type=int, default=500, help="(a) calls per side (default 500)")
    parser.add_argument("--batch-size", type=int, default=64, help="(b) prompts (default 64)")
    parser.add_argument("--task-duration", type=float, default=2.0, help="(b) seconds per task")
    parser.add_argument("--submit-latency", type=float, default=0.0, help="(b) seconds per submit")
    parser.add_argument("--repeats", type=int, default=3, help="(b) runs per batch setting")
    parser.add_argument("--loop-subset", type=int, default=8, help="(b) invoke loop prompts")
    parser.add_argument("--download-mib", type=float, default=50, help="(d) image size in MiB")
    parser.add_argument("--quick", action="store_true", help="smaller runs for a smoke test")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.repeats, args.loop_subset = 100, 1, 2
    started = time.perf_counter()
    facts = machine()
    print("machine:", json.dumps(facts))
    results: dict[str, Any] = {"machine": facts}
    with SimProcess() as sim:
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            ("a", "overhead", lambda: bench_overhead(sim, args.calls)),
            ("b", "batch", lambda: bench_batches(sim, args)),
            ("d", "download", lambda: bench_download(sim, int(args.download_mib * MiB))),
            ("e", "import", bench_import),
        ]
        for letter, key, step in steps:
            if letter in args.only or (letter == "b" and "c" in args.only):
                results[key] = step()
    if "batch" in results:
        results["batch"]["default_interval"] = DEFAULT_POLL_INTERVAL
    results["runtime_s"] = time.perf_counter() - started
    section("results")
    print(
        f"{facts['nproc']} CPU(s) {facts['cpu']}, Python {facts['python']}, "
        f"{facts['platform']}; total runtime {results['runtime_s']:.0f} s\n"
    )
    rows = table(results)
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all("FAIL" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
