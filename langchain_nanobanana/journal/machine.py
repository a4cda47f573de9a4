"""The state machine of every key, written once over a store's few primitives.

:class:`KeyStore` holds the rules of the package docstring's two tables (what ``begin`` decides
for each state; which call records which outcome). A store — SQLite (:mod:`.store`) or
PostgreSQL (:mod:`.postgres`) — supplies only transactions, reading and writing one row, and how
to tell whether a reservation's owner is still alive (a pid on one machine, a lease anywhere).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_nanobanana.errors import TaskFailedError
from langchain_nanobanana.journal._base import DEFAULT_LEASE
from langchain_nanobanana.journal._changes import (
    Change,
    change_of,
    failed_change,
    submitted_change,
    succeeded_change,
)
from langchain_nanobanana.journal._common import _WAIT_STEP
from langchain_nanobanana.journal._manual import ManualStore
from langchain_nanobanana.journal._records import Decision, Entry, check_text
from langchain_nanobanana.journal.errors import (
    IdempotencyKeyBusyError,
    IdempotencyKeyMismatchError,
    JournalError,
    UncertainKeyError,
)

__all__ = ["DEFAULT_LEASE", "KeyStore"]

logger = logging.getLogger(__name__)


class KeyStore(ManualStore):
    """A journal: the key states and the protocol, over a store's primitives.

    Subclasses implement the ``_``-prefixed abstract methods of ``StoreBase``; every
    public method is written here once. Every method either completes its transaction or
    raises :class:`JournalError`; none sends anything to the API.
    """

    # -- the protocol -------------------------------------------------------------------------

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

        Atomic across threads, processes and (PostgreSQL) machines: of several callers racing
        on one key exactly one gets ``"submit"``; the others wait for its outcome. Blocks while
        a live owner holds the key (call it from a worker thread in async code).

        Args:
            scope: The key's scope: the client's normalised base URL (non-empty str).
            key: The idempotency key (non-empty str).
            identity: :func:`request_identity` of the request body.
            resubmit_uncertain: Take over a key whose owner died or was interrupted in flight
                (may pay twice) instead of raising :class:`UncertainKeyError`.
            retry_failed: Take over a key whose task failed instead of raising
                :class:`~langchain_nanobanana.errors.TaskFailedError` again.
            wait: Seconds to wait for a live owner's outcome (float >= 0; looked at every
                50 ms). ``0`` raises :class:`IdempotencyKeyBusyError` at once when a live owner
                holds the key (a worker of a fleet skips to another key).

        Returns:
            A :class:`Decision`: ``"submit"`` (reserved for this caller: record one outcome),
            ``"poll"`` (``decision.task_id``) or ``"done"`` (``decision.result``).

        Raises:
            IdempotencyKeyMismatchError: The key names another request (checked first).
            UncertainKeyError: The key's submission may have been billed (owner dead, lease
                expired, or interrupted) and ``resubmit_uncertain`` is false.
            TaskFailedError: The key's task failed and ``retry_failed`` is false.
            IdempotencyKeyBusyError: A live owner recorded no outcome within ``wait`` seconds.
            JournalError: Bad arguments, or the store is unreadable, corrupted or locked.

        """
        check_text("scope", scope)
        check_text("key", key)
        check_text("identity", identity)
        if not (isinstance(wait, (int, float)) and wait >= 0 and not math.isnan(wait)):
            raise JournalError(f"wait must be a number of seconds >= 0, got {wait!r}")
        started = time.monotonic()
        announced = False
        while True:
            reserved_here = False
            try:
                with self._transaction() as tx:
                    entry = self._select(tx, scope, key)
                    decision: Decision | None
                    if entry is None:
                        fresh = self._reservation(scope, key, identity, None)
                        decision = Decision("submit", fresh) if self._insert(tx, fresh) else None
                    else:
                        decision = self._decide(
                            tx, entry, identity, resubmit_uncertain, retry_failed
                        )
                    if decision is not None and decision.kind == "submit":
                        self._hold(scope, key, identity)
                        reserved_here = True
            except BaseException:
                if reserved_here:
                    self._unhold(scope, key)
                raise
            if decision is not None:
                logger.debug("journal key %r: %s", key, decision.kind)
                return decision
            waited = time.monotonic() - started
            if entry is not None and waited >= wait:
                raise IdempotencyKeyBusyError(
                    scope=scope,
                    key=key,
                    owner_pid=entry.owner_pid,
                    owner_host=entry.owner_host,
                    waited=waited,
                    path=self.path,
                )
            if entry is not None and not announced:
                announced = True
                logger.info(
                    "journal key %r is being submitted by pid %s on %s; waiting up to %.0f s",
                    key,
                    entry.owner_pid,
                    entry.owner_host,
                    wait,
                )
            time.sleep(min(_WAIT_STEP, max(0.0, wait - waited)))

    def _reservation(self, scope: str, key: str, identity: str, created: float | None) -> Entry:
        now = time.time()
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
            created_at=created or now,
            updated_at=now,
            **self._owner(),
        )

    def _decide(
        self, tx: Any, entry: Entry, identity: str, resubmit_uncertain: bool, retry_failed: bool
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
                logger.info("journal key %r: task %s failed earlier", entry.key, entry.task_id)
                raise TaskFailedError(
                    entry.error_message or "the task failed",
                    task_id=entry.task_id,
                    trace_id=entry.trace_id,
                    code=entry.error_code,
                )
            logger.info("journal key %r: retry_failed=True: submitting again", entry.key)
            return self._take_over(tx, entry)
        if self._alive(entry) is not False:
            return None
        if not resubmit_uncertain:
            reason = self._why_dead(entry)
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
            "submission (pid %s on %s) may have been billed",
            entry.key,
            entry.owner_pid,
            entry.owner_host,
        )
        return self._take_over(tx, entry)

    def _why_dead(self, entry: Entry) -> str:
        if not entry.owner_pid:
            return "its submission was interrupted"
        leased = entry.owner_id is not None or entry.owner_host != self._owner()["owner_host"]
        if leased and entry.lease_until is not None and entry.lease_until < time.time():
            return (
                f"the lease of its owner (pid {entry.owner_pid} on {entry.owner_host}) expired "
                f"without renewal"
            )
        if entry.owner_pid == os.getpid():
            return f"its caller in this process (pid {entry.owner_pid}) stopped"
        return f"the process that sent it (pid {entry.owner_pid}) ended"

    def _take_over(self, tx: Any, entry: Entry) -> Decision:
        fresh = self._reservation(entry.scope, entry.key, entry.identity, entry.created_at)
        self._update(tx, fresh, entry)
        return Decision("submit", fresh)

    def _settle(self, scope: str, key: str, change: Change) -> None:
        """Record an outcome under ``key`` (one transaction; see :meth:`_settle_in`)."""
        check_text("scope", scope)
        check_text("key", key)
        try:
            with self._transaction(durable=False) as tx:
                self._settle_in(tx, scope, key, change)
        finally:
            self._unhold(scope, key)

    def _settle_in(self, tx: Any, scope: str, key: str, change: Change) -> None:
        """Record an outcome in ``tx`` (``change.values``: the columns to set). Keeps a
        different task id already recorded (logged at WARNING: never lost silently); re-creates
        a row forgotten while this process held it; writes only the columns that change.
        """
        what, found, values = change.what, change.found, dict(change.values)
        entry = self._select(tx, scope, key)
        if entry is None:
            identity = self._held_identity(scope, key)
            if identity is None:
                logger.warning(
                    "journal key %r is not in %s: %s of task %s not recorded",
                    key,
                    self.path,
                    what,
                    found,
                )
                return
            entry = self._reservation(scope, key, identity, None)
            self._insert(tx, entry)
        elif entry.task_id and found and entry.task_id != found:
            logger.warning(
                "journal key %r already records task %s; %s of task %s not recorded "
                "(both may have been billed)",
                key,
                entry.task_id,
                what,
                found,
            )
            return
        if values.get("state") == "submitted" and entry.state != "reserved":
            values["state"] = entry.state  # a later state is kept
        if values.get("trace_id") is None:
            values["trace_id"] = entry.trace_id
        values["task_id"] = values.get("task_id") or entry.task_id
        fresh = dataclasses.replace(
            entry, **values, owner_id=None, lease_until=None, updated_at=time.time()
        )
        self._update(tx, fresh, entry)
        logger.debug("journal key %r: %s (task %s)", key, what, found)

    def record(
        self, scope: str, task_id: str, outcome: object, *, key: str | None = None
    ) -> str | None:
        """Record how task ``task_id`` stands or ended, in one transaction.

        Args:
            scope: The key's scope (the client's normalised base URL).
            task_id: The task (non-empty str).
            outcome: An ``ImageResult`` (``status`` ``"pending"`` records ``submitted``,
                ``"succeeded"`` its JSON without ``raw``, ``"failed"`` its error) or the
                exception a wait ended with (``TaskFailedError`` records ``failed``; anything
                else, a timeout or a read error, records nothing: the key stays ``submitted``).
            key: The key when the caller knows it; ``None``: the key that records
                ``task_id`` (found in the same transaction; a task no key names records
                nothing).

        Returns:
            The key recorded, or ``None`` when nothing was recorded.

        Raises:
            JournalError: Bad arguments, or the store is unreadable, full or locked.

        """
        change = change_of(task_id, outcome)
        if change is None:
            return None
        check_text("scope", scope)
        check_text("task_id", task_id)
        found = key
        try:
            with self._transaction(durable=False) as tx:
                if found is None:
                    found = self._key_of_task(tx, scope, task_id)
                    if found is None:
                        return None
                check_text("key", found)
                self._settle_in(tx, scope, found, change)
        finally:
            if found is not None:
                self._unhold(scope, found)
        return found

    def submitted(self, scope: str, key: str, task_id: str, trace_id: str | None = None) -> None:
        """Record that the submission was accepted as task ``task_id`` (state ``submitted``).

        Call as soon as the answer with the id arrives, before polling. Idempotent for the same
        ``task_id``; a later state (``succeeded``/``failed``) is kept.

        Raises:
            JournalError: Bad arguments, or the store is unreadable, full or locked.

        """
        self._settle(scope, key, submitted_change(task_id, trace_id))

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
                ``task_id`` and ``trace_id`` are recorded too; lone surrogates are kept as JSON
                escapes). Keep it small: leave out echoed request bodies (data URIs).
            files: Paths (str or path-like) of the images downloaded for it.

        Raises:
            JournalError: Bad arguments (``result`` not JSON), or the store is unreadable,
                full or locked.

        """
        self._settle(scope, key, succeeded_change(result, files, self.path))

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
        before a task existed (use :meth:`release`) nor for a poll that timed out.

        Raises:
            JournalError: Bad arguments, or the store is unreadable, full or locked.

        """
        self._settle(scope, key, failed_change(code, message, task_id, trace_id))

    def release(self, scope: str, key: str) -> None:
        """Free a reservation whose submission surely never created a task (an error whose
        ``billed`` fact is ``"no"``): the next call with the key submits. Only this caller's own
        reservation is deleted; a key that already has a task is kept (logged at WARNING).

        Raises:
            JournalError: Bad arguments, or the store is unreadable or locked.

        """
        check_text("scope", scope)
        check_text("key", key)
        try:
            with self._transaction() as tx:
                entry = self._select(tx, scope, key)
                if entry is not None and entry.state == "reserved" and self._is_mine(entry):
                    self._delete(tx, scope, key)
                elif entry is not None:
                    logger.warning(
                        "journal key %r not released: it is %s (task %s, pid %s)",
                        key,
                        entry.state,
                        entry.task_id,
                        entry.owner_pid,
                    )
        finally:
            self._unhold(scope, key)
        logger.debug("journal key %r released", key)

    def interrupted(self, scope: str, key: str) -> None:
        """Mark this caller's reservation as interrupted before an answer (an error whose
        ``billed`` fact is ``"maybe"``, Ctrl-C, cancellation): the key becomes *uncertain* for
        the next caller. A key that already has a task, or another owner's, is left as it is.

        Raises:
            JournalError: Bad arguments, or the store is unreadable or locked.

        """
        check_text("scope", scope)
        check_text("key", key)
        try:
            with self._transaction(durable=False) as tx:
                entry = self._select(tx, scope, key)
                if entry is not None and entry.state == "reserved" and self._is_mine(entry):
                    self._update(
                        tx,
                        dataclasses.replace(
                            entry,
                            owner_pid=0,
                            owner_id=None,
                            lease_until=None,
                            updated_at=time.time(),
                        ),
                    )
                    logger.warning(
                        "journal key %r: submission interrupted before an answer; it may have "
                        "been billed, the key is now uncertain",
                        key,
                    )
        finally:
            self._unhold(scope, key)

    def _is_mine(self, entry: Entry) -> bool:
        owner = self._owner()
        if entry.owner_id is not None or owner["owner_id"] is not None:
            return bool(entry.owner_id == owner["owner_id"])
        return bool(
            entry.owner_pid == owner["owner_pid"]
            and entry.owner_host == owner["owner_host"]
            and (
                entry.owner_start is None
                or owner["owner_start"] is None
                or entry.owner_start == owner["owner_start"]
            )
        )
