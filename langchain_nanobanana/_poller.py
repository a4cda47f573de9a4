"""One poller per client: a background thread owns the pending tasks and reads them in shared
``retrieve_batch`` rounds for every waiter (threads, asyncio tasks, ``batch``,
``batch_as_completed``, parallel tool calls, ``RunnableParallel`` branches, LangGraph ``Send``).

Waiters subscribe a :class:`Mailbox`: the poller drops ``("done", task_id, outcome)``,
``("round", statuses)`` and ``("closed", None, error)`` messages into it from its thread. A sync
waiter blocks on a ``queue.Queue``; an async waiter's messages are handed to its event loop with
``loop.call_soon_threadsafe`` (any number of loops). Each waiter keeps its own deadline, so a slow
answer on the poller's thread never stretches anyone's ``max_wait``; one waiter leaving never
stops the round for the others; :meth:`Poller.close` ends every remaining wait with an error that
names its task_ids. The thread exits when nothing is pending and starts again on demand.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from langchain_nanobanana._core.polling import (
    RoundTimer,
    WaitState,
    outcome_of,
    read_again,
)
from langchain_nanobanana.errors import NanoBananaError, on_read
from langchain_nanobanana.results import TaskRecord

__all__ = ["CallbackWaiter", "Mailbox", "Poller", "ReadRound"]

logger = logging.getLogger(__name__)

#: Every live poller, so that a forked child can give each a thread of its own.
_POLLERS: weakref.WeakSet[Poller] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for poller in list(_POLLERS):
        poller._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

#: Reads one round: task_ids -> {task_id: record or the error of that id}; raises for the round.
ReadRound = Callable[[list[str]], dict[str, "TaskRecord | BaseException"]]
Message = tuple[str, Any, Any]


class CallbackWaiter(Protocol):
    """What the poller needs of a callback waiter (``_waits.Watch``)."""

    state: WaitState
    #: Whether it wants the per-round progress messages (it has an ``on_progress``).
    wants_rounds: bool

    def drain(self) -> None:
        """Handle the messages delivered so far."""

    def expire(self) -> None:
        """End the wait at its deadline."""


class Mailbox:
    """Where the poller delivers one waiter's messages.

    Args:
        task_ids: The tasks the waiter waits for.
        loop: The waiter's event loop (async waiters); ``None`` for a sync waiter.

    """

    def __init__(
        self,
        task_ids: list[str],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        watch: CallbackWaiter | None = None,
        since: float | None = None,
    ) -> None:
        self.task_ids = list(dict.fromkeys(task_ids))
        #: ``time.monotonic()`` of the earliest submission of these tasks (``None``: now): the
        #: first round is due ``poll_interval`` after it.
        self.since = since
        self.loop = loop
        #: A callback waiter: the poller's thread hands it the messages (after a round, outside
        #: the poller's lock) instead of a waiting thread taking them from ``sync_queue``. Held
        #: weakly: the watch holds this box, and a cycle would outlive the wait until the next
        #: full garbage collection (thousands of finished watches in a long batch).
        self._watch = weakref.ref(watch) if watch is not None else None
        self.sync_queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.async_queue: asyncio.Queue[Message] | None = asyncio.Queue() if loop else None

    @property
    def watch(self) -> CallbackWaiter | None:
        """The callback waiter of this box, while it lives (``None`` for other waiters)."""
        return self._watch() if self._watch is not None else None

    def put(self, message: Message) -> bool:
        """Deliver ``message`` (from any thread); ``False`` when the waiter's loop is gone."""
        if self.loop is None:
            self.sync_queue.put(message)
            return True
        assert self.async_queue is not None
        try:
            self.loop.call_soon_threadsafe(self.async_queue.put_nowait, message)
        except RuntimeError:  # the loop is closed: nobody waits any more
            return False
        return True


class Poller:
    """The pending set and the rounds of one client.

    Args:
        read_round: Reads the given task ids (the client chunks them into ``retrieve_batch``).
        interval: First wait between rounds, seconds (``poll_interval``).
        max_interval: Largest wait, seconds (``max_poll_interval``).
        idle_exit: Seconds with nothing pending before the thread exits (default 2.0).

    """

    def __init__(
        self, read_round: ReadRound, *, interval: float, max_interval: float, idle_exit: float = 2.0
    ) -> None:
        self._read_round = read_round
        self._timer = RoundTimer(interval, max_interval)
        self._idle_exit = idle_exit
        self._cond = threading.Condition()
        self._watchers: dict[str, list[Mailbox]] = {}
        self._last_errors: dict[str, BaseException] = {}
        #: task_id -> (error class, how many reads in a row failed with it)
        self._failed_reads: dict[str, tuple[type[BaseException] | None, int]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._watches: dict[int, CallbackWaiter] = {}  # id(watch) -> callback waiter
        #: (deadline, id(watch)) of every callback waiter, earliest first (stale entries of
        #: watches that already ended are skipped when they come up)
        self._deadlines: list[tuple[float, int]] = []
        self.rounds = 0
        _POLLERS.add(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child the parent's poller thread does not exist and its lock may be held:
        start afresh (the parent's waiters are not in this process), so the child's own waits
        are polled by a thread of its own.
        """
        self._cond = threading.Condition()
        self._thread = None
        self._watchers.clear()
        self._last_errors.clear()
        self._failed_reads.clear()
        self._watches.clear()
        self._deadlines.clear()

    # -- waiters -------------------------------------------------------------------------------
    def subscribe(self, box: Mailbox) -> None:
        """Start watching ``box.task_ids`` for ``box``; the next round is due within
        ``poll_interval``.

        Raises:
            NanoBananaError: The poller (its client) is closed.

        """
        with self._cond:
            if self._closed:
                raise NanoBananaError(
                    "The client is closed; nothing can be polled", task_ids=box.task_ids
                )
            for task_id in box.task_ids:
                self._watchers.setdefault(task_id, []).append(box)
            watch = box.watch
            if watch is not None:
                self._watches[id(watch)] = watch
                heapq.heappush(self._deadlines, (watch.state.deadline, id(watch)))
            self._timer.joined(time.monotonic(), box.since)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nanobanana-poller", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def poll_now(self) -> None:
        """Make the next round due now (when any task is watched); the schedule goes on from
        that round.
        """
        with self._cond:
            if self._watchers:
                self._timer.ask_now(time.monotonic())
                self._cond.notify_all()

    def unsubscribe(self, box: Mailbox) -> None:
        """Stop watching for ``box`` (its tasks stay watched for other waiters)."""
        with self._cond:
            self._drop(box)

    def last_errors(self, task_ids: list[str]) -> dict[str, BaseException]:
        """The last failed read of each of ``task_ids`` that had one (for timeout causes)."""
        with self._cond:
            return {t: self._last_errors[t] for t in task_ids if t in self._last_errors}

    def pending(self) -> list[str]:
        """Every task some waiter waits for."""
        with self._cond:
            return list(self._watchers)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (nothing can be polled any more)."""
        return self._closed

    def close(self) -> None:
        """End every wait with an error naming its tasks (they keep running); stop the thread."""
        with self._cond:
            self._closed = True
            boxes = {id(b): b for bs in self._watchers.values() for b in bs}.values()
            self._watchers.clear()
            watches = list(self._watches.values())
            self._watches.clear()
            self._cond.notify_all()
        for box in boxes:
            error = NanoBananaError(
                "The client was closed while waiting; the tasks keep running",
                task_id=box.task_ids[0] if len(box.task_ids) == 1 else None,
                task_ids=box.task_ids,
            )
            box.put(("closed", None, error))
        for watch in watches:
            watch.drain()

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                idle_since = time.monotonic()
                expired: list[CallbackWaiter] = []
                while not self._closed:
                    now = time.monotonic()
                    expired = self._expired(now)
                    if expired or (self._watchers and now >= self._timer.due):
                        break
                    if not self._watchers:
                        self._timer.idle()
                        if now - idle_since >= self._idle_exit:
                            self._thread = None
                            return
                        self._cond.wait(self._idle_exit)
                    else:
                        due = self._timer.due
                        if self._deadlines:
                            due = min(due, self._deadlines[0][0])
                        self._cond.wait(max(0.0, due - now))
                if self._closed:
                    self._thread = None
                    return
                started = time.monotonic()
                ids = list(self._watchers) if started >= self._timer.due else []
            for watch in expired:  # outside the lock: callbacks may subscribe or cancel
                watch.expire()
            if not ids:
                continue
            try:
                found = self._read_round(ids)
                failed: BaseException | None = None
            except Exception as exc:  # delivered to the waiters below, never lost
                found, failed = {}, exc
            reached = self._deliver(ids, found, failed, started)
            for watch in reached:  # only the watches this round reached
                watch.drain()

    def _deliver(
        self,
        ids: list[str],
        found: dict[str, TaskRecord | BaseException],
        failed: BaseException | None,
        started: float,
    ) -> list[CallbackWaiter]:
        progress = False
        reached: dict[int, CallbackWaiter] = {}
        with self._cond:
            self.rounds += 1
            statuses: dict[str, str] = {}
            done: list[tuple[str, Any]] = []
            for task_id in ids:
                item = found.get(task_id, failed)
                if isinstance(item, TaskRecord):
                    self._failed_reads.pop(task_id, None)
                    statuses[task_id] = item.status
                    if item.result is not None:
                        done.append((task_id, outcome_of(item.result)))
                elif item is not None:
                    if isinstance(item, NanoBananaError):
                        on_read(item)  # a read's error: its facts say whether to read again
                    kind, seen = self._failed_reads.get(task_id, (None, 0))
                    attempts = seen + 1 if kind is type(item) else 1  # the same answer in a row
                    self._failed_reads[task_id] = (type(item), attempts)
                    if read_again(item, attempts):
                        self._last_errors[task_id] = item
                    else:  # the error's facts end this wait (authentication, unreadable x3...)
                        done.append((task_id, item))
                statuses.setdefault(task_id, "pending")
            boxes: dict[int, Mailbox] = {}
            for task_id in ids:
                for box in self._watchers.get(task_id, []):
                    boxes[id(box)] = box
            for box in boxes.values():  # the round first: its event shows the tasks it ended
                watch = box.watch
                if watch is not None and not watch.wants_rounds:
                    continue  # a callback waiter without on_progress: no round message
                own = {t: statuses[t] for t in box.task_ids if t in statuses}
                if not box.put(("round", own, None)):
                    self._drop(box)
                elif watch is not None:
                    reached[id(watch)] = watch
            for task_id, outcome in done:
                progress = True
                for box in self._watchers.pop(task_id, []):
                    box.put(("done", task_id, outcome))
                    watch = box.watch
                    if watch is not None:
                        reached[id(watch)] = watch
                self._last_errors.pop(task_id, None)
                self._failed_reads.pop(task_id, None)
            self._timer.after_round(time.monotonic(), progress=progress, started=started)
        logger.debug(
            "poll round %d: %d task(s) read, %d finished%s",
            self.rounds,
            len(ids),
            len(done),
            f", read failed: {failed}" if failed else "",
        )
        return list(reached.values())

    def _expired(self, now: float) -> list[CallbackWaiter]:
        """Callback waiters whose deadline passed (under the lock; O(log n) per deadline)."""
        expired: list[CallbackWaiter] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, key = heapq.heappop(self._deadlines)
            watch = self._watches.get(key)
            if watch is not None and watch.state.remaining(now) <= 0 and watch not in expired:
                expired.append(watch)
        return expired

    def _drop(self, box: Mailbox) -> None:
        watch = box.watch
        if watch is not None:
            self._watches.pop(id(watch), None)
        for task_id in box.task_ids:
            boxes = self._watchers.get(task_id)
            if boxes and box in boxes:
                boxes.remove(box)
                if not boxes:
                    del self._watchers[task_id]
                    self._last_errors.pop(task_id, None)
                    self._failed_reads.pop(task_id, None)
