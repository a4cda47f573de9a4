"""The polling schedule shared by the sync and async loops of ``NanoBananaClient``.

Source: the vendor SDK polls every 3 s for up to 600 s; we start faster (``poll_interval``,
default 1 s) and back off x1.5 per round up to ``max_poll_interval`` (default 10 s), so a short
task is seen soon and a long one costs few requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["GROWTH", "PollSchedule", "chunked"]

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


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
