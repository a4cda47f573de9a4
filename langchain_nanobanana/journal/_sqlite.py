"""SQLite plumbing of the file journal: opening (WAL, ``synchronous=NORMAL``), the schema and its
version, transactions, noticing a file deleted or replaced while open, and turning
``sqlite3.Error`` into :class:`JournalError` with what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

from langchain_nanobanana.journal._common import _FORMAT, _STATES, _WAIT_STEP, SCHEMA_VERSION
from langchain_nanobanana.journal._owner import _HOST, _INHERITED, _own_start, pid_alive
from langchain_nanobanana.journal.errors import JournalError

__all__ = ["SQLiteFile"]

logger = logging.getLogger(__name__)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    identity      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in _STATES)})),
    task_id       TEXT,
    trace_id      TEXT,
    result        TEXT,
    files         TEXT NOT NULL DEFAULT '[]',
    error_code    TEXT,
    error_message TEXT,
    owner_pid     INTEGER,
    owner_start   TEXT,
    owner_host    TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
"""

#: An index (not part of the schema version: created on open when missing) so that the key of a
#: finished task is found without a scan.
TASK_INDEX = "CREATE INDEX IF NOT EXISTS entries_task ON entries (scope, task_id)"

_KEEP = (
    "Keep the file (it records which keys were paid for); a new journal would forget them and "
    "the next run would pay again"
)


class SQLiteFile:
    """One journal file: a connection per process (threads share it under ``lock``).

    Args:
        path: The file path (str).
        timeout: Seconds to wait for another process's lock (``busy_timeout``).

    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.lock = threading.RLock()
        self.closed = False
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = os.getpid()
        self._stat: tuple[int, int] | None = None
        self._marker: str | None = None  # this opener's row in meta (see _check_openers)
        with self.lock:
            self._conn = self._open(check=True)

    def error(self, message: str) -> JournalError:
        return JournalError(message, path=self.path)

    def wrap(self, exc: sqlite3.Error) -> JournalError:
        """Our error for an ``sqlite3.Error``, saying what to do (never "start a new file")."""
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return self.error(
                f"journal {self.path} stayed locked by another process for more than "
                f"{self.timeout:g} s ({text}); nothing was sent"
            )
        if "full" in text or "disk I/O" in text or "readonly" in text or "read-only" in text:
            return self.error(
                f"journal {self.path} could not be written ({text}). Free space or fix the "
                f"permissions, then run again. {_KEEP}"
            )
        return self.error(
            f"journal {self.path} is not a readable journal: {text}. The file may be "
            f"corrupted; nothing was sent. Recover its records (`sqlite3 {self.path} "
            f".recover`) into a new file at the same path. {_KEEP}"
        )

    # -- opening ------------------------------------------------------------------------------

    def _open(self, *, check: bool) -> sqlite3.Connection:
        """Open (and on first use create) the file. Switching to WAL and creating the schema can
        answer "locked" at once while another process does the same: retried every 50 ms up to
        ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self._open_once(check=check)
            except JournalError as exc:
                if "locked" not in exc.message or time.monotonic() >= deadline:
                    raise
            time.sleep(_WAIT_STEP)

    def _open_once(self, *, check: bool) -> sqlite3.Connection:
        if os.path.isdir(self.path):
            raise self.error(f"journal path {self.path} is a directory, not a file")
        # looked at before connecting: our own connection creates the -wal file
        wal_missing = os.path.exists(self.path) and not os.path.exists(self.path + "-wal")
        since = time.time()
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self.error(f"cannot open journal {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                raise self.error(
                    f"{self.path} is an SQLite database but not a Nano Banana journal "
                    f"(it has {', '.join(sorted(t for t in tables if t))}); it was left untouched"
                )
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            if mode != "wal":
                raise self.error(f"cannot put journal {self.path} in WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not tables:
                self._create(conn)
            self._check_meta(conn)
            if "entries_task" not in tables:
                conn.execute(TASK_INDEX)
            if check:
                verdict = str(conn.execute("PRAGMA quick_check").fetchone()[0])
                if verdict != "ok":
                    raise self.error(
                        f"journal {self.path} is corrupted (quick_check: {verdict}); nothing "
                        f"was sent. Recover its records (`sqlite3 {self.path} .recover`). {_KEEP}"
                    )
                self._check_openers(conn, wal_missing=wal_missing, since=since)
                self._register(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self.wrap(exc) from None
        except BaseException:
            conn.close()
            raise
        self._stat = self._identity()
        logger.debug("journal %s opened (WAL, synchronous=NORMAL)", self.path)
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # statement by statement: executescript() would COMMIT first
            for statement in (*SCHEMA.split(";"), TASK_INDEX):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES "
                "('format', ?), ('schema_version', ?), ('created_at', ?)",
                (_FORMAT, str(SCHEMA_VERSION), repr(time.time())),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _check_meta(self, conn: sqlite3.Connection) -> None:
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("format") != _FORMAT:
            raise self.error(
                f"{self.path} is an SQLite database but not a Nano Banana journal "
                f"(meta format {meta.get('format')!r}); it was left untouched"
            )
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise self.error(
                f"journal {self.path} was written with schema version {version}; this "
                f"langchain-nanobanana reads version {SCHEMA_VERSION}. Nothing was sent. Use the "
                f"langchain-nanobanana version that wrote it"
            )
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "entries" not in tables:
            raise self.error(f"journal {self.path} is incomplete (no entries table)")

    # -- a file copied (or restored) without its -wal file --------------------------------------

    def _check_openers(self, conn: sqlite3.Connection, *, wal_missing: bool, since: float) -> None:
        """Refuse a file whose -wal file is missing while an opener's marker says the file was
        in use: its commits since the last checkpoint (keys paid for) live only in that -wal
        file. Markers of openers that are gone are pruned when the -wal file is present (SQLite
        has just recovered it: nothing is lost).

        Each process that opens the file writes a marker row ``opener:...`` into ``meta`` and
        checkpoints it into the main file, and deletes it when it closes the file cleanly (the
        last connection's close checkpoints and deletes the -wal file). A copy of the main file
        alone, made while a process had it open or after one died without closing it, carries
        a marker and no -wal file. Markers written after ``since`` (a process that opened the
        file while this one was connecting) do not count.
        """
        rows = conn.execute("SELECT name, value FROM meta WHERE name LIKE 'opener:%'").fetchall()
        stale: list[str] = []
        lost: list[tuple[str, bool | None]] = []
        for name, value in rows:
            alive = _opener_alive(str(name))
            try:
                written = float(value)
            except ValueError:
                written = 0.0
            if wal_missing and written < since:
                lost.append((str(name), alive))
            elif not wal_missing and alive is not True:
                stale.append(str(name))
        if lost:
            name, alive = lost[0]
            parts = name.split(":")
            host, pid = (parts[1], parts[2]) if len(parts) > 2 else ("?", "?")
            how = "still has it open" if alive else "ended without closing it"
            raise self.error(
                f"journal {self.path} has no -wal file, but pid {pid} on {host or '?'} {how}: "  # noqa: S608
                f"it is a copy made without its -wal file (or that file was deleted), and the "
                f"keys recorded since its last checkpoint are missing; going on would pay again "
                f"for them. Nothing was sent. Copy the journal together with its -wal file, or "
                f"close the program that has it open and copy it again. If you know nothing "
                f"is missing: sqlite3 {self.path} \"DELETE FROM meta WHERE name LIKE 'opener:%'\""
            )
        if stale:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM meta WHERE name = ?", [(n,) for n in stale])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _register(self, conn: sqlite3.Connection) -> None:
        """Write this opener's marker and checkpoint it into the main file (best effort: a
        ``PASSIVE`` checkpoint never waits for other connections' readers).
        """
        self._marker = f"opener:{_HOST or ''}:{os.getpid()}:{_own_start() or ''}:{id(self):x}"
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                (self._marker, repr(time.time())),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _unregister(self, conn: sqlite3.Connection) -> None:
        if self._marker is None:
            return
        try:
            conn.execute("DELETE FROM meta WHERE name = ?", (self._marker,))
        except sqlite3.Error as exc:  # a full disk: the next opener sees a stale marker
            logger.warning("journal %s: could not remove its opener marker: %s", self.path, exc)
        self._marker = None

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_file(self) -> None:
        """The file at ``path`` must still be the one opened: a journal deleted or replaced
        while in use would forget every key recorded in it, silently.
        """
        now = self._identity()
        if now is None:
            raise self.error(
                f"journal {self.path} was deleted while in use: the keys recorded in it are "
                f"gone from disk, and going on would pay again for them. Nothing more is "
                f"recorded; restore the file (with its -wal file) or stop the other program"
            )
        if self._stat is not None and now != self._stat:
            raise self.error(
                f"journal {self.path} was replaced by another file while in use (a copy made "
                f"without its -wal file, or a restore): keys recorded since may be missing. "
                f"Nothing more is recorded; reopen the journal deliberately"
            )

    # -- use ----------------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        if self.closed:
            raise self.error(f"journal {self.path} is closed")
        pid = os.getpid()
        if self._conn is None or self._conn_pid != pid:
            if self._conn is not None:
                _INHERITED.append(self._conn)  # a fork child must neither use nor close it
                self._marker = None  # the parent's: only the parent removes it
            self._conn = None
            self._conn = self._open(check=False)
            self._conn_pid = pid
        return self._conn

    def forked(self) -> bool:
        """Whether the connection was opened by another (parent) process."""
        return self._conn is not None and self._conn_pid != os.getpid()

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (``BEGIN`` for reads) ... ``COMMIT`` under the lock; SQLite
        errors become :class:`JournalError`; any exception rolls back.
        """
        with self.lock:
            conn = self.connection()
            self._check_file()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise self.wrap(exc) from None
            try:
                yield conn
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self.wrap(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise self.wrap(exc) from None

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self._conn is not None and self._conn_pid == os.getpid():
                if self._stat is not None and self._identity() == self._stat:
                    self._unregister(self._conn)
                self._conn.close()
            self._conn = None


def _opener_alive(name: str) -> bool | None:
    """Whether the opener of marker ``name`` (``opener:HOST:PID:START:ID``) still runs: ``None``
    for another host (its pid means nothing here) or an unreadable marker.
    """
    parts = name.split(":", 4)
    if len(parts) < 5 or not parts[2].isdigit():
        return None
    _, host, pid, rest = parts[0], parts[1], int(parts[2]), parts[3:]
    if host != (_HOST or ""):
        return None
    start = ":".join(rest).rsplit(":", 1)[0] or None
    if pid == os.getpid():
        own = _own_start()
        return not (start and own and start != own)
    return pid_alive(SimpleNamespace(owner_pid=pid, owner_start=start), False)
