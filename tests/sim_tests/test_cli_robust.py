"""The command line when the world misbehaves: closed or vanishing pipes, a full disk, Ctrl-C
with messages hidden, a torn manifest, a fleet sharing one journal -- it records what it knows and
ends, never hangs, never loses a billed task id; and ``batch`` runs on a bounded number of threads.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana._request import build_request
from langchain_nanobanana.cli import main
from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.journal import Journal, request_identity
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN, json_bodies
from tests.sim_tests.test_cli import FAST, SUBMIT, manifest, write_jsonl

ENTRY = [sys.executable, "-m", "langchain_nanobanana"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ACEDATACLOUD_API_TOKEN"] = SIM_TOKEN
    env.pop("ACEDATACLOUD_API_BASE_URL", None)
    return env


def _child(*, close: tuple[int, ...] = (), fsize: int | None = None) -> Any:
    """A ``preexec_fn``: SIGINT back to default, close ``close`` fds, cap the file size."""

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        for fd in close:
            os.close(fd)

    return setup


def _rows(tmp_path: Path, n: int) -> Path:
    return write_jsonl(
        tmp_path / "rows.jsonl", [{"prompt": f"p{i}", "id": f"k{i}"} for i in range(n)]
    )


# -- pipes and disks: end, never hang ------------------------------------------------------------


def test_batch_json_into_head_1_stops_and_records(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    sim.task_duration = 0.2
    sim.submit_latency = 0.05  # 30 rows at --concurrency 2 take longer than the first task
    out = tmp_path / "o"
    argv = [*ENTRY, "batch", str(_rows(tmp_path, 30)), "-o", str(out), "--json"]
    proc = subprocess.Popen(
        [*argv, "--base-url", sim.base_url, "--concurrency", "2", *FAST],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_child(),
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # `| head -1`
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "standard output is closed" in err
    lines = manifest(out)
    assert lines[first["id"]]["status"] == "succeeded"
    assert len(sim.requests_to(SUBMIT)) < 30  # it stopped instead of paying for rows nobody reads
    # every row it did submit has its line (pending: a re-run collects it), task id included
    assert len(lines) == len(sim.requests_to(SUBMIT))
    assert all(line["task_id"] for line in lines.values())


def test_batch_with_stdout_closed_ends_non_zero(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    out = tmp_path / "o"
    done = subprocess.run(
        [
            *ENTRY,
            "batch",
            str(_rows(tmp_path, 5)),
            "-o",
            str(out),
            "--json",
            "--base-url",
            sim.base_url,
            *FAST,
        ],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=_child(close=(1,)),
    )
    assert done.returncode == 1, done.stderr
    assert "standard output is closed" in done.stderr
    assert manifest(out)  # what ran is recorded


def test_batch_with_stderr_closed_runs(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    out = tmp_path / "o"
    done = subprocess.run(
        [
            *ENTRY,
            "batch",
            str(_rows(tmp_path, 4)),
            "-o",
            str(out),
            "--base-url",
            sim.base_url,
            *FAST,
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=_child(close=(2,)),
    )
    assert done.returncode == 0
    assert {line["status"] for line in manifest(out).values()} == {"succeeded"}
    assert len(sim.requests_to(SUBMIT)) == 4


def test_batch_on_a_full_disk_ends_non_zero(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    out = tmp_path / "o"
    done = subprocess.run(
        [
            *ENTRY,
            "batch",
            str(_rows(tmp_path, 12)),
            "-o",
            str(out),
            "--base-url",
            sim.base_url,
            "--concurrency",
            "3",
            *FAST,
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
        preexec_fn=_child(fsize=6000),  # a few small files fit, the images and journal do not
    )
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr


# -- the billed task id is never lost ------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr_closed", "signum", "exit_code"),
    [(False, signal.SIGINT, 130), (True, signal.SIGINT, 130), (True, signal.SIGTERM, 143)],
)
def test_generate_quiet_ctrl_c_prints_the_task_id(
    sim: FakeNanoBananaServer, tmp_path: Path, stderr_closed: bool, signum: int, exit_code: int
) -> None:
    sim.task_duration = 30.0
    proc = subprocess.Popen(
        [*ENTRY, "generate", "a cat", "-q", "-o", str(tmp_path), "--base-url", sim.base_url, *FAST],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_child(close=(2,) if stderr_closed else ()),
    )
    deadline = time.monotonic() + 20
    while len(sim.requests_to("/nano-banana/tasks")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # submitted, and polled at least once
    proc.send_signal(signum)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == exit_code
    read = json_bodies(sim, "/nano-banana/tasks")[0]
    polled = read.get("ids") or [read.get("id")]
    assert stdout.split() == polled  # the billed task, on stdout whatever -q or 2>&- hide


def test_a_torn_manifest_line_does_not_glue_onto_the_next_run(
    sim: FakeNanoBananaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    out = tmp_path / "o"
    out.mkdir()
    (out / "manifest.jsonl").write_text('{"id": "k0", "status": "succ', encoding="utf-8")
    code = main(
        ["batch", str(_rows(tmp_path, 2)), "-o", str(out), "--base-url", sim.base_url, "-q", *FAST]
    )
    assert code == 0
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"id": "k0", "status": "succ'
    assert {json.loads(line)["id"] for line in lines[1:]} == {"k0", "k1"}


# -- threads -------------------------------------------------------------------------------------


@pytest.fixture
def sim_process() -> Iterator[str]:
    """A simulator in another process (its threads are not this process's), tasks of 0.4 s."""
    proc = subprocess.Popen(
        [*ENTRY, "simulate", "--port", "0", "--token", SIM_TOKEN, "--task-duration", "0.4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_child(),
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().split()[-1]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_batch_threads_are_bounded_by_concurrency(
    sim_process: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, threading.active_count())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    baseline = threading.active_count()  # this thread, the sampler, pytest's own
    try:
        code = main(
            [
                "batch",
                str(_rows(tmp_path, 60)),
                "-o",
                str(tmp_path / "o"),
                "--base-url",
                sim_process,
                "--concurrency",
                "4",
                "-q",
                "--poll-interval",
                "0.05",
            ]
        )
    finally:
        stop.set()
        sampler.join()
    assert code == 0
    assert len(manifest(tmp_path / "o")) == 60
    # the main thread is in the baseline: executor workers + the poller + at most 2 more
    assert peak - baseline <= 4 + 3, (peak, baseline)


# -- a fleet sharing one journal ------------------------------------------------------------------


def test_batch_defers_a_row_another_live_worker_holds(
    sim: FakeNanoBananaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    out = tmp_path / "o"
    out.mkdir()
    rows = _rows(tmp_path, 6)
    scope = NanoBananaClient("t", base_url=sim.base_url).base_url
    other = Journal(out / "journal.sqlite")  # "another worker": this live process holds k1
    other.begin(scope, "k1", request_identity(build_request("generate", "p1").to_payload()))
    codes: list[int] = []
    argv = [
        "batch",
        str(rows),
        "-o",
        str(out),
        "--base-url",
        sim.base_url,
        "--concurrency",
        "1",
        "-q",
        *FAST,
    ]
    worker = threading.Thread(target=lambda: codes.append(main(argv)))
    worker.start()
    deadline = time.monotonic() + 30
    while len(sim.requests_to(SUBMIT)) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    # the free rows went first, one at a time, while k1 stayed with its owner
    assert len(sim.requests_to(SUBMIT)) == 5, "the worker waited on a row another worker holds"
    with NanoBananaClient(SIM_TOKEN, base_url=sim.base_url) as client:
        task = client.submit(build_request("generate", "p1"), wait=False)
    assert task.task_id is not None
    other.submitted(scope, "k1", task.task_id, task.trace_id)  # the other worker's task
    other.close()
    worker.join(60)
    assert codes == [0]
    lines = manifest(out)
    assert lines["k1"]["status"] == "succeeded" and lines["k1"]["task_id"] == task.task_id
    assert lines["k1"]["files"] and Path(lines["k1"]["files"][0]).is_file()
    assert len(sim.requests_to(SUBMIT)) == 6  # k1 paid once, by its owner


def test_ctrl_c_during_a_slow_submission_exits_promptly(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    sim.submit_latency = 30.0  # the POST hangs far longer than the 3 s grace
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [
            *ENTRY,
            "batch",
            str(_rows(tmp_path, 3)),
            "-o",
            str(out),
            "--base-url",
            sim.base_url,
            "--concurrency",
            "1",
            *FAST,
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_child(),
    )
    deadline = time.monotonic() + 20
    while not sim.requests_to(SUBMIT) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)  # not the 30 s the POST would take
    assert proc.returncode == 130, err
    assert manifest(out)["k0"]["status"] == "uncertain"  # recorded before the exit


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "a cat", "--token", "sk-secret-123"],
        ["generate", "a cat", "--token=sk-secret-123"],
        ["--token", "sk-secret-123", "models"],
        ["batch", "rows.jsonl", "--api-key", "sk-secret-123"],
    ],
)
def test_a_refused_option_never_echoes_its_value(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "nanobanana: error:" in captured.err
    assert "sk-secret-123" not in captured.err + captured.out
