"""The polling schedule shared by the sync and async loops of ``NanoBananaClient``.

Source: the vendor SDK polls every 3 s for up to 600 s; we start faster (``poll_interval``,
default 1 s) and back off x1.5 per round up to ``max_poll_interval`` (default 10 s), so a short
task is seen soon and a long one costs few requests. When a round sees some tasks finish while
others are still running, the wait restarts at ``poll_interval``: tasks of one batch finish close
together, so the rest are seen within about one ``poll_interval`` of finishing instead of up to one
grown interval later (measured in ``benchmarks/run.py``: 64 tasks of 1-3 s, ``poll_interval=1``:
the batch ended 1.85 s after its last task without the restart).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from langchain_nanobanana.errors import NanoBananaAPIError, NanoBananaError, TaskTimeoutError
from langchain_nanobanana.results import TaskRecord

__all__ = ["GROWTH", "PollSchedule", "PollState", "chunked", "parse_batch"]

#: Factor by which the wait between polls grows each round.
GROWTH = 1.5

T = TypeVar("T")


class PollSchedule:
    """Delays between polls: ``interval``, ``interval*1.5``, ... capped at ``max_interval``, never
    past the ``max_wait`` deadline.

    Args:
        interval: First delay in seconds (>= 0).
        max_interval: Largest delay in seconds.
        max_wait: Budget in seconds, counted from construction (``time.monotonic``).

    """

    def __init__(self, interval: float, max_interval: float, max_wait: float) -> None:
        self._interval = interval
        self._delay = interval
        self._max_interval = max(interval, max_interval)
        self._start = time.monotonic()
        self._deadline = self._start + max_wait

    def elapsed(self) -> float:
        """Seconds since the schedule started."""
        return time.monotonic() - self._start

    def next_delay(self) -> float | None:
        """The next delay in seconds, or ``None`` when the budget is spent (time to give up)."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return None
        delay = min(self._delay, remaining)
        self._delay = min(self._delay * GROWTH, self._max_interval)
        return delay

    def restart(self) -> None:
        """Make the next delay the first one again (call it when a round saw tasks finish)."""
        self._delay = self._interval


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class PollState:
    """Bookkeeping of one polling loop: which ids are still pending and what each yielded.

    ``results`` maps task_id -> ``ImageResult`` or the exception it ended with; ``finish`` turns
    every id still pending into a ``TaskTimeoutError`` (the task keeps running).
    """

    def __init__(self, task_ids: Sequence[str]) -> None:
        self.order = list(task_ids)
        self.results: dict[str, Any] = {}
        self.last_error: NanoBananaError | None = None

    def pending(self) -> list[str]:
        return [t for t in dict.fromkeys(self.order) if t not in self.results]

    def done(self) -> bool:
        return not self.pending()

    def update(self, records: list[TaskRecord], elapsed: float, return_exceptions: bool) -> bool:
        """Record the finished tasks among ``records``; ``True`` when at least one just finished.

        Raises:
            TaskFailedError: A task failed and ``return_exceptions`` is false.

        """
        before = len(self.results)
        for record in records:
            if record.id not in self.results and record.result is not None:
                outcome: Any = record.result
                try:
                    record.result.raise_for_status()
                except NanoBananaError as exc:
                    if not return_exceptions:
                        raise
                    outcome = exc
                self.results[record.id] = outcome
        return len(self.results) > before

    def finish(self, elapsed: float, return_exceptions: bool) -> list[Any]:
        for task_id in self.pending():
            error = TaskTimeoutError(task_id, waited=elapsed)
            if self.last_error is not None:
                error.__cause__ = self.last_error
            if not return_exceptions:
                raise error
            self.results[task_id] = error
        return [self.results[t] for t in self.order]


def parse_batch(data: dict[str, Any]) -> dict[str, TaskRecord]:
    """task_id -> TaskRecord from a ``retrieve_batch`` answer ``{"items": [...], "count"}``.

    Raises:
        NanoBananaAPIError: The answer has no ``items`` list.

    """
    items = data.get("items")
    if not isinstance(items, list):
        raise NanoBananaAPIError(
            f"retrieve_batch answer without an items list: keys {sorted(data)}",
            status_code=200,
            body=data,
        )
    out: dict[str, TaskRecord] = {}
    for item in items:
        if isinstance(item, dict):
            record = TaskRecord.from_api(item)
            out[record.id] = record
    return out
