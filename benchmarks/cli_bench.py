"""``nanobanana batch`` at scale: wall time against the physical limit, peak RSS, journal size.

Usage: ``python benchmarks/cli_bench.py [--rows 10000] [--concurrency 32] [--task-duration 1.0]
[--poll-interval 0.5] [--dir DIR]``

The simulator runs in its own process (``python -m langchain_nanobanana.testing``, tasks finishing
``--task-duration`` seconds after submission). The benchmark

1. measures the submission latency: 200 sequential ``POST /nano-banana/images`` (async) from a
   client in this process, and the latency with ``--concurrency`` threads submitting at once
   (the one the limit uses: on a small machine the simulator and the client share the CPUs);
2. runs ``python -m langchain_nanobanana batch ROWS.jsonl --concurrency N --no-download --quiet``
   as a subprocess and samples its RSS every 20 ms (``psutil`` when installed, else
   ``/proc/<pid>/status``), reporting the peak; ``--no-download`` because 10 000 image downloads
   from the simulator would measure the simulator's file server, not the CLI;
3. compares the wall time with the physical limit at that concurrency:
   ``rows / (concurrency / latency) + task_duration`` (submissions pipelined N at a time, the
   last task still has to run);
4. re-runs the same command (every row recorded as succeeded: no request at all) for the resume
   time;
5. prints the journal file size and the journal overhead per submission (``begin`` +
   ``submitted`` + ``succeeded`` on a fresh journal, 1000 keys; see ``journal_bench.py``).

Target (issue): peak RSS flat, at most 150 MiB for 10 000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from langchain_nanobanana import NanoBananaClient
from langchain_nanobanana.journal import Journal, request_identity

TOKEN = "bench-token"


def _rss_of(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 when gone)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    except Exception:  # the process ended
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


class Sampler:
    """Samples a process's RSS every ``every`` seconds in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every, self.peak, self.samples = pid, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = _rss_of(self.pid)
            if rss:
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def start_simulator(task_duration: float) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "langchain_nanobanana.testing", "--port", "0", "--token", TOKEN]
    argv += ["--task-duration", str(task_duration)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if "listening on" not in first:
        proc.kill()
        raise SystemExit(f"the simulator did not start: {first!r}")
    return proc, first.split()[-1]


def submission_latency(base_url: str, threads: int = 1, per_thread: int = 200) -> float:
    """Median seconds of one async submission (POST answered with a task id) while ``threads``
    threads submit back to back (``threads=1``: sequential).
    """
    times: list[float] = []
    lock = threading.Lock()
    with NanoBananaClient(TOKEN, base_url=base_url, pool_maxsize=threads + 4) as client:
        client.generate("warm up", wait=False)

        def work(k: int) -> None:
            for i in range(per_thread):
                t0 = time.perf_counter()
                client.generate(f"latency probe {k}-{i}", wait=False)
                with lock:
                    times.append(time.perf_counter() - t0)

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return statistics.median(times)


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) of ``pid`` (psutil), or of this process's waited children."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:  # no psutil, or the process is gone
        return float("nan")


def run_batch(argv: list[str], env: dict[str, str]) -> tuple[float, int, int, str, float]:
    """Run the CLI; returns (wall seconds, peak RSS bytes, exit code, stderr tail, CPU s)."""
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop()
    cpu = _cpu_seconds() - cpu0
    return wall, sampler.peak, proc.returncode, err.decode(errors="replace")[-2000:], cpu


def journal_overhead(directory: Path, keys: int = 1000) -> float:
    """Mean ms of begin + submitted + succeeded per key on a fresh journal."""
    path = directory / "overhead.sqlite"
    scope = "https://api.acedata.cloud"
    identity = request_identity({"action": "generate", "prompt": "a fox"})
    result: dict[str, Any] = {
        "status": "succeeded",
        "task_id": "t",
        "trace_id": "x",
        "images": [{"prompt": "a fox", "image_url": "https://cdn.example/a.png"}],
        "error": None,
    }
    with Journal(path) as journal:
        t0 = time.perf_counter()
        for i in range(keys):
            key = f"k{i}"
            journal.begin(scope, key, identity)
            journal.submitted(scope, key, f"task-{i}")
            journal.succeeded(scope, key, {**result, "task_id": f"task-{i}"}, files=[f"{key}.png"])
        return (time.perf_counter() - t0) / keys * 1000


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def run(args: argparse.Namespace, directory: Path) -> None:
    sim, base_url = start_simulator(args.task_duration)
    try:
        alone = submission_latency(base_url)
        latency = submission_latency(base_url, args.concurrency, 40)
        rows = directory / "rows.jsonl"
        with rows.open("w", encoding="utf-8") as fh:
            for i in range(args.rows):
                fh.write(json.dumps({"prompt": f"a watercolor fox number {i}", "id": f"sku-{i}"}))
                fh.write("\n")
        out = directory / "out"
        env = dict(os.environ, ACEDATACLOUD_API_TOKEN=TOKEN)
        env.pop("ACEDATACLOUD_API_BASE_URL", None)
        argv = [sys.executable, "-m", "langchain_nanobanana", "batch", str(rows), "--out", str(out)]
        argv += ["--base-url", base_url, "--concurrency", str(args.concurrency), "--no-download"]
        argv += ["--poll-interval", str(args.poll_interval), "--quiet"]
        sim_cpu0 = _cpu_seconds(sim.pid)
        wall, peak, code, err, cli_cpu = run_batch(argv, env)
        sim_cpu = _cpu_seconds(sim.pid) - sim_cpu0
        if code != 0:
            raise SystemExit(f"batch exited {code}:\n{err}")
        lines = (out / "manifest.jsonl").read_text().splitlines()
        succeeded = sum(json.loads(x)["status"] == "succeeded" for x in lines)
        resume_wall, resume_peak, resume_code, err, _ = run_batch(argv, env)
        if resume_code != 0:
            raise SystemExit(f"re-run exited {resume_code}:\n{err}")
        journal_size = _size(out / "journal.sqlite")
        overhead = journal_overhead(directory)
    finally:
        sim.terminate()
        sim.wait(10)
    limit = args.rows / (args.concurrency / latency) + args.task_duration
    print(
        f"nanobanana batch: {args.rows} rows (JSONL), --concurrency {args.concurrency}, "
        f"--no-download, --poll-interval {args.poll_interval}; the simulator in its own process, "
        f"tasks finishing {args.task_duration:.1f} s after submission; {os.cpu_count()} CPUs"
    )
    print(f"  submission latency, one at a time (median of 200): {alone * 1000:.2f} ms")
    print(
        f"  submission latency with {args.concurrency} in flight from one bare client (median of "
        f"{args.concurrency * 40}): {latency * 1000:.2f} ms = "
        f"{args.concurrency / latency:.0f} submissions/s"
    )
    print(
        f"  physical limit: rows / (concurrency / latency) + task duration = "
        f"{args.rows} / ({args.concurrency} / {latency * 1000:.2f} ms) + {args.task_duration:.1f}"
        f" s = {limit:.1f} s"
    )
    print(
        f"  wall time (process start to exit): {wall:.1f} s ({wall / limit:.1f}x the limit; "
        f"{args.rows / wall:.0f} rows/s); {succeeded}/{args.rows} succeeded"
    )
    print(
        f"  CPU during the run: CLI {cli_cpu:.1f} s, simulator {sim_cpu:.1f} s "
        f"({(cli_cpu + sim_cpu) / wall:.2f} CPUs busy of {os.cpu_count()})"
    )
    print(f"  peak RSS of the CLI process: {peak / 2**20:.1f} MiB (target <= 150 MiB)")
    print(
        f"  re-run (all recorded, no request): {resume_wall:.1f} s, "
        f"peak RSS {resume_peak / 2**20:.1f} MiB"
    )
    print(
        f"  journal file: {journal_size / 2**20:.2f} MiB "
        f"({journal_size / args.rows * 1000 / 2**20:.2f} MiB per 1000 rows)"
    )
    print(f"  journal overhead per submission (begin+submitted+succeeded): {overhead:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--task-duration", type=float, default=1.0)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--dir", default=None, help="working directory (default: a temp dir)")
    args = parser.parse_args()
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        run(args, Path(args.dir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(args, Path(tmp))


if __name__ == "__main__":
    main()
