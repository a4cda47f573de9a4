"""One protocol, two stores: the key states on SQLite and on a real PostgreSQL, the lease, the
host binding, and the journal findings of issue 13 (a lone surrogate, a forgotten paid key, a
journal deleted or replaced while open, a reservation from another host).

PostgreSQL tests (marker ``postgres``) each get a schema of their own (``pg_url``), dropped after;
they are skipped with one loud line when the server is unreachable (fail under ``CI=true``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_nanobanana import ConfigurationError
from langchain_nanobanana.errors import TaskFailedError
from langchain_nanobanana.journal import (
    IdempotencyKeyBusyError,
    IdempotencyKeyMismatchError,
    Journal,
    JournalError,
    JournalHostMismatchError,
    KeyStore,
    PostgresJournal,
    UncertainKeyError,
    open_journal,
)
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import fast_client

SCOPE = "https://api.acedata.cloud"
ID = "a" * 64
OTHER = "b" * 64
SUBMIT = "/nano-banana/images"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(spec: str) -> Iterator[KeyStore]:
    with open_journal(spec, lease=1.0) as journal:
        yield journal


# -- the key states, on both stores -----------------------------------------------------------


def test_states_and_protocol(store: KeyStore, spec: str) -> None:
    assert store.begin(SCOPE, "k", ID).kind == "submit"
    with open_journal(spec) as other:
        with pytest.raises(IdempotencyKeyBusyError):
            other.begin(SCOPE, "k", ID, wait=0)  # a live owner: at once, never a wait
        with pytest.raises(IdempotencyKeyMismatchError):
            other.begin(SCOPE, "k", OTHER, wait=0)
        store.submitted(SCOPE, "k", "t-1", "tr-1")
        decision = other.begin(SCOPE, "k", ID)
        assert (decision.kind, decision.task_id) == ("poll", "t-1")
        assert other.key_of_task(SCOPE, "t-1") == "k"
        other.succeeded(SCOPE, "k", {"task_id": "t-1", "status": "succeeded"}, files=["a.png"])
        done = store.begin(SCOPE, "k", ID)
        assert done.kind == "done" and done.entry.files == ["a.png"]
    store.begin(SCOPE, "f", ID)
    store.failed(SCOPE, "f", code="boom", message="it failed", task_id="t-2")
    with pytest.raises(TaskFailedError, match="it failed"):
        store.begin(SCOPE, "f", ID)
    assert store.begin(SCOPE, "f", ID, retry_failed=True).kind == "submit"
    store.release(SCOPE, "f")
    assert store.get(SCOPE, "f") is None
    store.begin(SCOPE, "u", ID)
    store.interrupted(SCOPE, "u")
    entry = store.get(SCOPE, "u")
    assert entry is not None and store.status(entry) == "uncertain"
    with pytest.raises(UncertainKeyError):
        store.begin(SCOPE, "u", ID)
    store.resolve(SCOPE, "u", "t-3")
    assert store.begin(SCOPE, "u", ID).kind == "poll"
    assert [e.key for e in store.entries(state="submitted")] == ["u"]


def test_lone_surrogate_in_a_result_is_stored_and_read_back(store: KeyStore) -> None:
    # before: sqlite3 raised a bare UnicodeEncodeError and the key stayed reserved for ever
    store.begin(SCOPE, "k", ID)
    store.succeeded(SCOPE, "k", {"task_id": "t", "prompt": "bad \ud800 text", "x": "\x00"})
    assert store.begin(SCOPE, "k", ID).result == {
        "task_id": "t",
        "prompt": "bad \ud800 text",
        "x": "\x00",
    }
    with pytest.raises(JournalError, match="surrogate"):
        store.begin(SCOPE, "key \udfff", ID)


def test_forget_of_a_paid_key_needs_force_and_names_its_task(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.begin(SCOPE, "k", ID)
    store.submitted(SCOPE, "k", "t-paid")
    with pytest.raises(JournalError, match=r"t-paid.*paid"):
        store.forget(SCOPE, "k")
    assert store.get(SCOPE, "k") is not None
    with caplog.at_level(logging.WARNING, logger="langchain_nanobanana"):
        assert store.forget(SCOPE, "k", force=True)
    assert any(r.levelno == logging.WARNING and "t-paid" in r.getMessage() for r in caplog.records)


def test_journal_is_bound_to_its_api_host(spec: str) -> None:
    # before: a re-run with another ACEDATACLOUD_API_BASE_URL silently paid again
    with FakeNanoBananaServer() as first, FakeNanoBananaServer() as second:
        with fast_client(first, journal=spec) as client:
            client.generate("a cat", idempotency_key="sku-1")
        with pytest.raises(JournalHostMismatchError) as info:
            fast_client(second, journal=spec)
        assert isinstance(info.value, ConfigurationError) and info.value.exit_code == 3
        assert first.base_url.split("//")[1] in str(info.value)
        assert second.base_url.split("//")[1] in str(info.value)
        assert second.requests == []


def test_client_pays_once_per_key(spec: str, sim: FakeNanoBananaServer) -> None:
    with fast_client(sim, journal=spec) as client:
        first = client.generate("a cat", idempotency_key="sku-1")
        again = client.generate("a cat", idempotency_key="sku-1")
        pending = client.generate("a dog", idempotency_key="sku-2", wait=False)
    with fast_client(sim, journal=spec) as client:
        later = client.generate("a dog", idempotency_key="sku-2")
    assert again.task_id == first.task_id and later.task_id == pending.task_id
    assert len(sim.requests_to(SUBMIT)) == 2
    assert not hasattr(client, "_keys")  # no per-task map that grows with wait=False


# -- leases ------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_expired_lease_is_uncertain_and_renewed_lease_is_alive(pg_url: str) -> None:
    spec = pg_url
    holder = open_journal(spec, lease=0.6)
    try:
        holder.begin(SCOPE, "held", ID)
        with open_journal(spec, lease=0.6) as other:
            time.sleep(1.5)  # longer than the lease: only the owner's renewals keep it alive
            with pytest.raises(IdempotencyKeyBusyError):
                other.begin(SCOPE, "held", ID, wait=0)
            holder._stop.set()  # the owner stops renewing (as if killed)
            deadline = time.monotonic() + 10
            while True:
                try:
                    other.begin(SCOPE, "held", ID, wait=0)
                except IdempotencyKeyBusyError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                    continue
                except UncertainKeyError as exc:
                    assert "lease" in str(exc)
                    break
            assert other.begin(SCOPE, "held", ID, resubmit_uncertain=True).kind == "submit"
    finally:
        holder._closed = True  # its reservation was taken over; nothing of it to settle


def test_sqlite_row_of_another_host_is_decided_by_its_lease(tmp_path: Path) -> None:
    # before: a reservation made under another host name counted as alive (600 s per row)
    path = tmp_path / "runs.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO entries (scope, key, identity, state, files, owner_pid, owner_host, "
            "created_at, updated_at) "
            "VALUES (?, 'k', ?, 'reserved', '[]', 4242, 'other-host', ?, ?)",
            (SCOPE, ID, time.time() - 120, time.time() - 120),
        )
    conn.close()
    with Journal(path, lease=30) as journal, pytest.raises(UncertainKeyError, match="lease"):
        journal.begin(SCOPE, "k", ID, wait=0)


# -- SQLite file identity ----------------------------------------------------------------------


def test_sqlite_journal_deleted_or_replaced_while_open_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with Journal(path) as journal:
        journal.begin(SCOPE, "k", ID)
        journal.submitted(SCOPE, "k", "t-1")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.unlink(f"{path}{suffix}")
        with pytest.raises(JournalError, match="deleted while in use"):
            journal.begin(SCOPE, "k2", ID)
        journal._closed = True
    with Journal(path) as journal:
        journal.begin(SCOPE, "k", ID)
        shutil.copy(path, tmp_path / "copy.sqlite")  # a copy without its -wal file
        os.replace(tmp_path / "copy.sqlite", path)
        with pytest.raises(JournalError, match="replaced"):
            journal.submitted(SCOPE, "k", "t-1")
        journal._closed = True


def test_sqlite_journal_copied_without_its_wal_file_is_refused(tmp_path: Path) -> None:
    """A copy of the main file alone, made while the journal is open, misses the keys still in
    the -wal file: opening it is an error that says so (nothing is sent); copied with its -wal
    file, or after a clean close, it opens and holds every key.
    """
    path = tmp_path / "runs.sqlite"
    with Journal(path) as journal:
        journal.begin(SCOPE, "k", ID)
        journal.submitted(SCOPE, "k", "t-1")  # in the -wal file, not yet in the main file
        shutil.copy(path, tmp_path / "alone.sqlite")
        shutil.copy(path, tmp_path / "both.sqlite")
        shutil.copy(f"{path}-wal", tmp_path / "both.sqlite-wal")
        with pytest.raises(JournalError, match="no -wal file") as info:
            Journal(tmp_path / "alone.sqlite")
        assert "still has it open" in info.value.message
        with Journal(tmp_path / "both.sqlite") as both:
            entry = both.get(SCOPE, "k")
            assert entry is not None and entry.task_id == "t-1"
        with Journal(path) as second:  # a second opener of the live file is fine
            assert second.get(SCOPE, "k") is not None
    shutil.copy(path, tmp_path / "closed.sqlite")  # after a clean close: no -wal file needed
    assert not Path(f"{path}-wal").exists()
    with Journal(tmp_path / "closed.sqlite") as closed:
        entry = closed.get(SCOPE, "k")
        assert entry is not None and entry.task_id == "t-1"
    with Journal(path) as again:  # and the original reopens, again and again
        assert again.get(SCOPE, "k") is not None


def _use_and_close(journal: Journal) -> None:
    journal.begin(SCOPE, "child-key", ID)
    journal.close()


def test_a_forked_child_closing_the_journal_keeps_the_parents_marker(tmp_path: Path) -> None:
    """A fork child that uses and closes the journal it inherited must not remove the parent's
    opener marker: the parent still has the file open, and a copy without the -wal file is
    still refused.
    """
    import multiprocessing

    path = tmp_path / "runs.sqlite"
    with Journal(path) as journal:
        journal.begin(SCOPE, "k", ID)
        child = multiprocessing.get_context("fork").Process(target=_use_and_close, args=(journal,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        journal._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        shutil.copy(path, tmp_path / "alone.sqlite")
        with pytest.raises(JournalError, match="still has it open"):
            Journal(tmp_path / "alone.sqlite")


def test_sqlite_journal_whose_wal_file_was_lost_after_a_crash_is_refused(tmp_path: Path) -> None:
    """kill -9 leaves the marker and the -wal file: the next opener recovers the -wal file (and
    drops the dead opener's marker); deleting that -wal file instead is refused.
    """
    import subprocess
    import sys

    path = tmp_path / "runs.sqlite"
    code = (
        "import os, signal, sys\n"
        "from langchain_nanobanana.journal import Journal\n"
        "j = Journal(sys.argv[1])\n"
        f"j.begin({SCOPE!r}, 'k', {ID!r})\n"
        f"j.submitted({SCOPE!r}, 'k', 't-1')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    for lose_wal in (False, True):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", code, str(path)], check=False)
        assert done.returncode == -9
        assert Path(f"{path}-wal").exists()
        if lose_wal:
            os.unlink(f"{path}-wal")
            with pytest.raises(JournalError, match="ended without closing it"):
                Journal(path)
            continue
        with Journal(path) as journal:
            entry = journal.get(SCOPE, "k")
            assert entry is not None and entry.task_id == "t-1"
        with Journal(path) as journal:  # the dead opener's marker is gone: no false alarm
            assert journal.get(SCOPE, "k") is not None


# -- PostgreSQL: bad input before any request --------------------------------------------------


@pytest.mark.postgres
def test_postgres_bad_urls_fail_before_any_request(pg_url: str, sim: FakeNanoBananaServer) -> None:
    from tests.helpers import free_port

    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(JournalError, match="cannot connect") as info:
        fast_client(sim, journal=unreachable)
    assert str(free_port) not in str(info.value)
    with pytest.raises(JournalError, match="cannot connect"):
        PostgresJournal(pg_url.replace("postgres@", "no_such_user_x:secret@"))
    with pytest.raises(JournalError) as bad:
        PostgresJournal(pg_url.replace("postgres@", "no_such_user_x:secret@"))
    assert "secret" not in str(bad.value)
    import psycopg

    with PostgresJournal(pg_url):
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE nanobanana_journal_meta SET value = '99' WHERE name = 'schema_version'"
        )
    with pytest.raises(JournalError, match="schema version 99"):
        fast_client(sim, journal=pg_url)
    assert sim.requests == []


@pytest.mark.postgres
def test_postgres_journal_through_the_client_object(pg_url: str, sim: FakeNanoBananaServer) -> None:
    journal = PostgresJournal(pg_url)
    with fast_client(sim, journal=journal) as client:
        client.generate("a cat", idempotency_key="k")
    assert journal.get(sim.base_url.rstrip("/"), "k") is not None or journal.entries()
    journal.close()
