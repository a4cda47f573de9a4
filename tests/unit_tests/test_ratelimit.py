"""The rate gate's decisions on a fake clock (behaviour, not durations): one pause per episode,
submissions in flight halve and grow, a learned and a configured rate, one INFO per change.
"""

from __future__ import annotations

import logging
import math

import pytest

from langchain_nanobanana import NanoBananaClient
from langchain_nanobanana._ratelimit import MARGIN, Gate, check_rate_limit


class Clock:
    """Monotonic seconds that only move when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def gate(clock: Clock, **kw: object) -> Gate:
    return Gate(clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def limit_of(g: Gate) -> int | None:
    """The submissions limit (a function: mypy must not narrow the property)."""
    return g.concurrency_limit


def changes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "langchain_nanobanana._ratelimit"]


def test_n_senders_share_one_pause_and_concurrency_halves(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    g = gate(clock)
    tickets = [g.acquire(billable=True) for _ in range(8)]  # 8 submissions in flight
    assert limit_of(g) is None and not clock.slept
    for ticket in tickets:  # all eight answered 429 (they were in flight together)
        g.release(ticket, status=429, retry_after=2.0)
    assert g.concurrency_limit == 4  # halved once, not eight times
    assert g.paused_until == pytest.approx(clock.now + 2.0)  # one pause, not extended
    assert len(changes(caplog)) == 1 and "pauses 2.00 s" in changes(caplog)[0]
    g.acquire(billable=True)  # the next sender waits the pause out
    assert sum(clock.slept) == pytest.approx(2.0)


def test_concurrency_grows_by_one_per_quiet_window_then_is_lifted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    g = gate(clock)
    tickets = [g.acquire(billable=True) for _ in range(6)]
    g.release(tickets[0], status=429, retry_after=0.0)
    assert g.concurrency_limit == 3
    for ticket in tickets[1:]:
        g.release(ticket, status=200, retry_after=None)
    caplog.set_level(logging.INFO)
    seen: list[int | None] = []
    for _ in range(10):
        clock.now += 1.0  # one quiet window
        g.release(g.acquire(billable=True), status=200, retry_after=None)
        seen.append(g.concurrency_limit)
    assert seen[:2] == [4, 5]
    assert seen[-1] is None  # +1 per window, lifted at the peak (6)
    concurrency = [m for m in changes(caplog) if "submissions in flight" in m]
    assert len(concurrency) == 3  # 4, 5, unbounded: one INFO per change, not per request


def test_a_full_concurrency_limit_holds_submissions_not_reads() -> None:
    clock = Clock()
    g = gate(clock)
    first, second = g.acquire(billable=True), g.acquire(billable=True)
    g.release(first, status=429, retry_after=0.0)
    assert g.concurrency_limit == 1  # one in flight (second) already fills it
    read = g.acquire(billable=False)  # a read passes at once
    g.release(read, status=200, retry_after=None)
    g.release(second, status=200, retry_after=None)
    g.release(g.acquire(billable=True), status=200, retry_after=None)


def test_a_429_without_retry_after_backs_off_exponentially() -> None:
    clock = Clock()
    g = gate(clock, backoff_factor=0.5)
    pauses = []
    for _ in range(3):
        ticket = g.acquire(billable=False)  # waits the previous pause out
        start = clock.now
        g.release(ticket, status=429, retry_after=None)
        pauses.append(g.paused_until - start)
    assert 0.5 <= pauses[0] <= 0.75 and 1.0 <= pauses[1] <= 1.25 and 2.0 <= pauses[2] <= 2.25
    assert g.release(g.acquire(billable=False), status=429, retry_after=3600) == pytest.approx(60)


def test_the_rate_is_learned_from_what_the_server_accepted() -> None:
    clock = Clock()
    g = gate(clock)
    assert g.rate is None  # no pace until the first 429
    for _ in range(40):  # 40 accepted within the last second
        g.release(g.acquire(billable=False), status=200, retry_after=None)
        clock.now += 0.02
    g.release(g.acquire(billable=False), status=429, retry_after=1.0)
    start = clock.now
    ticket = g.acquire(billable=False)  # waits the pause out, then learns
    assert g.rate == pytest.approx(40 * MARGIN)
    g.release(ticket, status=200, retry_after=None)
    # After the pause, the bucket spaces requests 1/rate apart (capacity 1: no burst).
    for _ in range(9):
        g.release(g.acquire(billable=False), status=200, retry_after=None)
    assert clock.now - start == pytest.approx(1.0 + 9 / (40 * MARGIN))


def test_requests_sent_after_the_refused_one_but_accepted_count_too() -> None:
    """In a burst, requests sent after the refused one can reach the server first (it refused
    the late one because they filled its window): they count, up to the 429's answer.
    """
    clock = Clock()
    g = gate(clock)
    early = [g.acquire(billable=False) for _ in range(45)]  # 45 tickets now
    clock.now += 0.01
    refused = g.acquire(billable=False)
    clock.now += 0.005
    late = [g.acquire(billable=False) for _ in range(5)]  # sent after it, arrived before it
    clock.now += 0.01
    for ticket in early + late:
        g.release(ticket, status=200, retry_after=None)
    g.release(refused, status=429, retry_after=1.0)
    clock.now += 0.5
    after = g.acquire(billable=False)  # waits the pause out, then learns
    assert g.rate == pytest.approx(50 * MARGIN)  # not 45
    g.release(after, status=200, retry_after=None)


def test_a_learned_rate_probes_upwards_rarely() -> None:
    clock = Clock()
    g = gate(clock)
    for _ in range(20):
        g.release(g.acquire(billable=False), status=200, retry_after=None)
        clock.now += 0.05
    g.release(g.acquire(billable=False), status=429, retry_after=1.0)
    g.release(g.acquire(billable=False), status=200, retry_after=None)  # learns after the pause
    learned = g.rate
    assert learned is not None
    clock.now += 20.0  # quiet, but less than 30 pauses' worth
    g.release(g.acquire(billable=False), status=200, retry_after=None)
    assert g.rate == learned
    clock.now += 11.0
    g.release(g.acquire(billable=False), status=200, retry_after=None)
    assert g.rate == pytest.approx(learned + 1.0)


def test_a_configured_rate_paces_and_is_never_exceeded() -> None:
    clock = Clock()
    g = gate(clock, rate_limit=50)
    assert g.rate == pytest.approx(50 * MARGIN)
    start = clock.now
    for _ in range(101):
        g.release(g.acquire(billable=True), status=200, retry_after=None)
    assert clock.now - start == pytest.approx(100 / (50 * MARGIN))
    for _ in range(200):
        clock.now += 1.0
        g.release(g.acquire(billable=False), status=200, retry_after=None)
    assert g.rate == pytest.approx(50 * MARGIN)  # never probes above the account's limit


@pytest.mark.parametrize("bad", [0, -1, 0.0, math.nan, math.inf, -math.inf, True, "10"])
def test_bad_rate_limits_are_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        check_rate_limit(bad)
    with pytest.raises(ValueError, match="rate_limit"):
        NanoBananaClient("t", base_url="http://127.0.0.1:9", rate_limit=bad)  # type: ignore[arg-type]


def test_good_rate_limits() -> None:
    assert check_rate_limit(None) is None and check_rate_limit(2) == 2.0
    with NanoBananaClient("t", base_url="http://127.0.0.1:9", rate_limit=0.5) as client:
        assert client.rate_limit == 0.5
