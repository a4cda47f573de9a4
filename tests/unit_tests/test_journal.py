"""The write-ahead journal (``langchain_nanobanana.journal``) on real SQLite files.

Nothing mocks sqlite3: every test opens a file under ``tmp_path``. The multi-process tests run
real child processes (``journal_worker.py``) that share the file through SQLite's locks; a dead
owner is a process that was SIGKILLed or simply ended, or a row naming a pid that cannot exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana.errors import NanoBananaError, TaskFailedError
from langchain_nanobanana.journal import (
    REQUEST_DEFAULTS,
    SCHEMA_VERSION,
    Decision,
    Entry,
    IdempotencyKeyBusyError,
    IdempotencyKeyMismatchError,
    Journal,
    JournalError,
    UncertainKeyError,
    request_identity,
)
from tests.unit_tests import journal_worker
from tests.unit_tests.journal_worker import IDENTITY, SCOPE

OTHER_IDENTITY = "b" * 64
NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max (2**22): never a live process
RESULT = {
    "status": "succeeded",
    "task_id": "t-1",
    "trace_id": "tr-1",
    "images": [{"prompt": "a cat", "image_url": "https://cdn.example/a.png"}],
}
LINUX = sys.platform.startswith("linux")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal(path) as j:
        yield j


def _raw_insert(path: Path, **values: Any) -> None:
    """Write a row as another (possibly dead) process would have left it."""
    row: dict[str, Any] = {
        "scope": SCOPE,
        "key": "k",
        "identity": IDENTITY,
        "state": "reserved",
        "files": "[]",
        "owner_pid": NO_SUCH_PID,
        "owner_start": None,
        "owner_host": None,
        "created_at": time.time(),
        "updated_at": time.time(),
    }
    row.update(values)
    with sqlite3.connect(path) as conn:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO entries ({columns}) VALUES ({marks})", list(row.values()))
    conn.close()


def _host() -> str | None:
    import platform

    return platform.node() or None


# ------------------------------------------------------------------------------------------
# request_identity


def test_identity_fills_documented_defaults() -> None:
    bare = {"action": "generate", "prompt": "a cat"}
    full = {**bare, "model": "nano-banana", "aspect_ratio": "1:1", "resolution": "1K", "count": 1}
    assert request_identity(bare) == request_identity(full)
    assert request_identity(bare) == request_identity({**bare, "model": "nano-banana"})
    assert request_identity(bare) != request_identity({**bare, "model": "nano-banana-pro"})
    assert request_identity(bare) != request_identity({**bare, "count": 2})
    assert dict(REQUEST_DEFAULTS) == {
        "model": "nano-banana",
        "aspect_ratio": "1:1",
        "resolution": "1K",
        "count": 1,
    }


def test_identity_ignores_delivery_fields_and_nulls() -> None:
    bare = {"action": "generate", "prompt": "a cat"}
    assert request_identity(bare) == request_identity(
        {**bare, "async": True, "callback_url": "https://hooks.example/x", "count": None}
    )


def test_identity_is_sha256_of_canonical_json() -> None:
    body = {"prompt": "un chat é", "action": "generate", "async": True}
    canonical = (
        '{"action":"generate","aspect_ratio":"1:1","count":1,"model":"nano-banana",'
        '"prompt":"un chat é","resolution":"1K"}'
    )
    assert request_identity(body) == hashlib.sha256(canonical.encode()).hexdigest()
    # key order does not matter; the order of images does
    edit = {"action": "edit", "prompt": "p", "image_urls": ["https://a/1.png", "https://a/2.png"]}
    swapped = {**edit, "image_urls": list(reversed(edit["image_urls"]))}
    assert request_identity(dict(reversed(list(edit.items())))) == request_identity(edit)
    assert request_identity(swapped) != request_identity(edit)


def test_identity_counts_data_uri_images_by_content() -> None:
    def uri(data: bytes) -> str:
        import base64

        return "data:image/png;base64," + base64.b64encode(data).decode()

    one = {"action": "edit", "prompt": "p", "image_urls": [uri(b"\x89PNG one")]}
    same = {"action": "edit", "prompt": "p", "image_urls": [uri(b"\x89PNG one")]}
    other = {"action": "edit", "prompt": "p", "image_urls": [uri(b"\x89PNG two")]}
    assert request_identity(one) == request_identity(same)
    assert request_identity(one) != request_identity(other)


def test_identity_refuses_non_json() -> None:
    with pytest.raises(JournalError, match="JSON"):
        request_identity({"action": "edit", "image_urls": [object()]})
    with pytest.raises(JournalError):
        request_identity({"count": float("nan")})


# ------------------------------------------------------------------------------------------
# Opening: WAL, schema, bad files


def test_wal_and_synchronous_normal(journal: Journal, path: Path) -> None:
    conn = journal._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    # WAL is a property of the file: another connection sees it too
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(other.execute("SELECT name, value FROM meta").fetchall())
    other.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION) == "1"
    assert meta["format"] == "langchain_nanobanana.journal"


def test_reopen_keeps_entries_and_empty_file_is_initialised(path: Path) -> None:
    path.write_bytes(b"")
    with Journal(path) as j:
        assert j.begin(SCOPE, "k", IDENTITY).kind == "submit"
        j.succeeded(SCOPE, "k", RESULT, files=[Path("out/a.png")])
    with Journal(str(path)) as j:
        decision = j.begin(SCOPE, "k", IDENTITY)
        assert decision.kind == "done"
        assert decision.result == RESULT
        assert decision.entry.files == ["out/a.png"]


def test_garbage_file_is_a_clear_error_and_left_untouched(path: Path) -> None:
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(JournalError) as info:
        Journal(path)
    text = str(info.value)
    assert str(path) in text
    assert "not a readable journal" in text
    assert "nothing was sent" in text
    assert info.value.path == str(path)
    assert path.read_bytes() == garbage


def test_garbage_after_a_valid_sqlite_header_is_a_clear_error(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    with pytest.raises(JournalError, match="not a readable journal"):
        Journal(path)


def test_other_sqlite_database_is_refused_untouched(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match=r"not a Nano Banana journal.*invoices"):
        Journal(path)
    assert path.read_bytes() == before
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    check.close()


def test_other_schema_version_is_refused(path: Path) -> None:
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    conn.close()
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert "schema version 2" in str(info.value)
    assert "reads version 1" in str(info.value)


def test_corrupted_pages_are_a_clear_error(path: Path) -> None:
    with Journal(path) as j:
        for i in range(300):
            j.begin(SCOPE, f"k{i}", IDENTITY)
            j.succeeded(SCOPE, f"k{i}", {**RESULT, "task_id": f"t{i}", "pad": "x" * 200})
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    data = bytearray(path.read_bytes())
    assert len(data) > 5 * 4096
    data[2 * 4096 : 4 * 4096] = os.urandom(2 * 4096)  # pages 3 and 4: b-tree pages
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="corrupted"):
        Journal(path)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="directory"):
        Journal(tmp_path)
    with pytest.raises(JournalError, match=r"cannot open|not a readable"):
        Journal(tmp_path / "missing" / "runs.sqlite")
    with pytest.raises(JournalError, match="file path"):
        Journal(":memory:")
    with pytest.raises(JournalError, match="timeout"):
        Journal(tmp_path / "j.sqlite", timeout=0)


def test_closed_journal_refuses_use(path: Path) -> None:
    j = Journal(path)
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.begin(SCOPE, "k", IDENTITY)


# ------------------------------------------------------------------------------------------
# State transitions (SPEC Part 3, "Journal semantics")


def test_fresh_key_is_reserved_for_this_process(journal: Journal) -> None:
    decision = journal.begin(SCOPE, "k", IDENTITY)
    assert decision == Decision("submit", decision.entry)
    entry = journal.get(SCOPE, "k")
    assert isinstance(entry, Entry)
    assert entry.state == "reserved"
    assert entry.owner_pid == os.getpid()
    assert entry.identity == IDENTITY
    assert entry.task_id is None
    assert journal.status(entry) == "in_flight"
    if LINUX:
        assert entry.owner_start is not None


def test_submitted_key_polls_its_task(journal: Journal, path: Path) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1", "tr-1")
    for j in (journal, Journal(path)):
        decision = j.begin(SCOPE, "k", IDENTITY, wait=0)
        assert decision.kind == "poll"
        assert decision.task_id == "t-1"
        assert decision.entry.trace_id == "tr-1"
        assert j.status(decision.entry) == "submitted"


def test_succeeded_key_returns_the_stored_result(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1", None)
    journal.succeeded(SCOPE, "k", RESULT, files=["out/t-1_0.png"])
    decision = journal.begin(SCOPE, "k", IDENTITY, wait=0)
    assert decision.kind == "done"
    assert decision.result == RESULT
    assert decision.entry.files == ["out/t-1_0.png"]
    assert decision.entry.trace_id == "tr-1"  # taken from the result


def test_sync_mode_records_result_without_submitted(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.succeeded(SCOPE, "k", RESULT)
    entry = journal.get(SCOPE, "k")
    assert entry is not None
    assert (entry.state, entry.task_id, entry.trace_id) == ("succeeded", "t-1", "tr-1")


def test_failed_key_raises_again_unless_retry_failed(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1", "tr-1")
    journal.failed(SCOPE, "k", code="moderation", message="refused", task_id="t-1", trace_id="tr-1")
    with pytest.raises(TaskFailedError) as info:
        journal.begin(SCOPE, "k", IDENTITY)
    err = info.value
    assert (err.task_id, err.trace_id, err.code) == ("t-1", "tr-1", "moderation")
    assert "refused" in str(err)
    decision = journal.begin(SCOPE, "k", IDENTITY, retry_failed=True)
    assert decision.kind == "submit"
    assert decision.entry.task_id is None
    entry = journal.get(SCOPE, "k")
    assert entry is not None
    assert entry.state == "reserved"
    assert entry.error_code is None


def test_same_key_other_request_is_a_mismatch_before_anything_else(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1", None)
    journal.failed(SCOPE, "k", code="x", message="y", task_id="t-1")
    with pytest.raises(IdempotencyKeyMismatchError) as info:
        journal.begin(SCOPE, "k", OTHER_IDENTITY, retry_failed=True, resubmit_uncertain=True)
    err = info.value
    assert isinstance(err, JournalError)
    assert (err.key, err.stored_identity, err.identity, err.task_id) == (
        "k",
        IDENTITY,
        OTHER_IDENTITY,
        "t-1",
    )
    text = str(err)
    assert "'k'" in text and "aaaaaaaaaaaa" in text and "bbbbbbbbbbbb" in text
    assert "Nothing was sent" in text
    entry = journal.get(SCOPE, "k")
    assert entry is not None and entry.state == "failed"  # untouched


def test_mismatch_on_uncertain_key(path: Path, journal: Journal) -> None:
    _raw_insert(path)
    with pytest.raises(IdempotencyKeyMismatchError):
        journal.begin(SCOPE, "k", OTHER_IDENTITY)


def test_keys_are_scoped_by_base_url(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.succeeded(SCOPE, "k", RESULT)
    other = journal.begin("https://api.xhuoapi.ai/v1", "k", OTHER_IDENTITY)
    assert other.kind == "submit"


def test_dead_owner_makes_the_key_uncertain(path: Path, journal: Journal) -> None:
    _raw_insert(path, owner_pid=NO_SUCH_PID, owner_host=_host())
    with pytest.raises(UncertainKeyError) as info:
        journal.begin(SCOPE, "k", IDENTITY)
    err = info.value
    assert isinstance(err, NanoBananaError)
    assert not isinstance(err, JournalError)
    assert err.key == "k"
    assert err.task_ids == []
    text = str(err)
    for words in ("'k'", "uncertain", "billed", "resubmit_uncertain=True"):
        assert words in text
    assert "nanobanana journal resolve k --task-id ID" in text
    assert "nanobanana journal forget k" in text
    assert f"pid {NO_SUCH_PID}" in text
    entry = journal.get(SCOPE, "k")
    assert entry is not None
    assert journal.status(entry) == "uncertain"
    # opting in takes the key over
    decision = journal.begin(SCOPE, "k", IDENTITY, resubmit_uncertain=True)
    assert decision.kind == "submit"
    assert decision.entry.owner_pid == os.getpid()


@pytest.mark.skipif(not LINUX, reason="start times come from /proc")
def test_recycled_pid_is_not_the_owner(path: Path, journal: Journal) -> None:
    # a live pid (our parent) recorded with another start time: the owner was an earlier process
    _raw_insert(path, key="k1", owner_pid=os.getppid(), owner_start="other-boot:1")
    _raw_insert(path, key="k2", owner_pid=os.getpid(), owner_start="other-boot:1")
    for key in ("k1", "k2"):
        with pytest.raises(UncertainKeyError):
            journal.begin(SCOPE, key, IDENTITY, wait=0)


def test_interrupted_owner_makes_the_key_uncertain(journal: Journal, path: Path) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.interrupted(SCOPE, "k")
    entry = journal.get(SCOPE, "k")
    assert entry is not None and entry.owner_pid == 0
    with Journal(path) as other, pytest.raises(UncertainKeyError, match="interrupted"):
        other.begin(SCOPE, "k", IDENTITY)
    with pytest.raises(UncertainKeyError):
        journal.begin(SCOPE, "k", IDENTITY)


def test_interrupted_does_not_touch_a_key_with_a_task(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1")
    journal.interrupted(SCOPE, "k")
    assert journal.begin(SCOPE, "k", IDENTITY).kind == "poll"


def test_release_frees_the_key(journal: Journal) -> None:
    assert journal.begin(SCOPE, "k", IDENTITY).kind == "submit"
    journal.release(SCOPE, "k")
    assert journal.get(SCOPE, "k") is None
    assert journal.begin(SCOPE, "k", OTHER_IDENTITY).kind == "submit"  # nothing left to match


def test_release_never_drops_a_task(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1")
    with caplog.at_level(logging.WARNING, logger="langchain_nanobanana.journal"):
        journal.release(SCOPE, "k")
    assert "not released" in caplog.text
    assert journal.begin(SCOPE, "k", IDENTITY).kind == "poll"


def test_release_does_not_free_another_owners_reservation(path: Path, journal: Journal) -> None:
    _raw_insert(path, owner_pid=os.getppid(), owner_host=None)
    journal.release(SCOPE, "k")
    assert journal.get(SCOPE, "k") is not None


def test_orphaned_reservation_of_this_process_is_uncertain(path: Path) -> None:
    first = Journal(path)
    assert first.begin(SCOPE, "k", IDENTITY).kind == "submit"
    first.close()  # the caller never recorded an outcome: close() marks it interrupted
    with Journal(path) as second, pytest.raises(UncertainKeyError):
        second.begin(SCOPE, "k", IDENTITY)


def test_row_of_this_process_not_held_by_any_caller_is_uncertain(
    path: Path, journal: Journal
) -> None:
    own = journal.begin(SCOPE, "mine", IDENTITY).entry
    _raw_insert(path, owner_pid=os.getpid(), owner_start=own.owner_start, owner_host=_host())
    with pytest.raises(UncertainKeyError):
        journal.begin(SCOPE, "k", IDENTITY, wait=0)


def test_other_thread_waits_for_the_owner(path: Path, journal: Journal) -> None:
    assert journal.begin(SCOPE, "k", IDENTITY).kind == "submit"
    seen: list[Decision] = []

    def second() -> None:
        with Journal(path) as j:  # another instance: the in-process registry is shared
            seen.append(j.begin(SCOPE, "k", IDENTITY, wait=10))

    threads = [threading.Thread(target=second), threading.Thread(target=second)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert seen == []  # still waiting
    journal.submitted(SCOPE, "k", "t-1", "tr-1")
    for t in threads:
        t.join(10)
    assert [d.kind for d in seen] == ["poll", "poll"]
    assert all(d.task_id == "t-1" for d in seen)
    assert time.monotonic() - started >= 0.3


def test_threads_racing_on_one_key_reserve_once(journal: Journal) -> None:
    barrier = threading.Barrier(8)
    kinds: list[str] = []
    lock = threading.Lock()

    def racer() -> None:
        barrier.wait()
        decision = journal.begin(SCOPE, "k", IDENTITY, wait=10)
        if decision.kind == "submit":
            time.sleep(0.1)
            journal.succeeded(SCOPE, "k", RESULT)
        with lock:
            kinds.append(decision.kind)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(kinds) == ["done"] * 7 + ["submit"]


def test_live_owner_past_wait_is_busy(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    started = time.monotonic()
    with pytest.raises(IdempotencyKeyBusyError) as info:
        journal.begin(SCOPE, "k", IDENTITY, wait=0.2)
    assert 0.15 <= time.monotonic() - started < 2
    err = info.value
    assert (err.key, err.owner_pid) == ("k", os.getpid())
    assert "Nothing was sent" in str(err)


def test_owner_on_another_host_is_not_declared_dead(path: Path, journal: Journal) -> None:
    _raw_insert(path, owner_pid=NO_SUCH_PID, owner_host="some-other-host")
    entry = journal.get(SCOPE, "k")
    assert entry is not None and journal.status(entry) == "in_flight"
    with pytest.raises(IdempotencyKeyBusyError, match="some-other-host"):
        journal.begin(SCOPE, "k", IDENTITY, wait=0.1)


def test_resolve_settles_an_uncertain_key(path: Path, journal: Journal) -> None:
    _raw_insert(path)
    journal.resolve(SCOPE, "k", "t-found", "tr-found")
    decision = journal.begin(SCOPE, "k", IDENTITY)
    assert (decision.kind, decision.task_id, decision.entry.trace_id) == (
        "poll",
        "t-found",
        "tr-found",
    )
    assert decision.entry.owner_pid is None


def test_resolve_refusals(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no journal entry"):
        journal.resolve(SCOPE, "missing", "t")
    journal.begin(SCOPE, "live", IDENTITY)
    with pytest.raises(JournalError, match="being submitted right now"):
        journal.resolve(SCOPE, "live", "t")
    journal.succeeded(SCOPE, "live", RESULT)
    with pytest.raises(JournalError, match="already succeeded"):
        journal.resolve(SCOPE, "live", "t")


def test_forget(path: Path, journal: Journal) -> None:
    assert journal.forget(SCOPE, "missing") is False
    journal.begin(SCOPE, "live", IDENTITY)
    with pytest.raises(JournalError, match="being submitted right now"):
        journal.forget(SCOPE, "live")
    _raw_insert(path)  # uncertain
    assert journal.forget(SCOPE, "k") is True
    assert journal.begin(SCOPE, "k", IDENTITY).kind == "submit"


def test_first_recorded_task_wins(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    journal.submitted(SCOPE, "k", "t-1")
    journal.submitted(SCOPE, "k", "t-1", "tr-late")  # idempotent, fills the trace id
    with caplog.at_level(logging.WARNING, logger="langchain_nanobanana.journal"):
        journal.submitted(SCOPE, "k", "t-2")
        journal.succeeded(SCOPE, "k", {**RESULT, "task_id": "t-2"})
    assert caplog.text.count("already records task t-1") == 2
    assert "t-2" in caplog.text
    entry = journal.get(SCOPE, "k")
    assert entry is not None
    assert (entry.state, entry.task_id, entry.trace_id) == ("submitted", "t-1", "tr-late")


def test_outcome_of_a_key_forgotten_in_flight_is_still_recorded(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    with sqlite3.connect(journal.path) as conn:  # a person deletes the row meanwhile
        conn.execute("DELETE FROM entries")
    conn.close()
    journal.submitted(SCOPE, "k", "t-1")
    decision = journal.begin(SCOPE, "k", IDENTITY)
    assert (decision.kind, decision.task_id, decision.entry.identity) == ("poll", "t-1", IDENTITY)


def test_succeeded_refuses_a_non_json_result(journal: Journal) -> None:
    journal.begin(SCOPE, "k", IDENTITY)
    with pytest.raises(JournalError, match="JSON"):
        journal.succeeded(SCOPE, "k", {"when": object()})


def test_entries_and_status(path: Path, journal: Journal) -> None:
    journal.begin(SCOPE, "a", IDENTITY)
    journal.begin(SCOPE, "b", IDENTITY)
    journal.submitted(SCOPE, "b", "t-b")
    journal.begin("https://api.xhuoapi.ai/v1", "c", IDENTITY)
    journal.succeeded("https://api.xhuoapi.ai/v1", "c", RESULT)
    _raw_insert(path, key="d")
    assert [e.key for e in journal.entries()] == ["a", "b", "c", "d"]
    assert [e.key for e in journal.entries(scope=SCOPE)] == ["a", "b", "d"]
    assert [e.key for e in journal.entries(state="reserved")] == ["a", "d"]
    assert [e.key for e in journal.entries(key="c")] == ["c"]
    statuses = {e.key: journal.status(e) for e in journal.entries()}
    assert statuses == {"a": "in_flight", "b": "submitted", "c": "succeeded", "d": "uncertain"}
    with pytest.raises(JournalError, match="state must be one of"):
        journal.entries(state="done")


def test_bad_arguments(journal: Journal) -> None:
    with pytest.raises(JournalError, match="key"):
        journal.begin(SCOPE, "", IDENTITY)
    with pytest.raises(JournalError, match="scope"):
        journal.begin("", "k", IDENTITY)
    with pytest.raises(JournalError, match="wait"):
        journal.begin(SCOPE, "k", IDENTITY, wait=-1)
    assert journal.entries() == []


def test_errors_pickle_with_their_attributes() -> None:
    errors: list[Exception] = [
        JournalError("broken", path="/x"),
        IdempotencyKeyMismatchError(scope=SCOPE, key="k", stored_identity="a" * 64, identity="b"),
        IdempotencyKeyBusyError(scope=SCOPE, key="k", owner_pid=1, owner_host="h", waited=1.0),
        UncertainKeyError(scope=SCOPE, key="k", owner_pid=5, reason="it died"),
    ]
    for err in errors:
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err)
        assert str(copy) == str(err)
        assert copy.__dict__ == err.__dict__


def test_durability_is_documented() -> None:
    import langchain_nanobanana.journal as module

    doc = module.__doc__ or ""
    assert "synchronous=NORMAL" in doc
    assert "kill -9" in doc
    assert "power loss" in doc


# ------------------------------------------------------------------------------------------
# Several processes


@pytest.fixture(scope="module")
def ctx() -> SpawnContext:
    """``spawn``: fresh interpreters, as separate runs of a program would be. (``fork`` could
    copy a lock held by another thread of the test process; ``forkserver`` talks over a unix
    socket, which pytest-socket's ``--allow-hosts`` blocks.)"""
    return multiprocessing.get_context("spawn")


def test_two_processes_racing_pay_once_each_round(ctx: SpawnContext, path: Path) -> None:
    rounds = 20
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=journal_worker.race, args=(str(path), rounds, barrier, results, 0.02))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in range(2 * rounds)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    for i in range(rounds):
        outcome = sorted((kind, task_id) for r, _pid, kind, task_id in got if r == i)
        kinds = [kind for kind, _ in outcome]
        assert kinds == (["poll", "submit"] if i % 2 == 0 else ["done", "submit"]), (i, outcome)
        assert outcome[0][1] == outcome[1][1]  # the loser got the winner's task
    winners = {pid for _r, pid, kind, _t in got if kind == "submit"}
    assert len(winners) >= 1
    with Journal(path) as j:
        assert len(j.entries()) == rounds
        assert all(e.state in ("submitted", "succeeded") for e in j.entries())


EXPECTED: dict[str, str | type[Exception]] = {
    "submitted": "poll",
    "succeeded": "done",
    "release": "submit",
    "failed": TaskFailedError,
    "interrupted": UncertainKeyError,
    "exit": UncertainKeyError,  # the owner ended without an outcome
}


def test_live_owner_in_another_process_is_waited_for(ctx: SpawnContext, path: Path) -> None:
    """One child reserves six keys and settles each a different way when told; a waiter per key
    in this process must block until then and follow the child's outcome."""
    Journal(path).close()
    ready, go = ctx.Event(), ctx.Event()
    plan = {f"k-{then}": then for then in EXPECTED}
    child = ctx.Process(target=journal_worker.reserve, args=(str(path), plan, ready, go))
    child.start()
    outcomes: dict[str, Any] = {}
    try:
        assert ready.wait(30)
        with Journal(path) as journal:
            for key in plan:
                entry = journal.get(SCOPE, key)
                assert entry is not None and entry.owner_pid == child.pid
                assert journal.status(entry) == "in_flight"

            def wait_for(key: str) -> None:
                try:
                    outcomes[key] = journal.begin(SCOPE, key, IDENTITY, wait=30)
                except Exception as exc:
                    outcomes[key] = exc

            threads = [threading.Thread(target=wait_for, args=(key,)) for key in plan]
            for t in threads:
                t.start()
            time.sleep(0.3)
            assert outcomes == {}  # every waiter is still waiting for the owner
            go.set()
            for t in threads:
                t.join(30)
    finally:
        go.set()
        child.join(30)
    assert child.exitcode == 0
    for then, expect in EXPECTED.items():
        got = outcomes[f"k-{then}"]
        if isinstance(expect, str):
            assert isinstance(got, Decision), (then, got)
            assert got.kind == expect, then
        else:
            assert isinstance(got, expect), (then, got)
    poll = outcomes["k-submitted"]
    assert poll.task_id == "task-child"
    assert poll.entry.trace_id == "trace-child"
    assert outcomes["k-succeeded"].entry.files == ["out/a.png"]
    assert outcomes["k-failed"].task_id == "task-child"
    assert "interrupted" in str(outcomes["k-interrupted"])
    assert f"pid {child.pid}" in str(outcomes["k-exit"])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_owner_killed_in_flight_leaves_the_key_uncertain(ctx: SpawnContext, path: Path) -> None:
    Journal(path).close()
    ready, go = ctx.Event(), ctx.Event()  # keep both alive until the child has them
    child = ctx.Process(target=journal_worker.reserve, args=(str(path), {"k": "hang"}, ready, go))
    child.start()
    assert ready.wait(30)
    with Journal(path) as journal:
        with pytest.raises(IdempotencyKeyBusyError):
            journal.begin(SCOPE, "k", IDENTITY, wait=0.1)  # alive: waits, nothing sent
        child.kill()  # SIGKILL: no outcome recorded; a zombie until joined
        with pytest.raises(UncertainKeyError, match="uncertain"):
            journal.begin(SCOPE, "k", IDENTITY, wait=10)
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        with pytest.raises(UncertainKeyError):
            journal.begin(SCOPE, "k", IDENTITY, wait=10)
        assert journal.begin(SCOPE, "k", IDENTITY, resubmit_uncertain=True).kind == "submit"


def test_result_json_round_trips_unicode(journal: Journal) -> None:
    result = {**RESULT, "images": [{"prompt": "猫 🐱", "image_url": "https://x/ü.png"}]}
    journal.begin(SCOPE, "k", IDENTITY)
    journal.succeeded(SCOPE, "k", result)
    decision = journal.begin(SCOPE, "k", IDENTITY)
    assert decision.result == result
    assert json.dumps(decision.result, ensure_ascii=False)
