"""What every journal store supplies (transactions, one row, owner liveness) and what they all
share: this process's held reservations, the lease renewer, closing.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from langchain_nanobanana.journal._owner import _HELD, _HELD_LOCK
from langchain_nanobanana.journal._records import (
    Entry,
)
from langchain_nanobanana.journal.errors import (
    JournalError,
)

__all__ = ["DEFAULT_LEASE", "StoreBase", "lease_seconds"]

_S = TypeVar("_S", bound="StoreBase")

logger = logging.getLogger(__name__)

#: Seconds a reservation's lease lasts unless its owner renews it (it renews every third of
#: that while its submission is in flight). ``NANOBANANA_JOURNAL_LEASE`` overrides it.
DEFAULT_LEASE = 30.0


def lease_seconds(lease: float | None) -> float:
    """``lease``, else ``$NANOBANANA_JOURNAL_LEASE``, else :data:`DEFAULT_LEASE` (seconds > 0).

    Raises:
        JournalError: Not a positive finite number.

    """
    raw: object = lease if lease is not None else os.environ.get("NANOBANANA_JOURNAL_LEASE")
    if raw is None or raw == "":
        return DEFAULT_LEASE
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise JournalError(f"lease must be a positive number of seconds, got {raw!r}")
    return value


class StoreBase(abc.ABC):
    """The primitives a journal store implements, and the plumbing all stores share."""

    path: str  #: Where the journal lives, for messages (a file path, or a URL without password).
    lease: float  #: Seconds of a reservation's lease (see :data:`DEFAULT_LEASE`).
    _location: str  #: Identifies the store in this process's registry of held reservations.

    def _init_machine(self, lease: float | None) -> None:
        self.lease = lease_seconds(lease)
        self._lock = threading.RLock()
        self._closed = False
        self._held: dict[tuple[str, str], int] = {}  # (scope, key) -> pid that reserved it
        self._renewer: threading.Thread | None = None
        self._renewer_pid = 0
        self._stop = threading.Event()

    # -- primitives a store supplies ----------------------------------------------------------

    @abc.abstractmethod
    def _transaction(
        self, *, write: bool = True, durable: bool = True
    ) -> contextlib.AbstractContextManager[Any]:
        """A transaction (rows read in a write transaction stay locked until it ends).

        ``durable=False``: the store may acknowledge the commit before it is on disk (a crash
        of the database server, not of the caller, may lose it). Used only for writes whose
        loss is safe: a lost ``submitted``/``succeeded``/``failed`` leaves the key reserved or
        submitted (uncertain or polled again), never free.
        """

    @abc.abstractmethod
    def _select(self, tx: Any, scope: str, key: str) -> Entry | None:
        """The key's row, or ``None``."""

    @abc.abstractmethod
    def _select_where(self, tx: Any, filters: Mapping[str, str]) -> list[Entry]:
        """Rows whose columns equal ``filters``, oldest first."""

    @abc.abstractmethod
    def _select_keys(self, tx: Any, scope: str) -> list[tuple[str, str, str, str | None]]:
        """``(key, identity, state, task_id)`` of every row of ``scope`` (no result decoded)."""

    @abc.abstractmethod
    def _insert(self, tx: Any, entry: Entry) -> bool:
        """Insert a new row; ``False`` when a row for the key appeared meanwhile."""

    @abc.abstractmethod
    def _update(self, tx: Any, entry: Entry, old: Entry | None = None) -> None:
        """Overwrite the key's row with ``entry`` (only the columns that differ from ``old``,
        the row as read in this transaction, when given).
        """

    @abc.abstractmethod
    def _delete(self, tx: Any, scope: str, key: str) -> None:
        """Delete the key's row."""

    @abc.abstractmethod
    def _key_of_task(self, tx: Any, scope: str, task_id: str) -> str | None:
        """The key whose row records ``task_id`` (``None`` when none)."""

    @abc.abstractmethod
    def _other_scope(self, tx: Any, scope: str) -> str | None:
        """A scope other than ``scope`` that has entries, or ``None``."""

    @abc.abstractmethod
    def _owner(self) -> dict[str, Any]:
        """The owner columns of a reservation made now by this caller."""

    @abc.abstractmethod
    def _alive(self, entry: Entry) -> bool | None:
        """``True`` alive, ``False`` dead or interrupted, ``None`` cannot tell."""

    @abc.abstractmethod
    def _renew(self, keys: Sequence[tuple[str, str]]) -> None:
        """Extend the lease of this caller's reservations ``keys``."""

    @abc.abstractmethod
    def interrupted(self, scope: str, key: str) -> None:
        """Mark this caller's reservation interrupted (the protocol's step; see ``KeyStore``)."""

    @abc.abstractmethod
    def _close_store(self) -> None:
        """Release the store's connection."""

    # -- shared helpers -----------------------------------------------------------------------

    def _error(self, message: str) -> JournalError:
        return JournalError(message, path=self.path)

    def __enter__(self: _S) -> _S:
        return self

    @abc.abstractmethod
    def reopen(self: _S) -> _S:
        """A new journal object on the same store (same path or URL and options)."""

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _hold(self, scope: str, key: str, identity: str) -> None:
        with _HELD_LOCK:
            _HELD[(self._location, scope, key)] = identity
            self._held[(scope, key)] = os.getpid()
        self._start_renewer()

    def _unhold(self, scope: str, key: str) -> str | None:
        with _HELD_LOCK:
            self._held.pop((scope, key), None)
            return _HELD.pop((self._location, scope, key), None)

    def _held_identity(self, scope: str, key: str) -> str | None:
        with _HELD_LOCK:
            return _HELD.get((self._location, scope, key))

    def _mine(self) -> list[tuple[str, str]]:
        pid = os.getpid()
        with _HELD_LOCK:
            return [sk for sk, owner in self._held.items() if owner == pid]

    def _start_renewer(self) -> None:
        pid = os.getpid()
        if self._renewer is not None and self._renewer_pid == pid and self._renewer.is_alive():
            return
        with self._lock:
            if self._renewer is not None and self._renewer_pid == pid and self._renewer.is_alive():
                return
            self._renewer_pid = pid
            self._renewer = threading.Thread(
                target=self._renew_loop, name=f"nanobanana-journal-lease-{pid}", daemon=True
            )
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            keys = self._mine()
            if not keys:
                continue
            try:
                self._renew(keys)
            except JournalError as exc:
                logger.warning(
                    "journal %s: could not renew %d lease(s): %s", self.path, len(keys), exc
                )

    def close(self) -> None:
        """Close the journal. Reservations this object still holds (a caller that got
        ``"submit"`` and recorded no outcome) are marked interrupted first: nobody can record
        their task ids any more, so they become uncertain. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            for scope, key in self._mine():
                try:
                    self.interrupted(scope, key)
                except JournalError as exc:
                    logger.warning("journal %s: could not mark %r interrupted: %s", self, key, exc)
            self._closed = True
            self._stop.set()
            self._close_store()
