"""Run a fleet of ``nanobanana batch`` workers on one file and one PostgreSQL journal, kill one
with SIGKILL, and report what the simulator and the surviving manifests say.

Shared by ``tests/sim_tests/test_fleet.py`` (1 run) and ``benchmarks/fleet_bench.py`` (a table
of runs, and a 10 000-row run with rows/s and peak RSS per worker).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_nanobanana.testing import FakeNanoBananaServer

SUBMIT = "/nano-banana/images"
FINAL = {"succeeded", "failed", "uncertain", "invalid"}


def write_rows(path: Path, n: int) -> Path:
    """``n`` JSONL rows with ids ``r0``… and distinct prompts."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"r{i}", "prompt": f"fleet row {i}"}) + "\n")
    return path


@dataclass
class FleetReport:
    """What one fleet run did."""

    rows: int
    kill_after: float | None
    killed: int | None
    seconds: float
    codes: list[int | None]
    paid_by_worker: dict[int, int] = field(default_factory=dict)
    submissions: int = 0
    duplicates: int = 0
    uncertain: int = 0
    not_final: dict[int, int] = field(default_factory=dict)
    max_rss_kib: list[int] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def _worker_command(file: Path, url: str, out: Path, base_url: str, extra: list[str]) -> list[str]:
    runner = (
        "import resource, sys, runpy\n"
        "sys.argv = ['nanobanana', *sys.argv[2:]]\n"
        "code = 0\n"
        "try:\n"
        "    runpy.run_module('langchain_nanobanana', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code if isinstance(exc.code, int) else 1\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "open(sys.argv[sys.argv.index('--out') + 1] + '.rss', 'w').write(str(rss))\n"
        "sys.exit(code)\n"
    )
    return [
        sys.executable,
        "-c",
        runner,
        "_",
        "batch",
        str(file),
        "--journal",
        url,
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--poll-interval",
        "0.05",
        "--no-download",
        *extra,
    ]


def run_fleet(
    sim: FakeNanoBananaServer,
    url: str,
    file: Path,
    root: Path,
    *,
    workers: int = 3,
    kill_after: float | None = None,
    kill_at_submission: int | None = None,
    kill_index: int = 0,
    lease: float = 2.0,
    timeout: float = 300.0,
    extra: list[str] | None = None,
) -> FleetReport:
    """Start ``workers`` workers at once; SIGKILL worker ``kill_index`` after ``kill_after``
    seconds, or once the simulator has received ``kill_at_submission`` submissions (a moment
    that always falls inside the run, however fast the fleet is); ``None``: nobody. Wait for
    the others; read the simulator and the manifests (``kill_after`` in the report: seconds
    from the start to the kill).
    """
    env = {
        **os.environ,
        "ACEDATACLOUD_API_TOKEN": str(sim.token),
        "NANOBANANA_JOURNAL_LEASE": str(lease),
    }
    rows = len(file.read_text(encoding="utf-8").splitlines())
    started = time.monotonic()
    procs = []
    for i in range(workers):
        err = open(root / f"w{i}.err", "w+", encoding="utf-8")  # noqa: SIM115 - closed below
        command = _worker_command(file, url, root / f"w{i}", sim.base_url, extra or [])
        procs.append(
            (subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err), err)
        )
    killed = None
    if kill_at_submission is not None:
        deadline = started + timeout
        while len(sim.requests_to(SUBMIT)) < kill_at_submission and time.monotonic() < deadline:
            time.sleep(0.005)
        kill_after = time.monotonic() - started
    if kill_after is not None:
        time.sleep(max(0.0, kill_after - (time.monotonic() - started)))
        procs[kill_index][0].send_signal(signal.SIGKILL)
        killed = kill_index
    codes: list[int | None] = []
    for proc, _ in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started))))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            codes.append(None)
    report = FleetReport(rows, kill_after, killed, time.monotonic() - started, codes)
    for _, err in procs:
        err.seek(0)
        report.stderr.append(err.read()[-2000:])
        err.close()
    prompts = [r.json.get("prompt") for r in sim.requests_to(SUBMIT) if isinstance(r.json, dict)]
    counts = collections.Counter(prompts)
    report.submissions = len(prompts)
    report.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    pids = {proc.pid: i for i, (proc, _) in enumerate(procs)}
    report.paid_by_worker = _paid_by_worker(url, pids)
    uncertain: set[str] = set()
    for i in range(workers):
        if i == killed:
            continue
        statuses = _manifest(root / f"w{i}" / "manifest.jsonl")
        report.not_final[i] = rows - sum(1 for s in statuses.values() if s in FINAL)
        uncertain |= {k for k, s in statuses.items() if s == "uncertain"}
        rss = root / f"w{i}.rss"
        report.max_rss_kib.append(int(rss.read_text()) if rss.exists() else -1)
    report.uncertain = len(uncertain)
    return report


def _manifest(path: Path) -> dict[str, str]:
    statuses: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record: dict[str, Any] = json.loads(line)
                statuses[str(record.get("id"))] = str(record.get("status"))
    return statuses


def _paid_by_worker(url: str, pids: dict[int, int]) -> dict[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT owner_pid, count(*) FROM nanobanana_journal_entries GROUP BY owner_pid"
        ).fetchall()
    return {pids.get(int(pid or 0), -1): int(n) for pid, n in found}
