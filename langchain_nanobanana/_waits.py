"""The waiters of the client's poller (:mod:`langchain_nanobanana._poller`): a callback
:class:`Watch` (no thread of the caller's: the command line's batch uses it), and the sync and
async iterators every other wait goes through. They differ only in how they take the next message;
each keeps its own deadline, and leaving early logs the pending task_ids at WARNING and records
them on the exception.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_nanobanana._core.polling import Outcome, WaitState
from langchain_nanobanana._poller import Mailbox, Message, Poller
from langchain_nanobanana.errors import attach_task_ids

__all__ = ["Watch", "aiter_outcomes", "iter_outcomes"]

logger = logging.getLogger(__name__)


class Watch:
    """Wait for ``task_ids`` without a thread of the caller's: ``on_outcome(task_id, outcome)``
    is called on the poller's thread (outside its lock) as each task ends — an ``ImageResult``,
    or the error it ended with (``TaskFailedError``, an API error, ``TaskTimeoutError`` at this
    watch's own deadline of ``max_wait`` seconds) — once per task; ``on_progress(payload)``
    after each round. Callbacks must be quick (hand work to an executor); an exception in one is
    logged and does not stop the poller. Built unsubscribed: :meth:`start` subscribes it.

    Attributes:
        state: The wait's :class:`WaitState` (pending tasks, outcomes, own deadline).

    """

    def __init__(
        self,
        poller: Poller,
        task_ids: list[str],
        max_wait: float,
        on_outcome: Callable[[str, Outcome], Any],
        on_progress: Callable[[dict[str, Any]], Any] | None,
    ) -> None:
        self.poller = poller
        self.state = WaitState(task_ids, max_wait)
        self._on_outcome = on_outcome
        self._on_progress = on_progress
        #: Only a watch with ``on_progress`` gets the per-round messages.
        self.wants_rounds = on_progress is not None
        self._lock = threading.Lock()  # one thread hands out this watch's outcomes at a time
        self.box = Mailbox(self.state.task_ids, watch=self)

    def start(self) -> Watch:
        """Subscribe to the poller and return ``self``.

        Raises:
            NanoBananaError: The poller (its client) is closed.

        """
        self.poller.subscribe(self.box)
        return self

    @property
    def done(self) -> bool:
        """Whether every task has had its ``on_outcome`` call (or the watch was cancelled)."""
        return not self.state.waiting()

    def cancel(self) -> None:
        """Stop watching: no more callbacks (the tasks keep running and stay billed)."""
        with self._lock:
            self.state = WaitState([], 0.0)
        self.poller.unsubscribe(self.box)

    def drain(self) -> None:
        """Handle every message delivered so far (the poller's thread calls this)."""
        with self._lock:
            while True:
                try:
                    kind, first, second = self.box.sync_queue.get_nowait()
                except queue.Empty:
                    break
                if kind == "done":
                    if self.state.finish(first, second):
                        self._emit(first, second)
                elif kind == "round":
                    payload = self.state.progress(first)
                    if self._on_progress is not None:
                        self._call(self._on_progress, payload)
                else:  # closed: every pending task ends with the poller's error
                    for task_id in self.state.pending():
                        self.state.finish(task_id, second)
                        self._emit(task_id, second)
        if not self.state.waiting():
            self.poller.unsubscribe(self.box)

    def expire(self) -> None:
        """The deadline passed: every pending task ends with a ``TaskTimeoutError``."""
        with self._lock:
            pending = self.state.pending()
            outcomes = list(self.state.time_out(self.poller.last_errors(pending)))
            for task_id, outcome in outcomes:
                self._emit(task_id, outcome)
        self.poller.unsubscribe(self.box)

    def _emit(self, task_id: str, outcome: Outcome) -> None:
        self._call(self._on_outcome, task_id, outcome)

    @staticmethod
    def _call(callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a callback's bug must not stop the rounds of everyone else
            logger.exception("A poller callback raised; the poller goes on")


class _Waiter:
    """One wait's bookkeeping, shared by the sync and async drivers (which differ only in how
    they take the next message): subscribe, turn messages into outcomes, time out, and on
    leaving early log the pending task_ids and put them on the exception.
    """

    def __init__(
        self,
        poller: Poller,
        task_ids: list[str],
        max_wait: float,
        loop: Any,
        since: float | None = None,
    ) -> None:
        self.poller = poller
        self.state = WaitState(task_ids, max_wait)
        self.box = Mailbox(self.state.task_ids, loop, since=since)
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
    since: float | None = None,
) -> Iterator[tuple[str, Outcome]]:
    """Yield ``(task_id, outcome)`` as each task ends (sync waiter; the poller thread reads).

    The deadline is this waiter's own (checked at least once a second); at it, every task still
    pending yields a ``TaskTimeoutError``. Leaving early (``break``, an exception,
    ``KeyboardInterrupt``) unsubscribes, logs the pending task_ids at WARNING and records them on
    the exception (``task_ids``). ``since``: ``time.monotonic()`` of the earliest submission
    (the first round is due ``poll_interval`` after it; default: now).
    """
    waiter = _Waiter(poller, task_ids, max_wait, None, since)
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
    since: float | None = None,
) -> AsyncIterator[tuple[str, Outcome]]:
    """Async :func:`iter_outcomes`: messages reach this event loop with
    ``call_soon_threadsafe``; ``on_progress`` may be a coroutine function. Cancellation and
    ``asyncio.wait_for`` timeouts record the pending task_ids on the ``CancelledError``.
    """
    waiter = _Waiter(poller, task_ids, max_wait, asyncio.get_running_loop(), since)
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
