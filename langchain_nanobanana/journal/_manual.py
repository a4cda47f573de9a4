"""Reading a journal and settling keys by hand (``nanobanana journal list | resolve | forget``),
and binding a journal to one API host: the operations that are not the submission protocol.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from langchain_nanobanana.journal._base import StoreBase
from langchain_nanobanana.journal._common import _STATES, OwnerStatus
from langchain_nanobanana.journal._records import Entry, check_text
from langchain_nanobanana.journal.errors import JournalHostMismatchError

__all__ = ["ManualStore"]

logger = logging.getLogger(__name__)


class ManualStore(StoreBase):
    """Reading entries, settling keys by hand, and the host binding, over a store's primitives."""

    # -- binding to one API host --------------------------------------------------------------

    def bind(self, scope: str) -> None:
        """Refuse a journal that holds keys for another API host (normalised base URL).

        A client calls it when it opens its journal, before any request: a re-run against
        another host must not pay again silently for keys the journal recorded elsewhere.

        Raises:
            JournalHostMismatchError: Entries of another scope exist (names both hosts).
            JournalError: The store is unreadable.

        """
        check_text("scope", scope)
        with self._transaction(write=False) as tx:
            other = self._other_scope(tx, scope)
        if other is not None:
            raise JournalHostMismatchError(path=self.path, bound=other, scope=scope)

    # -- reading and settling by hand ---------------------------------------------------------

    def get(self, scope: str, key: str) -> Entry | None:
        """The key's entry, or ``None``.

        Raises:
            JournalError: The store is unreadable or locked.

        """
        check_text("scope", scope)
        check_text("key", key)
        with self._transaction(write=False) as tx:
            return self._select(tx, scope, key)

    def keys(self, scope: str) -> dict[str, tuple[str, str, str | None]]:
        """Every key of ``scope`` with its ``(identity, state, task_id)``, read in one
        transaction without decoding results (a batch checks thousands of rows at once).

        Raises:
            JournalError: The store is unreadable or locked.

        """
        check_text("scope", scope)
        with self._transaction(write=False) as tx:
            rows = self._select_keys(tx, scope)
        return {key: (identity, state, task_id) for key, identity, state, task_id in rows}

    def key_of_task(self, scope: str, task_id: str) -> str | None:
        """The key that records ``task_id`` in ``scope``, or ``None`` (how a client finds the
        key of a task it waits on without keeping a map of its own).

        Raises:
            JournalError: The store is unreadable or locked.

        """
        with self._transaction(write=False) as tx:
            return self._key_of_task(tx, scope, task_id)

    def entries(
        self, *, scope: str | None = None, state: str | None = None, key: str | None = None
    ) -> list[Entry]:
        """Entries, oldest first, optionally filtered by scope, stored state and key.

        Raises:
            JournalError: Unknown state, or the store is unreadable or locked.

        """
        if state is not None and state not in _STATES:
            raise self._error(f"state must be one of {', '.join(_STATES)}, got {state!r}")
        filters = {
            n: v for n, v in (("scope", scope), ("state", state), ("key", key)) if v is not None
        }
        with self._transaction(write=False) as tx:
            return self._select_where(tx, filters)

    def status(self, entry: Entry) -> OwnerStatus:
        """How a person should read an entry (``nanobanana journal list``): ``"in_flight"``
        (reserved by an owner that is alive or cannot be checked), ``"uncertain"`` (reserved,
        owner dead, lease expired or interrupted: maybe billed), or the stored state.
        """
        if entry.state != "reserved":
            return entry.state
        return "uncertain" if self._alive(entry) is False else "in_flight"

    def resolve(self, scope: str, key: str, task_id: str, trace_id: str | None = None) -> None:
        """Settle a key by hand with the task a person found (state ``submitted``): the next
        call with the key polls ``task_id``.

        Raises:
            JournalError: No such key; the key is in flight with a live owner; it already
                succeeded or failed (forget it first); or the store is unreadable or locked.

        """
        check_text("scope", scope)
        check_text("key", key)
        check_text("task_id", task_id)
        with self._transaction() as tx:
            entry = self._select(tx, scope, key)
            if entry is None:
                raise self._error(f"no journal entry for key {key!r} (scope {scope})")
            if entry.state in ("succeeded", "failed"):
                raise self._error(
                    f"journal key {key!r} already {entry.state} (task {entry.task_id}); "
                    f"forget it first to record another task"
                )
            if entry.state == "reserved" and self._alive(entry) is True:
                raise self._error(
                    f"journal key {key!r} is being submitted right now by pid "
                    f"{entry.owner_pid}; wait for it instead of resolving by hand"
                )
            self._update(
                tx,
                dataclasses.replace(
                    entry,
                    state="submitted",
                    task_id=task_id,
                    trace_id=trace_id,
                    owner_pid=None,
                    owner_start=None,
                    owner_host=None,
                    owner_id=None,
                    lease_until=None,
                    updated_at=time.time(),
                ),
            )
        logger.info("journal key %r resolved by hand to task %s", key, task_id)

    def forget(self, scope: str, key: str, *, force: bool = False) -> bool:
        """Delete a key's entry, so the next call with the key submits (and pays) again.

        Args:
            scope, key: The key.
            force: Also forget a key whose task is recorded (``submitted``): that task was paid
                for and its id is then only in the WARNING this logs. Default ``False``.

        Returns:
            ``True`` when an entry was deleted, ``False`` when there was none.

        Raises:
            JournalError: The key is in flight with a live owner (a racing caller would pay
                twice); the key is ``submitted`` and ``force`` is false (its paid task would be
                dropped); or the store is unreadable or locked.

        """
        check_text("scope", scope)
        check_text("key", key)
        with self._transaction() as tx:
            entry = self._select(tx, scope, key)
            if entry is None:
                return False
            if entry.state == "reserved" and self._alive(entry) is True:
                raise self._error(
                    f"journal key {key!r} is being submitted right now by pid "
                    f"{entry.owner_pid}; wait for it instead of forgetting it"
                )
            if entry.state == "submitted" and not force:
                raise self._error(
                    f"journal key {key!r} records task {entry.task_id}, which was paid for and "
                    f"may still finish; forgetting it would submit (and pay) again. Wait for it "
                    f"(the next run polls it), or pass --force (force=True) to drop it anyway"
                )
            self._delete(tx, scope, key)
        level = logging.WARNING if entry.task_id else logging.INFO
        logger.log(
            level, "journal key %r forgotten (state %s, task %s)", key, entry.state, entry.task_id
        )
        return True
