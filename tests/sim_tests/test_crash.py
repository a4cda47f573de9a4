"""``kill -9`` a running ``nanobanana batch`` and re-run it: nothing is paid twice.

The simulator runs in this process (tasks take 1 s or 2.5 s, each submission 0.2 s: windows);
``nanobanana batch`` runs as a subprocess on 24 rows with ``--concurrency 4`` and is killed with
SIGKILL at a chosen moment, detected from the simulator's request log: while submitting (some
submissions received, not all), while polling (every row has its task, no image fetched yet) or
while downloading (image fetches slowed down by the simulator's ``slow`` fault, a few received).
Then it is re-run until it exits 0 or 4. Checked each time:

* no row created two tasks (tasks counted per prompt on the simulator);
* after a kill, the journal holds at most ``--concurrency`` reservations without a task (the
  submissions in flight): only those can be reported ``uncertain``;
* the first run that completes reports every row ``succeeded`` or ``uncertain`` in the manifest;
* an uncertain row is settled with ``nanobanana journal resolve KEY --task-id ID`` (the task found
  on the simulator by its prompt) or ``journal forget KEY`` (its POST never arrived), after which a
  re-run exits 0 with every row ``succeeded``, still one task per prompt, one image file per row
  and no temporary file of a killed download left.

Run with ``-s`` to see the table (kill moments x runs x duplicates x uncertain).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from langchain_nanobanana.cli import main
from langchain_nanobanana.journal import Journal, request_identity
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN

pytestmark = pytest.mark.timeout(120)

ROWS = 24
CONCURRENCY = 4
SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


@dataclass
class Outcome:
    """One scenario's line of the table."""

    name: str
    kills: list[str] = field(default_factory=list)
    runs: int = 0
    duplicates: int = 0
    uncertain_at_kills: list[int] = field(default_factory=list)
    uncertain_reported: int = 0
    settled: int = 0
    exit_codes: list[int | str] = field(default_factory=list)


def _rows(tmp: Path, name: str) -> tuple[Path, dict[str, str]]:
    """24 rows, half with an ``id``, half keyed by identity; returns the file and key -> prompt."""
    keys: dict[str, str] = {}
    lines = []
    for i in range(ROWS):
        prompt = f"{name} fox number {i}"
        if i % 2:
            lines.append({"prompt": prompt, "id": f"{name}-{i:02d}"})
            keys[f"{name}-{i:02d}"] = prompt
        else:
            lines.append({"prompt": prompt})
            identity = request_identity({"action": "generate", "prompt": prompt})
            keys[f"auto-{identity[:20]}-1"] = prompt
    path = tmp / f"{name}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path, keys


def _start(sim: FakeNanoBananaServer, rows: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["ACEDATACLOUD_API_TOKEN"] = SIM_TOKEN
    env.pop("ACEDATACLOUD_API_BASE_URL", None)
    argv = [sys.executable, "-m", "langchain_nanobanana", "batch", str(rows), "--out", str(out)]
    argv += ["--base-url", sim.base_url, "--concurrency", str(CONCURRENCY)]
    argv += ["--poll-interval", "0.1", "--max-wait", "60"]
    with log.open("ab") as err:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)


def _files(sim: FakeNanoBananaServer) -> int:
    return sum(1 for r in sim.requests if r.path.startswith("/files/"))


def _all_answered(sim: FakeNanoBananaServer) -> bool:
    """Every row has its task and the last submission was answered (latency 0.2 s) by now."""
    prompts = {rec["request"]["prompt"] for rec in sim.tasks.values()}
    submits = sim.requests_to(SUBMIT)
    return len(prompts) == ROWS and time.monotonic() - submits[-1].time > 0.35


def _moment(sim: FakeNanoBananaServer, moment: str) -> Callable[[], bool]:
    """A predicate that holds when the run is at ``moment`` (counted from now).

    ``submitting``: 6 more submissions received (more are in flight); ``polling``: every
    submission answered, task reads going on, no image fetched yet; ``downloading``: every
    submission answered and 3 more (slow) image fetches received.
    """
    submitted, fetched = len(sim.requests_to(SUBMIT)), _files(sim)
    polled = len(sim.requests_to(TASKS))
    if moment == "submitting":
        return lambda: len(sim.requests_to(SUBMIT)) >= submitted + 6
    if moment == "polling":
        return lambda: (
            _all_answered(sim) and len(sim.requests_to(TASKS)) > polled and _files(sim) == fetched
        )
    if moment == "downloading":
        return lambda: _all_answered(sim) and _files(sim) >= fetched + 3
    raise ValueError(moment)


def _uncertain_in_journal(out: Path) -> int:
    with Journal(out / "journal.sqlite") as journal:
        return sum(1 for e in journal.entries() if e.state == "reserved")


def _duplicates(sim: FakeNanoBananaServer) -> int:
    per_prompt = Counter(rec["request"]["prompt"] for rec in sim.tasks.values())
    return sum(n - 1 for n in per_prompt.values() if n > 1)


def _manifest(out: Path) -> dict[str, dict[str, object]]:
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return {str(line["id"]): line for line in lines}


def _settle(sim: FakeNanoBananaServer, out: Path, keys: dict[str, str]) -> int:
    """Resolve (or forget) every uncertain key by hand, as a person would; returns how many."""
    time.sleep(0.3)  # a submission the killed process sent may still be on its way in
    uncertain = [k for k, line in _manifest(out).items() if line["status"] == "uncertain"]
    journal = str(out / "journal.sqlite")
    for key in uncertain:
        found = [t for t, rec in sim.tasks.items() if rec["request"]["prompt"] == keys[key]]
        assert len(found) <= 1
        if found:
            argv = ["journal", "resolve", key, "--task-id", found[0]]
        else:
            argv = ["journal", "forget", key]
        assert main([*argv, "--journal", journal, "--base-url", sim.base_url]) == 0
    return len(uncertain)


def _scenario(
    tmp: Path, name: str, kills: list[str], slow_files: bool, task_duration: float
) -> Outcome:
    outcome = Outcome(name, kills=list(kills))
    rows, keys = _rows(tmp, name)
    out, log = tmp / f"{name}-out", tmp / f"{name}.log"
    with FakeNanoBananaServer(
        token=SIM_TOKEN, task_duration=task_duration, submit_latency=0.2
    ) as sim:
        if slow_files:
            sim.inject_fault("slow", count=10 * ROWS, path="/files/", retry_after="0.5")
        for moment in kills:
            before = _uncertain_in_journal(out) if (out / "journal.sqlite").exists() else 0
            proc = _start(sim, rows, out, log)
            outcome.runs += 1
            reached = _moment(sim, moment)
            deadline = time.monotonic() + 30
            while not reached() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            if proc.poll() is not None:
                outcome.exit_codes.append(f"{proc.returncode} (ended before {moment})")
                continue
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            outcome.exit_codes.append("killed")
            in_flight = _uncertain_in_journal(out) - before  # earlier kills' stay uncertain
            outcome.uncertain_at_kills.append(in_flight)
            assert in_flight <= CONCURRENCY, (name, moment, in_flight)
            assert _duplicates(sim) == 0, (name, moment)
        code = None
        for _ in range(3):
            proc = _start(sim, rows, out, log)
            outcome.runs += 1
            code = proc.wait(60)
            outcome.exit_codes.append(code)
            if code in (0, 4):
                break
        assert code in (0, 4), log.read_text()[-3000:]
        lines = _manifest(out)
        assert set(lines) == set(keys)
        assert {line["status"] for line in lines.values()} <= {"succeeded", "uncertain"}
        outcome.uncertain_reported = sum(line["status"] == "uncertain" for line in lines.values())
        assert outcome.uncertain_reported <= CONCURRENCY * len(kills)
        assert (code == 4) == (outcome.uncertain_reported > 0)
        if code == 4:
            outcome.settled = _settle(sim, out, keys)
            proc = _start(sim, rows, out, log)
            outcome.runs += 1
            code = proc.wait(60)
            outcome.exit_codes.append(code)
            assert code == 0, log.read_text()[-3000:]
        lines = _manifest(out)
        assert {line["status"] for line in lines.values()} == {"succeeded"}
        assert all(Path(str(f)).is_file() for line in lines.values() for f in line["files"])  # type: ignore[attr-defined]
        assert list(out.glob(".nanobanana-*.part")) == []  # killed downloads cleaned up
        assert len(list(out.glob("*.png"))) == ROWS  # one image per row, no orphan copies
        outcome.duplicates = _duplicates(sim)
        assert outcome.duplicates == 0
        assert {rec["request"]["prompt"] for rec in sim.tasks.values()} == set(keys.values())
    return outcome


def test_kill_9_never_pays_twice(tmp_path: Path) -> None:
    # name, kill moments (one run each), slow image fetches, task duration (s): in "poll" no
    # task ends before the last submission is answered (24 rows / 4 in flight x 0.2 s)
    scenarios = [
        ("submit", ["submitting"], False, 1.0),
        ("poll", ["polling"], False, 2.5),
        ("download", ["downloading"], True, 1.0),
        ("thrice", ["submitting", "submitting", "downloading"], True, 1.0),
    ]
    results = [_scenario(tmp_path, *scenario) for scenario in scenarios]
    header = (
        f"{'scenario':<9} {'kill moments':<38} {'runs':>4} {'dup':>3} "
        f"{'in flight at kills':<18} {'uncertain':>9} {'settled':>7}  exit codes"
    )
    print("\n" + header)
    for r in results:
        print(
            f"{r.name:<9} {', '.join(r.kills):<38} {r.runs:>4} {r.duplicates:>3} "
            f"{r.uncertain_at_kills!s:<18} {r.uncertain_reported:>9} {r.settled:>7}  "
            f"{r.exit_codes}"
        )
    assert all(r.duplicates == 0 for r in results)
