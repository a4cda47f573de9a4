"""``Journal``: the SQLite file, its schema and the state table of every key (see the
package docstring).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_nanobanana.errors import TaskFailedError
from langchain_nanobanana.journal._common import (
    _FORMAT,
    _STATES,
    _WAIT_STEP,
    SCHEMA_VERSION,
    DecisionKind,
    OwnerStatus,
    State,
)
from langchain_nanobanana.journal._owner import (
    _HELD,
    _HELD_LOCK,
    _HOST,
    _INHERITED,
    _own_start,
    _proc_stat,
    _start_marker,
)
from langchain_nanobanana.journal.errors import (
    IdempotencyKeyBusyError,
    IdempotencyKeyMismatchError,
    JournalError,
    UncertainKeyError,
)

__all__ = ["Decision", "Entry", "Journal"]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Entry:
    """One key's record, as stored.

    Attributes:
        scope: The key's scope (the client's normalised base URL).
        key: The idempotency key.
        identity: :func:`request_identity` of the request the key names (64 hex).
        state: ``"reserved"`` (submission in flight or uncertain), ``"submitted"`` (``task_id``
            known), ``"succeeded"`` or ``"failed"`` (the task ran and failed).
        task_id, trace_id: The API's ids, once known.
        result: The JSON of the ``ImageResult`` (dict) when succeeded, else ``None``.
        files: Paths (str) of the images downloaded for the result.
        error_code, error_message: The task's error when failed.
        owner_pid: Pid that holds (or held) the reservation; 0 once interrupted; ``None`` when
            settled by hand.
        owner_start: Start marker of that process (Linux: ``"<boot id>:<start ticks>"``), or
            ``None`` where unknown.
        owner_host: Host name of that process.
        created_at, updated_at: Unix time in seconds (float).

    """

    scope: str
    key: str
    identity: str
    state: State
    task_id: str | None
    trace_id: str | None
    result: dict[str, Any] | None
    files: list[str]
    error_code: str | None
    error_message: str | None
    owner_pid: int | None
    owner_start: str | None
    owner_host: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Decision:
    """What the caller of :meth:`Journal.begin` must do next.

    Attributes:
        kind: ``"submit"`` — the key is reserved for this caller: send the request, then record
            exactly one outcome (see the module docstring); ``"poll"`` — a task exists: poll
            ``entry.task_id``; ``"done"`` — the task succeeded: ``entry.result`` and
            ``entry.files`` are the answer, send nothing.
        entry: The key's record after the decision.

    """

    kind: DecisionKind
    entry: Entry

    @property
    def task_id(self) -> str | None:
        """The recorded task id (``None`` for a fresh reservation)."""
        return self.entry.task_id

    @property
    def result(self) -> dict[str, Any] | None:
        """The recorded result JSON (only for ``"done"``)."""
        return self.entry.result


# --------------------------------------------------------------------------------------------
# The journal

_COLUMNS = (
    "scope, key, identity, state, task_id, trace_id, result, files, error_code, error_message, "
    "owner_pid, owner_start, owner_host, created_at, updated_at"
)

_SCHEMA = f"""
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


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise JournalError(f"{name} must be a non-empty str, got {value!r}")
    return value


class Journal:
    """A write-ahead journal of submissions in one SQLite file.

    Safe to share between threads (one connection under a lock) and between processes on one
    machine (SQLite locks; each process opens its own ``Journal``). After ``os.fork`` the child
    opens a fresh connection on first use. Every method either completes its transaction or
    raises :class:`JournalError`; none sends anything.

    Args:
        path: The journal file (``str`` or path-like). Created, with its schema, if missing or
            empty. ``":memory:"`` is refused (no WAL, no sharing).
        timeout: Seconds to wait for another process's lock on the file (SQLite
            ``busy_timeout``) before :class:`JournalError` (float > 0; default 30).

    Raises:
        JournalError: The file cannot be opened or created; it is not a journal (another SQLite
            database, or not SQLite at all: left untouched); it was written with another
            :data:`SCHEMA_VERSION`; it is corrupted (``PRAGMA quick_check`` fails; it reads the
            whole file: about 1 ms per 1000 entries); or WAL mode cannot be enabled.

    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw or raw == ":memory:" or raw.startswith("file:"):
            raise JournalError(f"journal path must be a file path, got {raw!r}")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise JournalError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.path: str = raw
        self.timeout: float = float(timeout)
        self._real = os.path.realpath(raw)
        self._lock = threading.RLock()
        self._closed = False
        self._held: dict[tuple[str, str], int] = {}  # (scope, key) -> pid that reserved it
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = os.getpid()
        with self._lock:
            self._conn = self._open(check=True)

    # -- connection -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, message: str) -> JournalError:
        return JournalError(message, path=self.path)

    def _wrap(self, exc: sqlite3.Error) -> JournalError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return self._error(
                f"journal {self.path} stayed locked by another process for more than "
                f"{self.timeout:g} s ({text}); nothing was sent"
            )
        return self._error(
            f"journal {self.path} is not a readable journal: {text}. The file may be "
            f"corrupted; nothing was sent. Move it aside (it may still hold task ids: "
            f"`sqlite3 {self.path} .recover`) and start a new journal file"
        )

    def _open(self, *, check: bool) -> sqlite3.Connection:
        """Open (and on first use create) the file. Switching to WAL and creating the schema can
        answer "locked" at once, without SQLite's busy handler, while another process does the
        same: retried every 50 ms up to ``timeout`` seconds.
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
            raise self._error(f"journal path {self.path} is a directory, not a file")
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(f"cannot open journal {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                raise self._error(
                    f"{self.path} is an SQLite database but not a Nano Banana journal "
                    f"(it has {', '.join(sorted(tables))}); it was left untouched"
                )
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            if mode != "wal":
                raise self._error(f"cannot put journal {self.path} in WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not tables:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # statement by statement: executescript() would COMMIT first
                    for statement in _SCHEMA.split(";"):
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
            self._check_meta(conn)
            if check:
                verdict = str(conn.execute("PRAGMA quick_check").fetchone()[0])
                if verdict != "ok":
                    raise self._error(
                        f"journal {self.path} is corrupted (quick_check: {verdict}); nothing "
                        f"was sent. Move it aside and start a new journal file"
                    )
        except sqlite3.Error as exc:
            conn.close()
            raise self._wrap(exc) from None
        except BaseException:
            conn.close()
            raise
        logger.debug("journal %s opened (WAL, synchronous=NORMAL)", self.path)
        return conn

    def _check_meta(self, conn: sqlite3.Connection) -> None:
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("format") != _FORMAT:
            raise self._error(
                f"{self.path} is an SQLite database but not a Nano Banana journal "
                f"(meta format {meta.get('format')!r}); it was left untouched"
            )
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise self._error(
                f"journal {self.path} was written with schema version {version}; this "
                f"langchain-nanobanana reads version {SCHEMA_VERSION}. Nothing was sent. Use the "
                f"langchain-nanobanana version that wrote it, or start a new journal file"
            )
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "entries" not in tables:
            raise self._error(f"journal {self.path} is incomplete (no entries table)")

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise self._error(f"journal {self.path} is closed")
        pid = os.getpid()
        if self._conn is None or self._conn_pid != pid:
            if self._conn is not None:
                _INHERITED.append(self._conn)  # a fork child must neither use nor close it
                with _HELD_LOCK:
                    self._held.clear()
            self._conn = None
            self._conn = self._open(check=False)
            self._conn_pid = pid
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (``BEGIN`` for reads) ... ``COMMIT`` under the instance lock;
        SQLite errors become :class:`JournalError`; any exception rolls back.
        """
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise self._wrap(exc) from None
            try:
                yield conn
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._wrap(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise self._wrap(exc) from None

    def close(self) -> None:
        """Close the file. Reservations this instance still holds (a caller that got
        ``"submit"`` and recorded no outcome) are marked interrupted first: nobody can record
        their task ids any more, so they become uncertain. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            pid = os.getpid()
            with _HELD_LOCK:
                mine = [sk for sk, owner in self._held.items() if owner == pid]
            for scope, key in mine:
                try:
                    self.interrupted(scope, key)
                except JournalError as exc:
                    logger.warning("journal %s: could not mark %r interrupted: %s", self, key, exc)
            self._closed = True
            if self._conn is not None and self._conn_pid == pid:
                self._conn.close()
            self._conn = None

    # -- rows -------------------------------------------------------------------------------

    def _entry(self, row: Sequence[Any]) -> Entry:
        try:
            result = json.loads(row[6]) if row[6] is not None else None
            files = json.loads(row[7]) if row[7] else []
            if result is not None and not isinstance(result, dict):
                raise ValueError("result is not a JSON object")
            if not isinstance(files, list):
                raise ValueError("files is not a JSON list")
            state = row[3]
            if state not in _STATES:
                raise ValueError(f"unknown state {state!r}")
        except ValueError as exc:
            raise self._error(
                f"journal {self.path} holds an unreadable entry for key {row[1]!r}: {exc}. "
                f"The file may be corrupted; nothing was sent"
            ) from None
        return Entry(
            scope=row[0],
            key=row[1],
            identity=row[2],
            state=cast(State, state),
            task_id=row[4],
            trace_id=row[5],
            result=result,
            files=[str(f) for f in files],
            error_code=row[8],
            error_message=row[9],
            owner_pid=row[10],
            owner_start=row[11],
            owner_host=row[12],
            created_at=float(row[13]),
            updated_at=float(row[14]),
        )

    def _select(self, conn: sqlite3.Connection, scope: str, key: str) -> Entry | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM entries WHERE scope = ? AND key = ?",  # noqa: S608 (constant)
            (scope, key),
        ).fetchone()
        return None if row is None else self._entry(row)

    def _hold(self, scope: str, key: str, identity: str) -> None:
        with _HELD_LOCK:
            _HELD[(self._real, scope, key)] = identity
            self._held[(scope, key)] = os.getpid()

    def _unhold(self, scope: str, key: str) -> str | None:
        with _HELD_LOCK:
            self._held.pop((scope, key), None)
            return _HELD.pop((self._real, scope, key), None)

    def _held_identity(self, scope: str, key: str) -> str | None:
        with _HELD_LOCK:
            return _HELD.get((self._real, scope, key))

    def _is_mine(self, entry: Entry) -> bool:
        if entry.owner_pid != os.getpid():
            return False
        own = _own_start()
        return entry.owner_start is None or own is None or entry.owner_start == own

    def _owner_alive(self, entry: Entry) -> bool | None:
        """``True`` alive, ``False`` dead (or interrupted), ``None`` cannot tell."""
        pid = entry.owner_pid
        if not pid or pid <= 0:
            return False
        if entry.owner_host and _HOST and entry.owner_host != _HOST:
            return None
        if pid == os.getpid():
            own = _own_start()
            if entry.owner_start and own and entry.owner_start != own:
                return False  # an earlier process that had our pid
            return self._held_identity(entry.scope, entry.key) is not None
        if os.name != "posix":
            return None  # os.kill(pid, 0) would terminate the process on Windows
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by another user
        except OSError:
            return None
        stat = _proc_stat(pid)
        if stat is None:
            return True  # no /proc (macOS, BSD): the pid exists
        if stat[0] in ("Z", "X", "x"):
            return False  # killed, not yet reaped
        marker = _start_marker(pid)
        return not (entry.owner_start and marker and entry.owner_start != marker)

    def status(self, entry: Entry) -> OwnerStatus:
        """How a person should read an entry (``nanobanana journal list``).

        Args:
            entry: An entry from :meth:`get` or :meth:`entries`.

        Returns:
            ``"in_flight"`` (reserved by an owner that is alive or cannot be checked),
            ``"uncertain"`` (reserved, owner dead or interrupted: maybe billed), or the state
            ``"submitted"``, ``"succeeded"``, ``"failed"``.

        """
        if entry.state != "reserved":
            return entry.state
        return "uncertain" if self._owner_alive(entry) is False else "in_flight"

    # -- the protocol -----------------------------------------------------------------------

    def begin(
        self,
        scope: str,
        key: str,
        identity: str,
        *,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        wait: float = 600.0,
    ) -> Decision:
        """Decide what a submission under ``key`` must do, reserving the key when it is free.

        Atomic across threads and processes (``BEGIN IMMEDIATE``): of several callers racing on
        one key exactly one gets ``"submit"``; the others wait for its outcome. Blocks while a
        live owner holds the key (call it from a worker thread in async code).

        Args:
            scope: The key's scope: the client's normalised base URL (non-empty str).
            key: The idempotency key (non-empty str).
            identity: :func:`request_identity` of the request body.
            resubmit_uncertain: Take over a key whose owner died or was interrupted in flight
                (may pay twice) instead of raising :class:`UncertainKeyError`.
            retry_failed: Take over a key whose task failed instead of raising
                :class:`~langchain_nanobanana.errors.TaskFailedError` again.
            wait: Seconds to wait for a live owner's outcome (float >= 0; polled every 50 ms).

        Returns:
            A :class:`Decision`: ``"submit"`` (reserved for this caller: record one outcome),
            ``"poll"`` (``decision.task_id``) or ``"done"`` (``decision.result``).

        Raises:
            IdempotencyKeyMismatchError: The key names another request (checked first).
            UncertainKeyError: The key's submission may have been billed (owner dead or
                interrupted) and ``resubmit_uncertain`` is false.
            TaskFailedError: The key's task failed and ``retry_failed`` is false (``task_id``,
                ``trace_id``, ``code`` and ``message`` as recorded).
            IdempotencyKeyBusyError: A live owner recorded no outcome within ``wait`` seconds.
            JournalError: Bad arguments, or the file is unreadable, corrupted or locked.

        """
        _check_text("scope", scope)
        _check_text("key", key)
        _check_text("identity", identity)
        if not (isinstance(wait, (int, float)) and wait >= 0 and not math.isnan(wait)):
            raise JournalError(f"wait must be a number of seconds >= 0, got {wait!r}")
        started = time.monotonic()
        announced = False
        while True:
            reserved_here = False
            try:
                with self._transaction() as conn:
                    entry = self._select(conn, scope, key)
                    decision: Decision | None
                    if entry is None:
                        decision = Decision("submit", self._reserve(conn, scope, key, identity))
                        self._hold(scope, key, identity)
                        reserved_here = True
                    else:
                        decision = self._decide(
                            conn, entry, identity, resubmit_uncertain, retry_failed
                        )
                        reserved_here = decision is not None and decision.kind == "submit"
            except BaseException:
                if reserved_here:
                    self._unhold(scope, key)
                raise
            if decision is not None:
                logger.debug("journal key %r: %s", key, decision.kind)
                return decision
            assert entry is not None
            waited = time.monotonic() - started
            if waited >= wait:
                raise IdempotencyKeyBusyError(
                    scope=scope,
                    key=key,
                    owner_pid=entry.owner_pid,
                    owner_host=entry.owner_host,
                    waited=waited,
                    path=self.path,
                )
            if not announced:
                announced = True
                logger.info(
                    "journal key %r is being submitted by pid %s; waiting up to %.0f s for it",
                    key,
                    entry.owner_pid,
                    wait,
                )
            time.sleep(min(_WAIT_STEP, wait - waited))

    def _reserve(
        self,
        conn: sqlite3.Connection,
        scope: str,
        key: str,
        identity: str,
        *,
        created_at: float | None = None,
    ) -> Entry:
        now = time.time()
        conn.execute(
            f"INSERT OR REPLACE INTO entries ({_COLUMNS}) "  # noqa: S608 (constant columns)
            "VALUES (?, ?, ?, 'reserved', NULL, NULL, NULL, '[]', NULL, NULL, ?, ?, ?, ?, ?)",
            (scope, key, identity, os.getpid(), _own_start(), _HOST, created_at or now, now),
        )
        return Entry(
            scope=scope,
            key=key,
            identity=identity,
            state="reserved",
            task_id=None,
            trace_id=None,
            result=None,
            files=[],
            error_code=None,
            error_message=None,
            owner_pid=os.getpid(),
            owner_start=_own_start(),
            owner_host=_HOST,
            created_at=created_at or now,
            updated_at=now,
        )

    def _decide(
        self,
        conn: sqlite3.Connection,
        entry: Entry,
        identity: str,
        resubmit_uncertain: bool,
        retry_failed: bool,
    ) -> Decision | None:
        """The decision for an existing entry, or ``None`` to wait for a live owner."""
        if entry.identity != identity:
            raise IdempotencyKeyMismatchError(
                scope=entry.scope,
                key=entry.key,
                stored_identity=entry.identity,
                identity=identity,
                task_id=entry.task_id,
                path=self.path,
            )
        if entry.state == "succeeded":
            return Decision("done", entry)
        if entry.state == "submitted":
            return Decision("poll", entry)
        if entry.state == "failed":
            if not retry_failed:
                logger.info(
                    "journal key %r: task %s failed earlier; raising the recorded failure",
                    entry.key,
                    entry.task_id,
                )
                raise TaskFailedError(
                    entry.error_message or "the task failed",
                    task_id=entry.task_id,
                    trace_id=entry.trace_id,
                    code=entry.error_code,
                )
            logger.info(
                "journal key %r: task %s failed earlier; retry_failed=True: submitting again",
                entry.key,
                entry.task_id,
            )
            return self._take_over(conn, entry)
        alive = self._owner_alive(entry)
        if alive is not False:
            return None
        if not resubmit_uncertain:
            if not entry.owner_pid:
                reason = "its submission was interrupted"
            elif entry.owner_pid == os.getpid():
                reason = f"its caller in this process (pid {entry.owner_pid}) stopped"
            else:
                reason = f"the process that sent it (pid {entry.owner_pid}) ended"
            logger.warning("journal key %r is uncertain (%s): not resubmitting", entry.key, reason)
            raise UncertainKeyError(
                scope=entry.scope,
                key=entry.key,
                owner_pid=entry.owner_pid,
                reason=reason,
                path=self.path,
            )
        logger.warning(
            "journal key %r: resubmit_uncertain=True: submitting again although the earlier "
            "submission (pid %s) may have been billed",
            entry.key,
            entry.owner_pid,
        )
        return self._take_over(conn, entry)

    def _take_over(self, conn: sqlite3.Connection, entry: Entry) -> Decision:
        fresh = self._reserve(
            conn, entry.scope, entry.key, entry.identity, created_at=entry.created_at
        )
        self._hold(entry.scope, entry.key, entry.identity)
        return Decision("submit", fresh)

    def _settle(
        self,
        scope: str,
        key: str,
        what: str,
        task_id: str | None,
        write: str,
        params: tuple[Any, ...],
    ) -> None:
        """Record an outcome: ``write`` is an UPDATE of the row (params end with scope, key).
        Keeps a different task id already recorded (logged at WARNING: never lost silently);
        re-creates a row forgotten while this process held it.
        """
        _check_text("scope", scope)
        _check_text("key", key)
        with self._transaction() as conn:
            entry = self._select(conn, scope, key)
            if entry is None:
                identity = self._held_identity(scope, key)
                if identity is None:
                    logger.warning(
                        "journal key %r is not in %s: %s of task %s not recorded",
                        key,
                        self.path,
                        what,
                        task_id,
                    )
                    self._unhold(scope, key)
                    return
                self._reserve(conn, scope, key, identity)
            elif entry.task_id and task_id and entry.task_id != task_id:
                logger.warning(
                    "journal key %r already records task %s; %s of task %s not recorded "
                    "(both may have been billed)",
                    key,
                    entry.task_id,
                    what,
                    task_id,
                )
                self._unhold(scope, key)
                return
            conn.execute(write, params)
        self._unhold(scope, key)
        logger.debug("journal key %r: %s (task %s)", key, what, task_id)

    def submitted(self, scope: str, key: str, task_id: str, trace_id: str | None = None) -> None:
        """Record that the submission was accepted as task ``task_id`` (state ``submitted``).

        Call as soon as the answer with the id arrives, before polling. Idempotent for the same
        ``task_id``; a later state (``succeeded``/``failed``) is kept.

        Args:
            scope, key: The key that :meth:`begin` reserved.
            task_id: The API's task id (non-empty str).
            trace_id: The API's trace id, if any.

        Raises:
            JournalError: Bad arguments, or the file is unreadable or locked.

        """
        _check_text("task_id", task_id)
        self._settle(
            scope,
            key,
            "submission",
            task_id,
            "UPDATE entries SET state = CASE WHEN state = 'reserved' THEN 'submitted' "
            "ELSE state END, task_id = ?, trace_id = COALESCE(?, trace_id), updated_at = ? "
            "WHERE scope = ? AND key = ?",
            (task_id, trace_id, time.time(), scope, key),
        )

    def succeeded(
        self,
        scope: str,
        key: str,
        result: Mapping[str, Any],
        files: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        """Record the finished task's result (state ``succeeded``): the same key then returns
        it without any request.

        Args:
            scope, key: The key.
            result: The JSON of the ``ImageResult`` (a JSON-serialisable mapping; its
                ``task_id`` and ``trace_id`` are recorded too). Keep it small: leave out echoed
                request bodies (data URIs).
            files: Paths (str or path-like) of the images downloaded for it.

        Raises:
            JournalError: Bad arguments (``result`` not JSON), or the file is unreadable or
                locked.

        """
        try:
            text = json.dumps(dict(result), ensure_ascii=False, allow_nan=False)
            files_text = json.dumps([os.fspath(f) for f in files], ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise self._error(f"succeeded() needs a JSON result and paths: {exc}") from None
        task_id = result.get("task_id") if isinstance(result.get("task_id"), str) else None
        trace_id = result.get("trace_id") if isinstance(result.get("trace_id"), str) else None
        self._settle(
            scope,
            key,
            "result",
            task_id or None,
            "UPDATE entries SET state = 'succeeded', task_id = COALESCE(?, task_id), "
            "trace_id = COALESCE(?, trace_id), result = ?, files = ?, error_code = NULL, "
            "error_message = NULL, updated_at = ? WHERE scope = ? AND key = ?",
            (task_id or None, trace_id or None, text, files_text, time.time(), scope, key),
        )

    def failed(
        self,
        scope: str,
        key: str,
        *,
        code: str | None,
        message: str | None,
        task_id: str | None,
        trace_id: str | None = None,
    ) -> None:
        """Record that the task ran and failed (state ``failed``): the same key then raises
        ``TaskFailedError`` again unless ``retry_failed=True``. Not for submissions refused
        before a task existed (use :meth:`release`) nor for a poll that timed out (record
        nothing).

        Args:
            scope, key: The key.
            code, message: The API's ``response.error`` code and message.
            task_id, trace_id: The task's ids.

        Raises:
            JournalError: Bad arguments, or the file is unreadable or locked.

        """
        self._settle(
            scope,
            key,
            "failure",
            task_id or None,
            "UPDATE entries SET state = 'failed', task_id = COALESCE(?, task_id), "
            "trace_id = COALESCE(?, trace_id), result = NULL, error_code = ?, "
            "error_message = ?, updated_at = ? WHERE scope = ? AND key = ?",
            (task_id or None, trace_id, code, message, time.time(), scope, key),
        )

    def release(self, scope: str, key: str) -> None:
        """Free a reservation whose submission surely never created a task (connection
        refused, connect timeout, a 400/401/402/403/429 answer, local validation): the next
        call with the key submits. Only this process's own reservation is deleted; a key that
        already has a task is kept (logged at WARNING).

        Args:
            scope, key: The key that :meth:`begin` reserved.

        Raises:
            JournalError: Bad arguments, or the file is unreadable or locked.

        """
        _check_text("scope", scope)
        _check_text("key", key)
        with self._transaction() as conn:
            entry = self._select(conn, scope, key)
            if entry is not None and entry.state == "reserved" and self._is_mine(entry):
                conn.execute("DELETE FROM entries WHERE scope = ? AND key = ?", (scope, key))
            elif entry is not None:
                logger.warning(
                    "journal key %r not released: it is %s (task %s, pid %s)",
                    key,
                    entry.state,
                    entry.task_id,
                    entry.owner_pid,
                )
        self._unhold(scope, key)
        logger.debug("journal key %r released", key)

    def interrupted(self, scope: str, key: str) -> None:
        """Mark this process's reservation as interrupted before an answer (read timeout,
        connection dropped after sending, 5xx, Ctrl-C, cancellation): the submission may have
        been billed, so the key becomes *uncertain* for the next caller (owner_pid 0). A key
        that already has a task, or is held by another owner, is left as it is.

        Args:
            scope, key: The key that :meth:`begin` reserved.

        Raises:
            JournalError: Bad arguments, or the file is unreadable or locked.

        """
        _check_text("scope", scope)
        _check_text("key", key)
        try:
            with self._transaction() as conn:
                entry = self._select(conn, scope, key)
                if entry is not None and entry.state == "reserved" and self._is_mine(entry):
                    conn.execute(
                        "UPDATE entries SET owner_pid = 0, updated_at = ? "
                        "WHERE scope = ? AND key = ?",
                        (time.time(), scope, key),
                    )
                    logger.warning(
                        "journal key %r: submission interrupted before an answer; it may have "
                        "been billed, the key is now uncertain",
                        key,
                    )
        finally:
            self._unhold(scope, key)

    # -- reading and settling by hand -------------------------------------------------------

    def get(self, scope: str, key: str) -> Entry | None:
        """The key's entry, or ``None``.

        Raises:
            JournalError: The file is unreadable or locked.

        """
        _check_text("scope", scope)
        _check_text("key", key)
        with self._transaction(write=False) as conn:
            return self._select(conn, scope, key)

    def entries(
        self, *, scope: str | None = None, state: str | None = None, key: str | None = None
    ) -> list[Entry]:
        """Entries, oldest first, optionally filtered by scope, state and key.

        Args:
            scope: Only this scope (base URL).
            state: Only this stored state (``"reserved"``, ``"submitted"``, ``"succeeded"``,
                ``"failed"``); use :meth:`status` to tell in-flight from uncertain.
            key: Only this key (in any scope).

        Raises:
            JournalError: Unknown state, or the file is unreadable or locked.

        """
        if state is not None and state not in _STATES:
            raise self._error(f"state must be one of {', '.join(_STATES)}, got {state!r}")
        where, params = [], []
        for column, value in (("scope", scope), ("state", state), ("key", key)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_COLUMNS} FROM entries"  # noqa: S608 (constant; values are bound)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._transaction(write=False) as conn:
            rows = conn.execute(sql + " ORDER BY created_at, rowid", params).fetchall()
            return [self._entry(row) for row in rows]

    def resolve(self, scope: str, key: str, task_id: str, trace_id: str | None = None) -> None:
        """Settle a key by hand with the task a person found (state ``submitted``): the next
        call with the key polls ``task_id``.

        Args:
            scope, key: The key (usually uncertain; a ``submitted`` key gets its id corrected).
            task_id: The task id found in the vendor console or callback.
            trace_id: Its trace id, if known.

        Raises:
            JournalError: No such key; the key is in flight in a live process; or it already
                succeeded or failed (forget it first); or the file is unreadable or locked.

        """
        _check_text("scope", scope)
        _check_text("key", key)
        _check_text("task_id", task_id)
        with self._transaction() as conn:
            entry = self._select(conn, scope, key)
            if entry is None:
                raise self._error(f"no journal entry for key {key!r} (scope {scope})")
            if entry.state in ("succeeded", "failed"):
                raise self._error(
                    f"journal key {key!r} already {entry.state} (task {entry.task_id}); "
                    f"forget it first to record another task"
                )
            if entry.state == "reserved" and self._owner_alive(entry) is True:
                raise self._error(
                    f"journal key {key!r} is being submitted right now by pid "
                    f"{entry.owner_pid}; wait for it instead of resolving by hand"
                )
            conn.execute(
                "UPDATE entries SET state = 'submitted', task_id = ?, trace_id = ?, "
                "owner_pid = NULL, owner_start = NULL, owner_host = NULL, updated_at = ? "
                "WHERE scope = ? AND key = ?",
                (task_id, trace_id, time.time(), scope, key),
            )
        logger.info("journal key %r resolved by hand to task %s", key, task_id)

    def forget(self, scope: str, key: str) -> bool:
        """Delete a key's entry, so the next call with the key submits (and pays) again.

        Args:
            scope, key: The key.

        Returns:
            ``True`` when an entry was deleted, ``False`` when there was none.

        Raises:
            JournalError: The key is in flight in a live process (forgetting it would let a
                racing caller pay twice), or the file is unreadable or locked.

        """
        _check_text("scope", scope)
        _check_text("key", key)
        with self._transaction() as conn:
            entry = self._select(conn, scope, key)
            if entry is None:
                return False
            if entry.state == "reserved" and self._owner_alive(entry) is True:
                raise self._error(
                    f"journal key {key!r} is being submitted right now by pid "
                    f"{entry.owner_pid}; wait for it instead of forgetting it"
                )
            conn.execute("DELETE FROM entries WHERE scope = ? AND key = ?", (scope, key))
        logger.info("journal key %r forgotten (state %s, task %s)", key, entry.state, entry.task_id)
        return True
