"""``PostgresJournal``: the key states of
:class:`~langchain_nanobanana.journal.machine.KeyStore` in a PostgreSQL database, shared by
workers on any number of machines.

Ownership of a reservation is a *lease* (owner id, expiry), not a pid: the owner renews it
every third of ``lease`` seconds while its submission is in flight; a reservation whose lease
expired is *uncertain* (its request may have been sent), and is never resubmitted without
``resubmit_uncertain``. A key whose ``task_id`` is recorded is polled by whichever worker gets
to it. Lease times are the database server's clock (one clock for every machine). A key is
claimed with ``INSERT … ON CONFLICT DO NOTHING`` and decided under ``SELECT … FOR UPDATE``.

Durability: the reservation (``begin``) commits synchronously — it is on the server's disk
before the request leaves. ``submitted``/``succeeded``/``failed`` and lease renewals commit with
``synchronous_commit = off`` (on disk within about 0.6 s): a crash of the *database server* may
lose the last of them, which leaves the key reserved (uncertain once its lease expires) or
submitted (polled again) — never free, so never paid twice. A crash of a worker loses nothing
committed. Cost: one disk flush per submission instead of three.

Needs psycopg 3 (``pip install 'langchain-nanobanana[postgres]'``). Tables
``nanobanana_journal_meta`` and ``nanobanana_journal_entries`` live in the connection's
``search_path`` schema (``public`` unless the URL says otherwise, e.g.
``?options=-csearch_path%3Dmyschema``).

Sources: PostgreSQL documentation, "INSERT — ON CONFLICT Clause"
(https://www.postgresql.org/docs/current/sql-insert.html) and "The Locking Clause"
(https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE); psycopg 3,
"Transactions management" (https://www.psycopg.org/psycopg3/docs/basic/transactions.html).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from langchain_nanobanana.journal._common import _FORMAT, _STATES, SCHEMA_VERSION
from langchain_nanobanana.journal._owner import _HOST, _own_start
from langchain_nanobanana.journal._records import (
    COLUMNS,
    Entry,
    changed_columns,
    entry_from_row,
    entry_values,
)
from langchain_nanobanana.journal.errors import JournalError
from langchain_nanobanana.journal.machine import KeyStore

__all__ = ["PostgresJournal", "is_postgres_url"]

_META = "nanobanana_journal_meta"
_ENTRIES = "nanobanana_journal_entries"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS {_ENTRIES} (
        scope TEXT NOT NULL, key TEXT NOT NULL, identity TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in _STATES)})),
        task_id TEXT, trace_id TEXT, result TEXT, files TEXT NOT NULL DEFAULT '[]',
        error_code TEXT, error_message TEXT, owner_pid INTEGER, owner_start TEXT,
        owner_host TEXT, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL, owner_id TEXT, lease_until DOUBLE PRECISION,
        PRIMARY KEY (scope, key))""",
    f"CREATE INDEX IF NOT EXISTS {_ENTRIES}_task ON {_ENTRIES} (scope, task_id)",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {_ENTRIES}"  # noqa: S608 (constant)
_KEEP_INHERITED: list[Any] = []  # connections inherited through fork: never used nor closed


def is_postgres_url(spec: object) -> bool:
    """Whether ``spec`` names a PostgreSQL journal (``postgresql://`` or ``postgres://``)."""
    return isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://"))


def _display(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"
    except ValueError:
        return "postgresql://(unparseable URL)"


class _Tx:
    def __init__(self, cur: Any, write: bool) -> None:
        self.cur = cur
        self.write = write


class PostgresJournal(KeyStore):
    """A write-ahead journal of submissions in a PostgreSQL database (psycopg 3).

    Safe to share between threads (one connection under a lock) and between processes and
    machines (row locks; each process opens its own). After ``os.fork`` the child connects
    anew on first use.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname[?options]`` (libpq URI).
        lease: Seconds a reservation's lease lasts without renewal (default 30, or
            ``$NANOBANANA_JOURNAL_LEASE``). A worker killed while sending leaves its key
            uncertain once this has passed.
        connect_timeout: Seconds to wait for the server (default 10).

    Raises:
        JournalError: psycopg is not installed; the server is unreachable or refuses the
            credentials; the tables hold another journal format or schema version. Raised
            here, before any request.

    """

    def __init__(
        self, url: str, *, lease: float | None = None, connect_timeout: float = 10.0
    ) -> None:
        if not is_postgres_url(url):
            raise JournalError(f"a PostgreSQL journal needs a postgresql:// URL, got {url!r}")
        self._init_machine(lease)
        self.url = url
        self.path = _display(url)
        self._connect_timeout = connect_timeout
        self._conn: Any = None
        self._conn_pid = 0
        self._owner_id = ""
        self._offset = 0.0  # server clock minus ours (s)
        self._db_lock = threading.RLock()
        with self._db_lock:
            self._connect()
        self._location = f"postgres:{self.path}:{self._schema_name}"

    def __repr__(self) -> str:
        return f"PostgresJournal({self.path!r})"

    def reopen(self) -> PostgresJournal:
        """A new :class:`PostgresJournal` on the same database, with the same options."""
        return PostgresJournal(self.url, lease=self.lease, connect_timeout=self._connect_timeout)

    # -- connection -------------------------------------------------------------------------

    def _psycopg(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise JournalError(
                "a postgresql:// journal needs psycopg 3: pip install "
                "'langchain-nanobanana[postgres]'",
                path=self.path,
            ) from None
        return psycopg

    def _connect(self) -> Any:
        psycopg = self._psycopg()
        if self._conn is not None and self._conn_pid != os.getpid():
            _KEEP_INHERITED.append(self._conn)  # closing it would end the parent's session
            self._conn = None
        try:
            conn = psycopg.connect(
                self.url, connect_timeout=max(1, round(self._connect_timeout)), autocommit=True
            )
            conn.execute("SET synchronous_commit = off")
        except psycopg.Error as exc:
            raise JournalError(
                f"cannot connect to the journal database {self.path}: "
                f"{str(exc).strip() or type(exc).__name__}. Nothing was sent; check the URL, "
                f"that the server runs and that the user may log in",
                path=self.path,
            ) from None
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        if self._conn_pid != os.getpid() or not self._owner_id:
            self._owner_id = uuid.uuid4().hex  # one owner per journal object and process
        self._conn, self._conn_pid = conn, os.getpid()
        return conn

    def _prepare(self, conn: Any) -> None:
        psycopg = self._psycopg()
        try:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_ENTRIES,))
                for statement in _SCHEMA:
                    cur.execute(statement)
                cur.execute(
                    f"INSERT INTO {_META} (name, value) VALUES ('format', %s), "  # noqa: S608
                    "('schema_version', %s) ON CONFLICT (name) DO NOTHING",
                    (_FORMAT, str(SCHEMA_VERSION)),
                )
                cur.execute(f"SELECT name, value FROM {_META}")  # noqa: S608
                meta = dict(cur.fetchall())
                cur.execute("SELECT extract(epoch from clock_timestamp()), current_schema()")
                server_now, schema = cur.fetchone()
        except psycopg.Error as exc:
            raise self._wrap(exc) from None
        self._offset = float(server_now) - time.time()
        self._schema_name = str(schema)
        if meta.get("format") != _FORMAT:
            raise self._error(
                f"{self.path} table {_META} is not a Nano Banana journal's "
                f"(format {meta.get('format')!r}); it was left untouched"
            )
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise self._error(
                f"journal {self.path} was written with schema version "
                f"{meta.get('schema_version')}; this langchain-nanobanana reads version "
                f"{SCHEMA_VERSION}. Nothing was sent. Use the version that wrote it"
            )

    def _wrap(self, exc: Exception) -> JournalError:
        text = str(exc).strip() or type(exc).__name__
        return self._error(
            f"journal database {self.path} failed: {text}. Keep the database (it records "
            f"which keys were paid for); fix the server and run again"
        )

    def _now(self) -> float:
        return time.time() + self._offset

    @contextlib.contextmanager
    def _transaction_cm(self, write: bool, durable: bool) -> Iterator[_Tx]:
        psycopg = self._psycopg()
        with self._db_lock:
            if self._closed:
                raise self._error(f"journal {self.path} is closed")
            if self._conn is None or self._conn_pid != os.getpid() or self._conn.broken:
                self._connect()
            try:
                with self._conn.transaction():
                    cur = self._conn.cursor()
                    if durable and write:  # the session default is off (module docstring)
                        cur.execute("SET LOCAL synchronous_commit = on")
                    yield _Tx(cur, write)
            except psycopg.Error as exc:
                raise self._wrap(exc) from None

    # -- primitives ---------------------------------------------------------------------------

    def _transaction(
        self, *, write: bool = True, durable: bool = True
    ) -> contextlib.AbstractContextManager[Any]:
        return self._transaction_cm(write, durable)

    def _select(self, tx: Any, scope: str, key: str) -> Entry | None:
        lock = " FOR UPDATE" if tx.write else ""
        tx.cur.execute(f"{_SELECT} WHERE scope = %s AND key = %s{lock}", (scope, key))
        row = tx.cur.fetchone()
        return None if row is None else entry_from_row(row, self.path)

    def _select_where(self, tx: Any, filters: Mapping[str, str]) -> list[Entry]:
        sql = _SELECT
        if filters:
            sql += " WHERE " + " AND ".join(f"{column} = %s" for column in filters)
        tx.cur.execute(sql + " ORDER BY created_at, key", list(filters.values()))
        return [entry_from_row(row, self.path) for row in tx.cur.fetchall()]

    def _select_keys(self, tx: Any, scope: str) -> list[tuple[str, str, str, str | None]]:
        tx.cur.execute(
            f"SELECT key, identity, state, task_id FROM {_ENTRIES} WHERE scope = %s",  # noqa: S608
            (scope,),
        )
        return [(str(k), str(i), str(s), t) for k, i, s, t in tx.cur.fetchall()]

    def _values(self, entry: Entry) -> list[Any]:
        return entry_values(entry, COLUMNS)

    def _insert(self, tx: Any, entry: Entry) -> bool:
        marks = ", ".join("%s" for _ in COLUMNS)
        tx.cur.execute(
            f"INSERT INTO {_ENTRIES} ({', '.join(COLUMNS)}) VALUES ({marks}) "  # noqa: S608
            "ON CONFLICT (scope, key) DO NOTHING",
            self._values(entry),
        )
        return bool(tx.cur.rowcount == 1)

    def _update(self, tx: Any, entry: Entry, old: Entry | None = None) -> None:
        columns = changed_columns(entry, old, COLUMNS[2:])
        if not columns:
            return
        sets = ", ".join(f"{column} = %s" for column in columns)
        tx.cur.execute(
            f"UPDATE {_ENTRIES} SET {sets} WHERE scope = %s AND key = %s",  # noqa: S608
            [*entry_values(entry, columns), entry.scope, entry.key],
        )

    def _delete(self, tx: Any, scope: str, key: str) -> None:
        tx.cur.execute(f"DELETE FROM {_ENTRIES} WHERE scope = %s AND key = %s", (scope, key))  # noqa: S608

    def _key_of_task(self, tx: Any, scope: str, task_id: str) -> str | None:
        tx.cur.execute(
            f"SELECT key FROM {_ENTRIES} WHERE scope = %s AND task_id = %s LIMIT 1",  # noqa: S608
            (scope, task_id),
        )
        row = tx.cur.fetchone()
        return None if row is None else str(row[0])

    def _other_scope(self, tx: Any, scope: str) -> str | None:
        tx.cur.execute(
            f"SELECT scope FROM {_ENTRIES} WHERE scope <> %s LIMIT 1",  # noqa: S608
            (scope,),
        )
        row = tx.cur.fetchone()
        return None if row is None else str(row[0])

    def _owner(self) -> dict[str, Any]:
        return {
            "owner_pid": os.getpid(),
            "owner_start": _own_start(),
            "owner_host": _HOST,
            "owner_id": self._owner_id,
            "lease_until": self._now() + self.lease,
        }

    def _alive(self, entry: Entry) -> bool | None:
        if not entry.owner_id or not entry.owner_pid:
            return False  # interrupted, or settled by hand
        if entry.owner_id == self._owner_id and self._conn_pid == os.getpid():
            return self._held_identity(entry.scope, entry.key) is not None
        return entry.lease_until is not None and entry.lease_until > self._now()

    def _renew(self, keys: Sequence[tuple[str, str]]) -> None:
        with self._transaction(durable=False) as tx:
            tx.cur.execute(
                f"UPDATE {_ENTRIES} SET lease_until = %s WHERE owner_id = %s "  # noqa: S608
                "AND state = 'reserved'",
                (self._now() + self.lease, self._owner_id),
            )

    def _close_store(self) -> None:
        with self._db_lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None
