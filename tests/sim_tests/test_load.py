"""Load: 200 generations through ``abatch`` on one client against a rate-limited simulator.

The simulator runs in a separate process (``FakeNanoBananaServer`` in a child Python, 20 API
requests per second, 429 with ``Retry-After: 1`` beyond), so the threads counted here are the
client's alone and the two sides do not share a GIL. The child reports what it saw (tasks created
and their prompts, requests received) on request over its stdin/stdout, without any new route.

What is proven: every item succeeds or fails with a clear error; the simulator created exactly one
task per item (the 429 retries never duplicated a paid submission); the client process never held
more than ``baseline + min(32, cpu_count + 4) + 1`` threads (the asyncio default executor used by
``asyncio.to_thread`` is the only thread pool involved; the one more is the client's single poller
thread, whatever the number of tasks); every task was read in shared ``retrieve_batch`` rounds.
Figures are printed (``pytest -s`` or the captured output of a failure) and recorded in
RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from langchain_nanobanana import (
    ImageResult,
    NanoBananaClient,
    NanoBananaError,
    NanoBananaImageGenerator,
)
from langchain_nanobanana.runnables import ImageGeneratorInput

ITEMS = 200
RATE_LIMIT = 20  # API requests per second accepted by the simulator
MAX_CONCURRENCY = 10
TOKEN = "load-token-not-secret"

_CHILD = r"""
import json, sys
from collections import Counter
from langchain_nanobanana.testing import FakeNanoBananaServer

sim = FakeNanoBananaServer(token=sys.argv[1], rate_limit=float(sys.argv[2]), task_duration=0.3)
sim.start()
print(json.dumps({"base_url": sim.base_url}), flush=True)
sys.stdin.readline()  # the parent is done
tasks = sim.tasks
requests = sim.requests
print(json.dumps({
    "tasks": {tid: record["request"].get("prompt") for tid, record in tasks.items()},
    "requests": dict(Counter(r.path for r in requests)),
    "ids_per_read": [
        len(r.json.get("ids") or [r.json.get("id")]) if isinstance(r.json, dict) else 0
        for r in requests if r.path == "/nano-banana/tasks"
    ],
}), flush=True)
sim.stop()
"""


@pytest.fixture
def remote_sim() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A simulator in a child process: yields ``(base_url, process)``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, TOKEN, str(RATE_LIMIT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        yield hello["base_url"], proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _stats(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("stats\n")
    proc.stdin.flush()
    stats: dict[str, Any] = json.loads(proc.stdout.readline())
    return stats


class ThreadSampler:
    """Samples ``threading.active_count()`` every 2 ms in a thread of its own (not counted)."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_os = 0
        self.pollers = 0  # most ``nanobanana-poller`` threads alive at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-sampler", daemon=True)

    @staticmethod
    def os_threads() -> int:
        """Threads of this process as the kernel sees them (Linux), else 0."""
        try:
            return len(os.listdir("/proc/self/task"))
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, threading.active_count() - 1)
            pollers = sum(t.name == "nanobanana-poller" for t in threading.enumerate())
            self.pollers = max(self.pollers, pollers)
            self.peak_os = max(self.peak_os, self.os_threads() - 1)
            time.sleep(0.002)

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_200_generations_under_rate_limit(
    remote_sim: tuple[str, subprocess.Popen[str]],
) -> None:
    base_url, proc = remote_sim
    baseline = threading.active_count()
    baseline_os = ThreadSampler.os_threads()
    pool = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor size
    bound = baseline + pool + 1  # + the client's one poller thread
    client = NanoBananaClient(
        TOKEN,
        base_url=base_url,
        poll_interval=0.3,
        max_poll_interval=1.0,
        max_wait=60.0,
        # Default backoff; one retry more than the default 2 as a margin on a loaded machine
        # (each 429 costs one Retry-After second; the default also passed every local run).
        max_retries=3,
        pool_maxsize=MAX_CONCURRENCY,
    )
    generator = NanoBananaImageGenerator(client=client)
    prompts = [f"load item {i:03d}: a paper boat on a pond" for i in range(ITEMS)]
    inputs: list[ImageGeneratorInput] = list(prompts)

    started = time.monotonic()
    with client, ThreadSampler() as sampler:
        # With return_exceptions=True a failed item comes back as its exception (langchain-core
        # types ``abatch`` as returning outputs only).
        results = cast(
            "list[ImageResult | Exception]",
            await asyncio.wait_for(
                generator.abatch(
                    inputs, config={"max_concurrency": MAX_CONCURRENCY}, return_exceptions=True
                ),
                timeout=90,
            ),
        )
    elapsed = time.monotonic() - started
    stats = _stats(proc)

    ok = [r for r in results if not isinstance(r, Exception)]
    failures = collections.Counter(type(r).__name__ for r in results if isinstance(r, Exception))
    tasks: dict[str, str] = stats["tasks"]
    by_prompt = collections.Counter(tasks.values())
    duplicates = sum(n - 1 for n in by_prompt.values())
    submissions = stats["requests"].get("/nano-banana/images", 0)
    figures = {
        "items": ITEMS,
        "successes": len(ok),
        "failures": dict(failures),
        "tasks_created": len(tasks),
        "duplicates": duplicates,
        "submission_requests": submissions,
        "rejected_submissions_429": submissions - len(tasks),
        "task_read_requests": stats["requests"].get("/nano-banana/tasks", 0),
        "ids_per_read": stats["ids_per_read"],
        "peak_threads": sampler.peak,
        "poller_threads": sampler.pollers,
        "baseline_threads": baseline,
        "thread_bound": bound,
        "peak_os_threads": sampler.peak_os,
        "baseline_os_threads": baseline_os,
        "seconds": round(elapsed, 1),
    }
    print("\nLOAD FIGURES " + json.dumps(figures))

    assert len(results) == ITEMS
    # Every item succeeded or failed with a clear, typed error that names what happened.
    for result in results:
        if isinstance(result, Exception):
            assert isinstance(result, NanoBananaError), repr(result)
            assert str(result)
        else:
            assert result.status == "succeeded" and len(result.urls) == 1
    # Exactly one task per item: no duplicate paid submission, no item lost.
    assert duplicates == 0
    assert (
        len(tasks)
        == len(set(tasks))
        == len(ok)
        + sum(1 for r in results if isinstance(r, Exception) and getattr(r, "task_id", None))
    )
    for prompt, result in zip(prompts, results, strict=True):
        if not isinstance(result, Exception):
            assert result.task_id is not None
            assert tasks[result.task_id] == prompt  # the right images for the right item
    assert set(by_prompt) <= set(prompts)
    # Retry-After handling gets everything through at 20 requests per second.
    assert len(ok) == ITEMS, figures
    assert figures["rejected_submissions_429"] > 0  # the limit really was hit
    # Threads: only the default executor's workers and the one poller thread are added.
    assert sampler.peak <= bound, figures
    assert sampler.pollers == 1, figures  # one poller thread for 200 tasks, not one per task
    # Task reads: shared rounds of up to 50 ids, never one request per task per round.
    assert max(figures["ids_per_read"]) > 1
    assert figures["task_read_requests"] < ITEMS
