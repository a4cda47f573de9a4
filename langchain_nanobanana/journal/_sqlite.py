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

from langchain_nanobanana.journal._common import _FORMAT, _STATES, _WAIT_STEP, SCHEMA_VERSION
from langchain_nanobanana.journal._owner import _INHERITED
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
                self._conn.close()
            self._conn = None
