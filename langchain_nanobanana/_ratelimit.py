"""Rate control per client: one :class:`Gate` shared by every sender of one client.

Every API request of a client (submissions and task reads, from threads, asyncio tasks run in
the executor, tool calls, ``batch``, command-line rows) passes the client's one gate:

* **one pause on a 429.** The first 429 of an *episode* (an answer to a request sent after the
  last adaptation) pauses every sender until ``Retry-After`` (seconds or HTTP-date, capped),
  else an exponential backoff with jitter. Answers to requests that were already in flight
  when the episode began join that pause: they neither extend it nor adapt again. So N senders
  that hit one limit wait out one pause together and come back spread out by the token bucket,
  instead of each sleeping on its own and coming back at once (a 429 storm);
* **submissions in flight adapt.** On a 429 the number of submissions allowed in flight halves
  (from the current limit, else from the number in flight); it grows by one after each
  ``window`` (1 s) without a 429, and once back at the peak it had (which never exceeds the
  caller's ``max_concurrency`` / ``--concurrency``: they bound their own senders) the limit is
  lifted. Reads are never held by this limit (they are what lets tasks finish);
* **a token bucket of API requests per second** (submissions and reads together), capacity 1
  (virtual scheduling: each sender reserves the next free slot, ``1 / rate`` seconds after the
  previous one), so a 1-second sliding-window limit on the server is never crossed by a burst:
  at most ``R * MARGIN + 1`` requests in any second. With ``rate_limit=R`` (the account's
  limit, known) the bucket runs at ``R * MARGIN`` (3 % below R: the jitter between our clock and
  the server's window). Without it the bucket is off until the first 429; then it is
  *learned*: set to the number of our requests the server accepted that were sent in the
  second before the refused one or after it, up to its 429 (its limit, as seen) times
  ``MARGIN``. A learned rate grows by 1
  request/s per ``PROBE_FACTOR`` pauses' worth of quiet time (30 s after a 1 s pause), because
  a probe that fails costs every sender one pause (the cost of probing stays near 1/30). A
  learned rate never exceeds a configured one.

Each adaptation is logged at INFO once (never per request).

Why 429 left urllib3's ``Retry``: its ``Retry-After`` handling sleeps in the thread that got
the 429, so every sender sleeps on its own and all come back together, and nothing can adapt
the rate or the concurrency for the others. urllib3 keeps what concerns one request only:
connection failures, and the read-side 5xx.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MARGIN", "Gate", "Ticket", "check_rate_limit"]

logger = logging.getLogger(__name__)

MARGIN = 0.97
"""The bucket runs this much below the known or learned limit: requests reserved 1/rate apart
reach the server with a jitter of a few milliseconds (threads wake up late on a busy machine),
and a 1-second window counts arrivals."""
PROBE_FACTOR = 30.0
"""Quiet time, in pauses, before a learned rate grows by one request per second."""


def check_rate_limit(value: object, *, name: str = "rate_limit") -> float | None:
    """Validate a requests-per-second limit: ``None`` or a finite number > 0 (not a bool).

    Raises:
        ValueError: Naming ``name`` and the bad value.

    """
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type,operator]
        raise ValueError(
            f"{name}={value!r} is not allowed; use API requests per second, a finite number > 0 "
            "(or None for no fixed limit)"
        )
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Ticket:
    """One request let through: when, in which episode, and whether it is a submission."""

    sent: float
    episode: int
    billable: bool


class Gate:
    """The client's one gate (thread-safe; blocking waits, run in threads by async callers).

    Args:
        rate_limit: API requests per second allowed by the account, when known (> 0), else None.
        backoff_factor: Seconds; the pause after a 429 without ``Retry-After`` is
            ``backoff_factor * 2**(n-1)`` plus up to half that of jitter (n-th episode in a row).
        retry_after_cap: Seconds; the longest pause a ``Retry-After`` can ask.
        window: Seconds without a 429 after which the submission limit grows by one.
        clock: Monotonic seconds (tests pass a fake one); sleep: how to wait (seconds).

    """

    def __init__(
        self,
        rate_limit: float | None = None,
        *,
        backoff_factor: float = 0.5,
        retry_after_cap: float = 60.0,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate_limit = check_rate_limit(rate_limit)
        self.backoff_factor = backoff_factor
        self.retry_after_cap = retry_after_cap
        self.window = window
        self._clock, self._sleep = clock, sleep
        self._cond = threading.Condition()
        self._rate: float | None = self.rate_limit * MARGIN if self.rate_limit else None
        self._next_slot = 0.0  # virtual scheduling of the bucket (capacity 1)
        self._pause_until = 0.0
        self._pause = 0.0  # length of the last pause, seconds
        self._episode = 0
        self._in_a_row = 0  # 429 episodes without a success between them
        self._limit: int | None = None  # submissions allowed in flight (None: no limit)
        self._ceiling = 0
        self._in_flight = 0
        self._peak = 0
        self._accepted: deque[tuple[float, float]] = deque()  # (sent, answered), last 2 s
        self._learn_from: float | None = None  # send time of a refused request, to learn from
        self._learn_until = 0.0  # when the 429 that refused it was answered
        self._last_change = clock()
        self._last_rate_change = clock()

    # -- what callers and tests can read ----------------------------------------------------
    @property
    def rate(self) -> float | None:
        """Requests per second the bucket lets through now (None: no bucket)."""
        return self._rate

    @property
    def concurrency_limit(self) -> int | None:
        """Submissions allowed in flight now (None: only the caller's own bound)."""
        return self._limit

    @property
    def paused_until(self) -> float:
        """Clock time until which every sender waits (in the past when not paused)."""
        return self._pause_until

    def reset_after_fork(self) -> None:
        """A forked child starts with a fresh lock (the parent's may have been held)."""
        self._cond = threading.Condition()
        self._in_flight = 0

    # -- the two calls around each request -------------------------------------------------
    def acquire(self, *, billable: bool) -> Ticket:
        """Wait for the pause to end, a submission slot (``billable``) and a token; return the
        ticket to hand to :meth:`release`.
        """
        while True:
            reserved = False
            with self._cond:
                now = self._clock()
                if self._learn_from is not None and now >= self._pause_until:
                    self._learn()
                if now < self._pause_until:
                    wait = self._pause_until - now
                elif billable and self._limit is not None and self._in_flight >= self._limit:
                    self._cond.wait(0.25)  # a release notifies; the timeout re-checks the pause
                    continue
                else:
                    slot = max(now, self._next_slot)
                    if self._rate:
                        self._next_slot = slot + 1.0 / self._rate
                    self._admit(billable)  # the slot is held while waiting for the token
                    if slot <= now:
                        return Ticket(now, self._episode, billable)
                    wait, reserved = slot - now, True
            try:
                self._sleep(wait)
            except BaseException:  # Ctrl-C while waiting: give the held slot back
                if reserved and billable:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()
                raise
            if reserved:
                with self._cond:
                    now = self._clock()
                    if now >= self._pause_until:
                        return Ticket(now, self._episode, billable)
                    if billable:  # a pause began while we waited for the token: queue again
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _admit(self, billable: bool) -> None:
        if billable:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def release(self, ticket: Ticket, *, status: int | None, retry_after: float | None) -> float:
        """Record the outcome of ``ticket``'s request (``status`` None: no answer).

        Returns:
            Seconds until the pause ends (0 when not paused): a 429's sender simply acquires
            again, which waits them out.

        """
        with self._cond:
            now = self._clock()
            if ticket.billable:
                self._in_flight = max(0, self._in_flight - 1)
                self._cond.notify_all()
            if status == 429:
                if ticket.episode == self._episode:
                    self._adapt(now, retry_after, ticket.sent)
            elif status is not None:
                self._accepted.append((ticket.sent, now))
                self._in_a_row = 0 if now >= self._pause_until else self._in_a_row
                self._grow(now)
            while self._learn_from is None and self._accepted and self._accepted[0][1] <= now - 2:
                self._accepted.popleft()
            return max(0.0, self._pause_until - now)

    # -- adaptation (under the lock) ----------------------------------------------------------
    def _adapt(self, now: float, retry_after: float | None, sent: float) -> None:
        """The first 429 of an episode: one pause for all, half the submissions in flight."""
        self._episode += 1
        self._in_a_row += 1
        if retry_after is not None:
            pause = min(max(0.0, retry_after), self.retry_after_cap)
        else:
            base = self.backoff_factor * 2 ** (self._in_a_row - 1)
            jitter = random.random() * self.backoff_factor / 2  # noqa: S311 - jitter, not crypto
            pause = min(self.retry_after_cap, base + jitter)
        self._pause = pause
        self._pause_until = max(self._pause_until, now + pause)
        self._next_slot = max(self._next_slot, self._pause_until)
        self._learn_from = sent if self._learn_from is None else max(self._learn_from, sent)
        self._learn_until = now
        self._ceiling = max(self._ceiling, self._peak, self._in_flight + 1)
        old_limit = self._limit
        self._limit = max(1, (self._limit or max(self._peak, 1)) // 2)
        self._peak = self._in_flight
        self._last_change = self._last_rate_change = now + pause
        logger.info(
            "429 from the API: every sender pauses %.2f s; submissions in flight %s -> %d",
            pause,
            old_limit if old_limit is not None else "unbounded",
            self._limit,
        )

    def _learn(self) -> None:
        """After a pause: the rate the server allows, from what it accepted from us.

        The server's window held its limit when the refused request arrived, so count the
        requests it accepted from us that were sent in the second before that one was sent, or
        after it but before its 429 came back (by send time, as the server counts arrivals:
        requests sent after the refused one may reach the server first; in the first burst
        they did, 45-47 counted for a limit of 50 without them). Counted once the pause is
        over, so that accepted requests whose answers were still on their way back at the 429
        (a 429 is answered at once, a submission takes longer) are counted too.
        """
        sent, self._learn_from = self._learn_from, None
        assert sent is not None
        until = max(sent, self._learn_until)
        observed = sum(1 for t, _ in self._accepted if sent - 1.0 < t <= until)
        if observed < 2:
            return
        old_rate = self._rate
        learned = observed * MARGIN
        if self.rate_limit:
            learned = min(learned, self.rate_limit * MARGIN)
        self._rate = min(self._rate, learned) if self._rate else learned
        if self._rate != old_rate:
            logger.info(
                "Rate learned from the 429 (%d accepted in the second around it): %s -> %.1f "
                "requests/s",
                observed,
                f"{old_rate:.1f}" if old_rate else "unbounded",
                self._rate,
            )

    def _grow(self, now: float) -> None:
        if self._limit is not None and now - self._last_change >= self.window:
            self._last_change = now
            if self._limit + 1 >= self._ceiling:
                self._limit = None
                logger.info("No 429 for %.1f s: submissions in flight unbounded again", self.window)
            else:
                self._limit += 1
                logger.info(
                    "No 429 for %.1f s: submissions in flight -> %d", self.window, self._limit
                )
        probe = max(self.window, PROBE_FACTOR * self._pause)
        learned = self._rate is not None and (
            self.rate_limit is None or self._rate < self.rate_limit * MARGIN
        )
        if learned and now - self._last_rate_change >= probe:
            self._last_rate_change = now
            assert self._rate is not None
            top = self.rate_limit * MARGIN if self.rate_limit else math.inf
            self._rate = min(top, self._rate + 1.0)
            logger.info("No 429 for %.0f s: rate -> %.1f requests/s", probe, self._rate)
