"""The polling state, without I/O: the round schedule, what each waiter has seen, and which
failed reads are worth another round.

Schedule (vendor SDK: every 3 s up to 600 s; we start faster): the first round comes
``poll_interval`` (default 1 s) after a task joins; the wait grows x1.5 per round up to
``max_poll_interval`` (default 10 s) and restarts at ``poll_interval`` whenever a round sees a task
finish or a new task joins, so tasks that finish close together are all seen within about one
``poll_interval`` (measured in ``benchmarks/run.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from langchain_nanobanana.errors import (
    NanoBananaError,
    TaskTimeoutError,
)
from langchain_nanobanana.results import ImageResult

__all__ = [
    "BATCH_CHUNK",
    "GROWTH",
    "Outcome",
    "RoundTimer",
    "WaitState",
    "chunked",
    "outcome_of",
    "read_again",
]

#: Factor by which the wait between rounds grows.
GROWTH = 1.5
#: ``retrieve_batch`` ids per request (vendor Tasks API guide: a batch lookup; we keep it small).
BATCH_CHUNK = 50

T = TypeVar("T")
#: What a finished wait yields for one task: its result, or the error it ended with.
Outcome = ImageResult | BaseException
Status = Literal["pending", "succeeded", "failed"]


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` of at most ``size`` (>= 1) elements."""
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + max(1, size)])


def read_again(exc: BaseException, attempts: int) -> bool:
    """Whether a wait goes on after its task's read failed with ``exc`` ``attempts`` times in a
    row: the error's facts decide (``retryable``, which a read error gets from
    :func:`~langchain_nanobanana.errors.on_read`; ``read_attempts`` bounds how often an unreadable
    answer is read again). Anything that is not our error ends the wait.
    """
    if not isinstance(exc, NanoBananaError) or not exc.retryable:
        return False
    return exc.read_attempts is None or attempts < exc.read_attempts


def outcome_of(result: ImageResult) -> Outcome:
    """A finished task's outcome: the result, or the :class:`TaskFailedError` it stands for."""
    try:
        return result.raise_for_status()
    except NanoBananaError as exc:
        return exc


class RoundTimer:
    """When the next round is due (``time.monotonic`` seconds).

    Args:
        interval: First wait in seconds (>= 0).
        max_interval: Largest wait in seconds.

    """

    def __init__(self, interval: float, max_interval: float) -> None:
        self.interval = interval
        self.max_interval = max(interval, max_interval)
        self.delay = interval
        self.due = float("inf")
        self.asked: float | None = None  # when a round was asked for at once (poll_now)

    def joined(self, now: float, since: float | None = None) -> None:
        """A task joined: the next round within ``interval`` of ``since`` (when the task was
        submitted, ``time.monotonic`` seconds; default ``now``), at once when that is past;
        the wait restarts.
        """
        start = now if since is None else min(since, now)
        self.delay = self.interval
        self.due = min(self.due, start + self.interval)

    def ask_now(self, now: float) -> None:
        """A round is asked for at once (a batch submitted its last task)."""
        self.asked = now
        self.due = min(self.due, now)

    def after_round(self, now: float, *, progress: bool, started: float | None = None) -> None:
        """Schedule the next round after one that ended at ``now``; ``progress``: a task ended.
        ``started``: when the round took its list of tasks; a round asked for at once after
        that (tasks that joined while it read) is due at once again.
        """
        self.delay = self.interval if progress else min(self.delay * GROWTH, self.max_interval)
        again = self.asked is not None and started is not None and self.asked >= started
        self.due = now if again else now + self.delay
        self.asked = None

    def idle(self) -> None:
        """Nothing pending: no round is due."""
        self.due = float("inf")
        self.delay = self.interval


@dataclass
class WaitState:
    """What one waiter (a ``poll_task``, a ``batch``, an ``as_completed``...) has seen.

    Attributes:
        task_ids: The tasks waited for, in order (duplicates kept once).
        max_wait: Seconds this waiter waits at most, counted from ``started``.
        ended: The tasks that ended (their outcomes go to the caller, never kept here: a
            long wait holds no results).
        statuses: task_id -> last known status (for progress events).
        rounds: Poll rounds seen by this waiter.

    """

    task_ids: list[str]
    max_wait: float
    started: float = field(default_factory=time.monotonic)
    ended: set[str] = field(default_factory=set)
    statuses: dict[str, Status] = field(default_factory=dict)
    rounds: int = 0

    def __post_init__(self) -> None:
        self.task_ids = list(dict.fromkeys(self.task_ids))
        self.statuses = dict.fromkeys(self.task_ids, "pending")
        self.deadline = self.started + self.max_wait
        self._open: dict[str, None] = dict.fromkeys(self.task_ids)  # ordered, O(1) removal

    def pending(self) -> list[str]:
        """Tasks still waited for, in order."""
        return list(self._open)

    def waiting(self) -> bool:
        """Whether any task is still waited for (O(1))."""
        return bool(self._open)

    def remaining(self, now: float | None = None) -> float:
        """Seconds left before the deadline (may be <= 0)."""
        return self.deadline - (time.monotonic() if now is None else now)

    def elapsed(self) -> float:
        """Seconds since the wait started."""
        return time.monotonic() - self.started

    def finish(self, task_id: str, outcome: Outcome) -> bool:
        """Record ``task_id``'s outcome; ``False`` when it was not pending here."""
        if task_id not in self.statuses or task_id in self.ended:
            return False
        self.ended.add(task_id)
        self._open.pop(task_id, None)
        self.statuses[task_id] = "succeeded" if isinstance(outcome, ImageResult) else "failed"
        return True

    def progress(self, statuses: dict[str, str] | None = None) -> Any:
        """The ``nano_banana_progress`` payload after a round that read ``statuses`` (task_id ->
        status; see ``progress.progress_event``). Tasks this waiter already saw end keep their
        final status.
        """
        from langchain_nanobanana._core.progress import progress_event

        self.rounds += 1
        for task_id, status in (statuses or {}).items():
            if task_id in self.statuses and task_id not in self.ended:
                self.statuses[task_id] = status  # type: ignore[assignment]
        return progress_event(self.rounds, self.elapsed(), self.statuses)

    def time_out(self, last_errors: dict[str, BaseException]) -> Iterable[tuple[str, Outcome]]:
        """Every pending task as a :class:`TaskTimeoutError` (the task keeps running), with
        the last failed read, if any, as its ``__cause__``.
        """
        waited = self.elapsed()
        for task_id in self.pending():
            error = TaskTimeoutError(task_id, waited=waited)
            error.__cause__ = last_errors.get(task_id)
            self.finish(task_id, error)
            yield task_id, error
