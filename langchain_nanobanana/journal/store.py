"""``Journal``: the key states of :class:`~langchain_nanobanana.journal.machine.KeyStore` in one
SQLite file on one machine (owners are pids; see the package docstring).
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_nanobanana.journal._owner import _HOST, _own_start, pid_alive
from langchain_nanobanana.journal._records import (
    COLUMNS,
    Decision,
    Entry,
    changed_columns,
    entry_from_row,
    entry_values,
)
from langchain_nanobanana.journal._sqlite import SQLiteFile
from langchain_nanobanana.journal.errors import JournalError
from langchain_nanobanana.journal.machine import KeyStore

__all__ = ["Decision", "Entry", "Journal"]

_STORED = COLUMNS[:15]  # the file has no lease columns: a row's lease is updated_at + lease


class Journal(KeyStore):
    """A write-ahead journal of submissions in one SQLite file.

    Safe to share between threads (one connection under a lock) and between processes on one
    machine (SQLite locks; each process opens its own ``Journal``). After ``os.fork`` the child
    opens a fresh connection on first use. Every method either completes its transaction or
    raises :class:`JournalError`; none sends anything.

    A reservation's owner is a pid on this machine (checked with its start time). A row written
    by a process on another host (a file copied between machines) is judged by its lease: alive
    while its owner renewed it (``updated_at``) within ``lease`` seconds, uncertain after.

    Args:
        path: The journal file (``str`` or path-like). Created, with its schema, if missing or
            empty. ``":memory:"`` is refused (no WAL, no sharing).
        timeout: Seconds to wait for another process's lock on the file (SQLite
            ``busy_timeout``) before :class:`JournalError` (float > 0; default 30).
        lease: Seconds a reservation's lease lasts without renewal (default
            :data:`~langchain_nanobanana.journal.machine.DEFAULT_LEASE`, 30).

    Raises:
        JournalError: The file cannot be opened or created; it is not a journal (another SQLite
            database, or not SQLite at all: left untouched); it was written with another
            :data:`SCHEMA_VERSION`; it is corrupted (``PRAGMA quick_check`` fails; it reads the
            whole file: about 1 ms per 1000 entries); or WAL mode cannot be enabled.

    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, lease: float | None = None
    ) -> None:
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw or raw == ":memory:" or raw.startswith("file:"):
            raise JournalError(f"journal path must be a file path, got {raw!r}")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise JournalError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._init_machine(lease)
        self.path = raw
        self.timeout = float(timeout)
        self._location = "sqlite:" + os.path.realpath(raw)
        self._file = SQLiteFile(raw, self.timeout)

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"

    def reopen(self) -> Journal:
        """A new :class:`Journal` on the same file, with the same options."""
        return Journal(self.path, timeout=self.timeout, lease=self.lease)

    def _connection(self) -> sqlite3.Connection:
        """The connection of this process (tests read PRAGMAs through it)."""
        return self._file.connection()

    # -- primitives ---------------------------------------------------------------------------

    def _transaction(
        self, *, write: bool = True, durable: bool = True
    ) -> contextlib.AbstractContextManager[Any]:
        # every commit of this file is as durable as synchronous=NORMAL makes it
        if self._closed:
            raise self._error(f"journal {self.path} is closed")
        return self._file.transaction(write=write)

    def _read(self, row: Sequence[Any]) -> Entry:
        return entry_from_row([*list(row), None, float(row[14]) + self.lease], self.path)

    def _select(self, tx: Any, scope: str, key: str) -> Entry | None:
        row = tx.execute(
            f"SELECT {', '.join(_STORED)} FROM entries WHERE scope = ? AND key = ?",  # noqa: S608
            (scope, key),
        ).fetchone()
        return None if row is None else self._read(row)

    def _select_where(self, tx: Any, filters: Mapping[str, str]) -> list[Entry]:
        sql = f"SELECT {', '.join(_STORED)} FROM entries"  # noqa: S608 (constant; values bound)
        if filters:
            sql += " WHERE " + " AND ".join(f"{column} = ?" for column in filters)
        rows = tx.execute(sql + " ORDER BY created_at, rowid", list(filters.values()))
        return [self._read(row) for row in rows.fetchall()]

    def _select_keys(self, tx: Any, scope: str) -> list[tuple[str, str, str, str | None]]:
        rows = tx.execute(
            "SELECT key, identity, state, task_id FROM entries WHERE scope = ?", (scope,)
        )
        return [(str(k), str(i), str(s), t) for k, i, s, t in rows.fetchall()]

    def _values(self, entry: Entry) -> list[Any]:
        return entry_values(entry, _STORED)

    def _insert(self, tx: Any, entry: Entry) -> bool:
        marks = ", ".join("?" for _ in _STORED)
        tx.execute(
            f"INSERT INTO entries ({', '.join(_STORED)}) VALUES ({marks})",  # noqa: S608
            self._values(entry),
        )
        return True  # BEGIN IMMEDIATE: no other writer between the SELECT and this INSERT

    def _update(self, tx: Any, entry: Entry, old: Entry | None = None) -> None:
        columns = changed_columns(entry, old, _STORED[2:])
        if not columns:
            return
        sets = ", ".join(f"{column} = ?" for column in columns)
        tx.execute(
            f"UPDATE entries SET {sets} WHERE scope = ? AND key = ?",  # noqa: S608
            [*entry_values(entry, columns), entry.scope, entry.key],
        )

    def _delete(self, tx: Any, scope: str, key: str) -> None:
        tx.execute("DELETE FROM entries WHERE scope = ? AND key = ?", (scope, key))

    def _key_of_task(self, tx: Any, scope: str, task_id: str) -> str | None:
        row = tx.execute(
            "SELECT key FROM entries WHERE scope = ? AND task_id = ? LIMIT 1", (scope, task_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def _other_scope(self, tx: Any, scope: str) -> str | None:
        row = tx.execute("SELECT scope FROM entries WHERE scope <> ? LIMIT 1", (scope,)).fetchone()
        return None if row is None else str(row[0])

    def _owner(self) -> dict[str, Any]:
        return {
            "owner_pid": os.getpid(),
            "owner_start": _own_start(),
            "owner_host": _HOST,
            "owner_id": None,
            "lease_until": None,
        }

    def _alive(self, entry: Entry) -> bool | None:
        if entry.owner_pid and entry.owner_host and _HOST and entry.owner_host != _HOST:
            # another machine's pid means nothing here: its lease decides
            return entry.lease_until is not None and entry.lease_until > time.time()
        return pid_alive(entry, self._held_identity(entry.scope, entry.key) is not None)

    def _renew(self, keys: Sequence[tuple[str, str]]) -> None:
        now = time.time()
        with self._transaction() as tx:
            tx.executemany(
                "UPDATE entries SET updated_at = ? WHERE scope = ? AND key = ? "
                "AND state = 'reserved' AND owner_pid = ?",
                [(now, scope, key, os.getpid()) for scope, key in keys],
            )

    def _close_store(self) -> None:
        self._file.close()
