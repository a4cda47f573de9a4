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
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_nanobanana._core.polling import (
    Outcome,
    RoundTimer,
    WaitState,
    outcome_of,
    read_again,
)
from langchain_nanobanana.errors import NanoBananaError, attach_task_ids
from langchain_nanobanana.results import TaskRecord

__all__ = ["Mailbox", "Poller", "ReadRound", "aiter_outcomes", "iter_outcomes"]

logger = logging.getLogger(__name__)

#: Reads one round: task_ids -> {task_id: record or the error of that id}; raises for the round.
ReadRound = Callable[[list[str]], dict[str, "TaskRecord | BaseException"]]
Message = tuple[str, Any, Any]


class Mailbox:
    """Where the poller delivers one waiter's messages.

    Args:
        task_ids: The tasks the waiter waits for.
        loop: The waiter's event loop (async waiters); ``None`` for a sync waiter.

    """

    def __init__(self, task_ids: list[str], loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.task_ids = list(dict.fromkeys(task_ids))
        self.loop = loop
        self.sync_queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.async_queue: asyncio.Queue[Message] | None = asyncio.Queue() if loop else None

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
        self._failed_reads: dict[str, int] = {}  # task_id -> failed reads in a row
        self._thread: threading.Thread | None = None
        self._closed = False
        self.rounds = 0

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
            self._timer.joined(time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nanobanana-poller", daemon=True
                )
                self._thread.start()
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

    def close(self) -> None:
        """End every wait with an error naming its tasks (they keep running); stop the thread."""
        with self._cond:
            self._closed = True
            boxes = {id(b): b for bs in self._watchers.values() for b in bs}.values()
            self._watchers.clear()
            self._cond.notify_all()
        for box in boxes:
            error = NanoBananaError(
                "The client was closed while waiting; the tasks keep running",
                task_id=box.task_ids[0] if len(box.task_ids) == 1 else None,
                task_ids=box.task_ids,
            )
            box.put(("closed", None, error))

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                idle_since = time.monotonic()
                while not self._closed:
                    now = time.monotonic()
                    if self._watchers and now >= self._timer.due:
                        break
                    if not self._watchers:
                        self._timer.idle()
                        if now - idle_since >= self._idle_exit:
                            self._thread = None
                            return
                        self._cond.wait(self._idle_exit)
                    else:
                        self._cond.wait(max(0.0, self._timer.due - now))
                if self._closed:
                    self._thread = None
                    return
                ids = list(self._watchers)
            try:
                found = self._read_round(ids)
                failed: BaseException | None = None
            except Exception as exc:  # delivered to the waiters below, never lost
                found, failed = {}, exc
            self._deliver(ids, found, failed)

    def _deliver(
        self,
        ids: list[str],
        found: dict[str, TaskRecord | BaseException],
        failed: BaseException | None,
    ) -> None:
        progress = False
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
                    attempts = self._failed_reads.get(task_id, 0) + 1
                    self._failed_reads[task_id] = attempts
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
                own = {t: statuses[t] for t in box.task_ids if t in statuses}
                if not box.put(("round", own, None)):
                    self._drop(box)
            for task_id, outcome in done:
                progress = True
                for box in self._watchers.pop(task_id, []):
                    box.put(("done", task_id, outcome))
                self._last_errors.pop(task_id, None)
                self._failed_reads.pop(task_id, None)
            self._timer.after_round(time.monotonic(), progress=progress)
        logger.debug(
            "poll round %d: %d task(s) read, %d finished%s",
            self.rounds,
            len(ids),
            len(done),
            f", read failed: {failed}" if failed else "",
        )

    def _drop(self, box: Mailbox) -> None:
        for task_id in box.task_ids:
            boxes = self._watchers.get(task_id)
            if boxes and box in boxes:
                boxes.remove(box)
                if not boxes:
                    del self._watchers[task_id]
                    self._last_errors.pop(task_id, None)
                    self._failed_reads.pop(task_id, None)


class _Waiter:
    """One wait's bookkeeping, shared by the sync and async drivers (which differ only in how
    they take the next message): subscribe, turn messages into outcomes, time out, and on
    leaving early log the pending task_ids and put them on the exception.
    """

    def __init__(self, poller: Poller, task_ids: list[str], max_wait: float, loop: Any) -> None:
        self.poller = poller
        self.state = WaitState(task_ids, max_wait)
        self.box = Mailbox(self.state.task_ids, loop)
        poller.subscribe(self.box)

    def timeout(self) -> float | None:
        """Seconds to wait for the next message (<= 1), or ``None`` when the deadline passed."""
        remaining = self.state.remaining()
        return None if remaining <= 0 else min(remaining, 1.0)

    def expire(self) -> list[tuple[str, Outcome]]:
        """Every pending task as a ``TaskTimeoutError`` (last read error as its cause)."""
        return list(self.state.time_out(self.poller.last_errors(self.state.pending())))

    def handle(self, message: Message) -> tuple[list[tuple[str, Outcome]], Any]:
        """The outcomes ``message`` completes and, after a round, the progress payload;
        ``("closed", ...)`` raises its error.
        """
        kind, first, second = message
        if kind == "done":
            return ([(first, second)] if self.state.finish(first, second) else []), None
        if kind == "round":
            return [], self.state.progress(first)
        raise second

    def leave(self, exc: BaseException | None) -> None:
        """Unsubscribe; pending tasks are logged at WARNING and recorded on ``exc``."""
        self.poller.unsubscribe(self.box)
        pending = self.state.pending()
        if not pending:
            return
        if exc is not None and not isinstance(exc, GeneratorExit):
            attach_task_ids(exc, pending)
        logger.warning(
            "Stopped waiting for %d task(s) that still run and are billed: %s "
            "(resume with poll_task(task_id))",
            len(pending),
            ", ".join(pending),
        )


def iter_outcomes(
    poller: Poller,
    task_ids: list[str],
    *,
    max_wait: float,
    on_progress: Callable[[dict[str, Any]], Any] | None = None,
) -> Iterator[tuple[str, Outcome]]:
    """Yield ``(task_id, outcome)`` as each task ends (sync waiter; the poller thread reads).

    The deadline is this waiter's own (checked at least once a second); at it, every task still
    pending yields a ``TaskTimeoutError``. Leaving early (``break``, an exception,
    ``KeyboardInterrupt``) unsubscribes, logs the pending task_ids at WARNING and records them on
    the exception (``task_ids``).
    """
    waiter = _Waiter(poller, task_ids, max_wait, None)
    failure: BaseException | None = None
    try:
        while waiter.state.waiting():
            timeout = waiter.timeout()
            if timeout is None:
                yield from waiter.expire()
                break
            try:
                message = waiter.box.sync_queue.get(timeout=timeout)
            except queue.Empty:
                continue
            ready, payload = waiter.handle(message)
            if payload is not None and on_progress is not None:
                on_progress(payload)
            yield from ready
    except BaseException as exc:
        failure = exc
        raise
    finally:
        waiter.leave(failure)


async def aiter_outcomes(
    poller: Poller,
    task_ids: list[str],
    *,
    max_wait: float,
    on_progress: Callable[[dict[str, Any]], Any] | None = None,
) -> AsyncIterator[tuple[str, Outcome]]:
    """Async :func:`iter_outcomes`: messages reach this event loop with
    ``call_soon_threadsafe``; ``on_progress`` may be a coroutine function. Cancellation and
    ``asyncio.wait_for`` timeouts record the pending task_ids on the ``CancelledError``.
    """
    waiter = _Waiter(poller, task_ids, max_wait, asyncio.get_running_loop())
    assert waiter.box.async_queue is not None
    failure: BaseException | None = None
    try:
        while waiter.state.waiting():
            timeout = waiter.timeout()
            ready: list[tuple[str, Outcome]] = []
            if timeout is None:
                ready = waiter.expire()
            else:
                try:
                    message = await asyncio.wait_for(waiter.box.async_queue.get(), timeout)
                except asyncio.TimeoutError:
                    continue
                ready, payload = waiter.handle(message)
                if payload is not None and on_progress is not None:
                    maybe = on_progress(payload)
                    if asyncio.iscoroutine(maybe):
                        await maybe
            for item in ready:
                yield item
    except BaseException as exc:
        failure = exc
        raise
    finally:
        waiter.leave(failure)
