"""The client's one poller (``_poller.Poller``): shared ``retrieve_batch`` rounds for every
waiter, each waiter's own deadline, progress payloads, and the client's poll entry points on the
simulator. The pure schedule and bookkeeping (``_core.polling``) are unit-tested in
``tests/unit_tests/test_core_answers.py``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_nanobanana import (
    AuthenticationError,
    ImageResult,
    NanoBananaClient,
    NanoBananaError,
    ServerError,
    TaskFailedError,
    TaskRecord,
    TaskTimeoutError,
)
from langchain_nanobanana._poller import Poller
from langchain_nanobanana._waits import iter_outcomes
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import eventually, fast_client

TASKS = "/nano-banana/tasks"


def done_record(task_id: str) -> TaskRecord:
    response = {
        "success": True,
        "task_id": task_id,
        "data": [{"image_url": f"https://x/{task_id}.png"}],
    }
    return TaskRecord.from_api({"id": task_id, "response": response})


def pending_record(task_id: str) -> TaskRecord:
    return TaskRecord.from_api({"id": task_id})


class FakeReads:
    """A ``read_round`` for a bare ``Poller``: records each round's ids; tasks in ``done`` are
    finished; ``delay`` seconds per round; ``error`` raised for the whole round."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self.done: set[str] = set()
        self.delay = 0.0
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def __call__(self, ids: list[str]) -> dict[str, TaskRecord | BaseException]:
        with self.lock:
            self.rounds.append(list(ids))
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return {t: done_record(t) if t in self.done else pending_record(t) for t in ids}


@pytest.fixture
def reads() -> FakeReads:
    return FakeReads()


@pytest.fixture
def poller(reads: FakeReads) -> Iterator[Poller]:
    p = Poller(reads, interval=0.02, max_interval=0.05, idle_exit=0.2)
    yield p
    p.close()


# -- the bare poller ------------------------------------------------------------------------------


def test_one_round_serves_every_waiter(poller: Poller, reads: FakeReads) -> None:
    """Waiters in different threads share rounds: one read names every pending task."""
    outcomes: dict[str, object] = {}

    def wait(task_id: str) -> None:
        for tid, outcome in iter_outcomes(poller, [task_id], max_wait=5.0):
            outcomes[tid] = outcome

    threads = [threading.Thread(target=wait, args=(f"t{n}",)) for n in range(5)]
    for thread in threads:
        thread.start()
    assert eventually(lambda: any(len(r) == 5 for r in reads.rounds))
    reads.done.update(f"t{n}" for n in range(5))
    for thread in threads:
        thread.join(5.0)
    assert set(outcomes) == {f"t{n}" for n in range(5)}
    assert all(isinstance(o, ImageResult) for o in outcomes.values())
    assert eventually(lambda: poller.pending() == [])


def test_each_waiter_keeps_its_own_deadline_while_a_round_is_slow(
    poller: Poller, reads: FakeReads
) -> None:
    """A round that takes 3 s never stretches a 0.3 s ``max_wait`` (checked within about 1 s)."""
    reads.delay = 3.0
    started = time.monotonic()
    ((task_id, outcome),) = list(iter_outcomes(poller, ["slow"], max_wait=0.3))
    elapsed = time.monotonic() - started
    assert task_id == "slow" and isinstance(outcome, TaskTimeoutError)
    assert outcome.task_id == "slow" and "poll_task('slow')" in str(outcome)
    assert elapsed < 2.0  # the wait's own deadline, not the round's 3 s


def test_one_waiter_leaving_never_stops_the_others(
    poller: Poller, reads: FakeReads, caplog: pytest.LogCaptureFixture
) -> None:
    stay: list[object] = []

    def wait() -> None:
        stay.extend(o for _, o in iter_outcomes(poller, ["stay"], max_wait=5.0))

    thread = threading.Thread(target=wait)
    thread.start()
    with caplog.at_level(logging.WARNING, logger="langchain_nanobanana"):
        leaver = iter_outcomes(poller, ["leave"], max_wait=5.0)
        reads.done.add("leave")
        next(leaver)
        assert isinstance(leaver, types.GeneratorType)
        leaver.close()  # like ``break``: the waiter leaves
    rounds_then = len(reads.rounds)
    assert eventually(lambda: len(reads.rounds) > rounds_then + 2)  # rounds go on
    assert all(r == ["stay"] for r in reads.rounds[rounds_then + 1 :])
    reads.done.add("stay")
    thread.join(5.0)
    assert len(stay) == 1 and isinstance(stay[0], ImageResult)


def test_leaving_early_logs_and_records_the_pending_tasks(
    poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    class StopError(Exception):
        pass

    with (
        caplog.at_level(logging.WARNING, logger="langchain_nanobanana"),
        pytest.raises(StopError) as info,
    ):
        for _ in iter_outcomes(poller, ["a", "b"], max_wait=5.0, on_progress=_raise(StopError())):
            pass
    assert info.value.task_ids == ["a", "b"]  # type: ignore[attr-defined]
    assert any("a, b" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def _raise(error: BaseException) -> Any:
    def hook(payload: dict[str, Any]) -> None:
        raise error

    return hook


def test_a_failed_round_ends_only_what_is_not_transient(poller: Poller, reads: FakeReads) -> None:
    reads.error = ServerError("down", status_code=503)
    outcomes = list(iter_outcomes(poller, ["t"], max_wait=0.3))
    ((_, timeout),) = outcomes
    assert isinstance(timeout, TaskTimeoutError)
    assert isinstance(timeout.__cause__, ServerError)  # the last failed read, kept
    reads.error = AuthenticationError("who?", status_code=401)
    started = time.monotonic()
    ((_, auth),) = list(iter_outcomes(poller, ["u"], max_wait=5.0))
    assert isinstance(auth, AuthenticationError)  # ends at once, not at max_wait
    assert time.monotonic() - started < 2.0


def test_close_fails_every_waiter_with_its_task_ids(poller: Poller) -> None:
    caught: list[NanoBananaError] = []

    def wait() -> None:
        try:
            list(iter_outcomes(poller, ["x", "y"], max_wait=10.0))
        except NanoBananaError as exc:
            caught.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    assert eventually(lambda: set(poller.pending()) == {"x", "y"})
    poller.close()
    thread.join(5.0)
    (error,) = caught
    assert error.task_ids == ["x", "y"] and "keep running" in str(error)
    with pytest.raises(NanoBananaError, match="closed"):
        list(iter_outcomes(poller, ["z"], max_wait=1.0))


# -- the client's poll entry points on the simulator ----------------------------------------------


def test_poll_interval_grows(sim: FakeNanoBananaServer) -> None:
    """A 1 s task polled from 50 ms growing x1.5 (cap 0.4 s) takes about 7 reads; a fixed 50 ms
    interval would take about 20. Counted, not timed.
    """
    sim.task_duration = 1.0
    with NanoBananaClient(
        sim.token, base_url=sim.base_url, poll_interval=0.05, max_poll_interval=0.4
    ) as client:
        result = client.generate("x")
    assert result.status == "succeeded"
    reads = len(sim.requests_to(TASKS))
    assert 2 <= reads <= 10, reads


def test_poll_tasks_batches_and_reports_each_outcome(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.15
    with NanoBananaClient(
        sim.token, base_url=sim.base_url, poll_interval=0.05, max_poll_interval=0.1
    ) as client:
        ok = client.generate("ok", wait=False).task_id or ""
        sim.fail_next_tasks(code="content_blocked")
        bad = client.generate("bad", wait=False).task_id or ""
        sim.task_duration = 60
        slow = client.generate("slow", wait=False).task_id or ""
        payloads: list[dict[str, Any]] = []
        out = client.poll_tasks([ok, bad, slow], max_wait=0.6, on_progress=payloads.append)
    assert isinstance(out[0], ImageResult) and out[0].status == "succeeded"
    assert isinstance(out[1], TaskFailedError) and out[1].code == "content_blocked"
    assert isinstance(out[2], TaskTimeoutError) and out[2].task_id == slow
    reads = [r.json for r in sim.requests_to(TASKS)]
    assert reads[0] == {"action": "retrieve_batch", "ids": [ok, bad, slow]}
    batches = [r for r in reads if r["action"] == "retrieve_batch"]  # type: ignore[index]
    singles = reads[len(batches) :]
    for batch in batches:  # only the ids still pending, in input order
        assert batch["ids"] in ([ok, bad, slow], [ok, slow], [bad, slow])  # type: ignore[index]
    assert singles and all(r == {"action": "retrieve", "id": slow} for r in singles)
    # One progress payload per round this waiter saw, numbered, with every task's status.
    assert payloads and len(payloads) <= len(reads)
    assert [p["round"] for p in payloads] == list(range(1, len(payloads) + 1))
    assert payloads[0]["tasks"] == {ok: "pending", bad: "pending", slow: "pending"}
    assert [p["elapsed"] for p in payloads] == sorted(p["elapsed"] for p in payloads)
    assert payloads[-1]["tasks"][ok] == "succeeded" and payloads[-1]["tasks"][bad] == "failed"
    assert payloads[-1]["pending"] == 1


async def test_apoll_tasks_matches_poll_tasks(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.1
    seen: list[int] = []

    async def on_progress(payload: dict[str, Any]) -> None:
        seen.append(len(payload["tasks"]))

    async with NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=0.05) as client:
        ids = [(await client.agenerate(f"p{n}", wait=False)).task_id or "" for n in range(3)]
        out = await client.apoll_tasks(ids, on_progress=on_progress)
    assert [r.task_id for r in out] == ids
    assert seen and seen[0] == 3


def test_iter_outcomes_yields_as_each_task_ends(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    sim.task_duration = 60
    first, second = (client.generate(f"p{n}", wait=False).task_id or "" for n in range(2))
    outcomes = client.iter_outcomes([first, second], max_wait=10)
    sim.complete_task(second)
    assert next(outcomes)[0] == second  # the one that finished comes first
    sim.complete_task(first)
    task_id, result = next(outcomes)
    assert task_id == first and isinstance(result, ImageResult)
    assert list(outcomes) == []
    client.close()


async def test_threads_and_event_loops_share_rounds(sim: FakeNanoBananaServer) -> None:
    """A thread and an asyncio task waiting on one client are read in the same rounds."""
    sim.task_duration = 0.3
    client = fast_client(sim, poll_interval=0.05, max_poll_interval=0.05)
    a = client.generate("a", wait=False).task_id or ""
    b = client.generate("b", wait=False).task_id or ""
    thread_result: list[ImageResult] = []
    thread = threading.Thread(target=lambda: thread_result.append(client.poll_task(a)))
    thread.start()
    result = await client.apoll_task(b)
    await asyncio.to_thread(thread.join, 5.0)
    assert result.task_id == b and thread_result[0].task_id == a
    shared = [
        r.json
        for r in sim.requests_to(TASKS)
        if isinstance(r.json, dict) and set(r.json.get("ids") or ()) == {a, b}
    ]
    assert shared, "the two waiters were never read in one retrieve_batch"
    client.close()


def test_transient_errors_do_not_drop_the_task(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.1
    with NanoBananaClient(
        sim.token, base_url=sim.base_url, max_retries=0, poll_interval=0.02, max_poll_interval=0.05
    ) as client:
        task_id = client.generate("x", wait=False).task_id or ""
        sim.inject_fault("503", path=TASKS, count=2)
        sim.inject_fault("502", path=TASKS)
        result = client.poll_task(task_id)
    assert result.status == "succeeded"
    faults = [r.fault for r in sim.requests_to(TASKS)]
    assert faults[:3] == ["503", "503", "502"] and faults[-1] is None


def test_authentication_error_while_polling_is_raised_at_once(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    with NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=0.02) as client:
        task_id = client.generate("x", wait=False).task_id or ""
        sim.token = "rotated-token"
        with pytest.raises(AuthenticationError) as info:
            client.poll_task(task_id)
    assert info.value.task_id == task_id
    assert len(sim.requests_to(TASKS)) == 1


def test_closing_the_client_ends_waits_with_their_task_ids(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    client = fast_client(sim)
    task_id = client.generate("x", wait=False).task_id or ""
    caught: list[NanoBananaError] = []

    def wait() -> None:
        try:
            client.poll_task(task_id)
        except NanoBananaError as exc:
            caught.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    assert eventually(lambda: len(sim.requests_to(TASKS)) >= 1)
    client.close()
    thread.join(5.0)
    (error,) = caught
    assert task_id in error.task_ids and task_id in str(error)


def test_progress_payloads_while_waiting(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.3
    client = fast_client(sim)
    task_id = client.generate("x", wait=False).task_id or ""
    payloads: list[dict[str, Any]] = []
    list(client.iter_outcomes([task_id], on_progress=payloads.append))
    assert payloads and payloads[0]["tasks"] == {task_id: "pending"}
    for payload in payloads:
        assert payload["pending"] + payload["succeeded"] + payload["failed"] == 1
    client.close()


def test_the_round_that_finishes_the_task_reports_it(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    task_id = client.generate("x", wait=False).task_id or ""  # done at once
    payloads: list[dict[str, Any]] = []
    list(client.iter_outcomes([task_id], on_progress=payloads.append))
    client.close()
    assert payloads, "no progress event at all"
    assert payloads[-1]["tasks"] == {task_id: "succeeded"} and payloads[-1]["pending"] == 0
