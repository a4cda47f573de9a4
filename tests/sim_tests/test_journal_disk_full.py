"""A journal write that fails after the paid POST (the disk filled while the request was in
flight): the error names the task, says it was PAID (``billed="yes"`` on the instance), is logged
at WARNING and never advises a new journal file (that advice freed keys: the next run paid
again).

The disk is a real small tmpfs when the tests run as root; elsewhere the same run happens in a
child process whose file-size limit (``RLIMIT_FSIZE``) stops the journal from growing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_nanobanana.journal import JournalWriteError
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import eventually, fast_client

SUBMIT = "/nano-banana/images"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (the RLIMIT_FSIZE variant below runs instead)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> None:
    with open(directory / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_disk_full_after_the_paid_post_names_the_paid_task(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    with FakeNanoBananaServer(submit_latency=0.5) as sim:
        client = fast_client(sim, journal=small_disk / "runs.sqlite")

        def submit() -> None:
            try:
                client.generate("a cat", idempotency_key="sku-1", wait=False)
            except BaseException as exc:
                errors.append(exc)

        with caplog.at_level(logging.WARNING, logger="langchain_nanobanana"):
            worker = threading.Thread(target=submit)
            worker.start()
            assert eventually(lambda: bool(sim.requests_to(SUBMIT)), within=5)
            # SQLite writes over a -wal file's old frames after a checkpoint: empty it, so that
            # the write after the POST needs new space
            journal = client.journal
            assert journal is not None
            journal._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[attr-defined]
            _fill(small_disk)  # the disk fills while the paid POST is in flight
            worker.join(10)
        os.remove(small_disk / "filler")
        client.close()
    assert len(errors) == 1, errors
    error = errors[0]
    assert isinstance(error, JournalWriteError)
    assert error.billed == "yes" and error.task_id
    text = str(error)
    assert "PAID" in text and error.task_id in text
    assert "new journal file" not in text and "start a new journal" not in text
    assert f"nanobanana journal resolve sku-1 --task-id {error.task_id}" in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(error.task_id in w and "PAID" in w for w in warnings), warnings


CHILD = r"""
import json, os, resource, signal, sys, threading, time
from langchain_nanobanana import NanoBananaClient
from langchain_nanobanana.journal import JournalWriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
base_url, path = sys.argv[1], sys.argv[2]
client = NanoBananaClient("sim-token", base_url=base_url, journal=path)
# an empty -wal file: every write below needs new space (SQLite reuses old frames)
client.journal._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
def size():
    return os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
before = size()
report = {}
def submit():
    try:
        client.generate("a cat", idempotency_key="sku-1", wait=False)
        report["error"] = None
    except JournalWriteError as exc:
        report.update(error=str(exc), billed=exc.billed, task_id=exc.task_id)
worker = threading.Thread(target=submit)
worker.start()
while size() == before:  # the reservation is written: the POST is in flight (0.5 s latency)
    time.sleep(0.005)
limit = size()  # the -wal file may not grow (the main file is not written before a checkpoint)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # the disk is "full" from now on
worker.join()
print(json.dumps(report))
"""


def test_disk_full_by_file_size_limit_in_a_child(tmp_path: Path) -> None:
    """The same finding without root: the child may not grow its journal files."""
    with FakeNanoBananaServer(token="sim-token", submit_latency=0.5) as sim:
        path = str(tmp_path / "runs.sqlite")
        done = subprocess.run(
            [sys.executable, "-c", CHILD, sim.base_url, path],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if report["error"] is None:
            pytest.skip("the journal wrote within its existing pages: no limit was hit")
        assert report["billed"] in ("yes", "maybe")
        assert len(sim.requests_to(SUBMIT)) == 1
        if report["task_id"]:
            assert report["task_id"] in report["error"] and "PAID" in report["error"]
        assert "new journal file" not in report["error"]
        assert "WARNING" in done.stderr or "PAID" in done.stderr
