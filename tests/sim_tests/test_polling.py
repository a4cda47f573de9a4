"""The polling schedule and bookkeeping (``_polling``), and the client's poll loops."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_nanobanana import (
    AuthenticationError,
    ImageResult,
    NanoBananaAPIError,
    NanoBananaClient,
    TaskFailedError,
    TaskRecord,
    TaskTimeoutError,
)
from langchain_nanobanana._polling import GROWTH, PollSchedule, PollState, chunked, parse_batch
from langchain_nanobanana.testing import FakeNanoBananaServer

TASKS = "/nano-banana/tasks"


def record(task_id: str, response: dict[str, Any] | None = None) -> TaskRecord:
    data: dict[str, Any] = {"id": task_id, "created_at": 1.0, "trace_id": f"tr-{task_id}"}
    if response is not None:
        data["response"] = response
    return TaskRecord.from_api(data)


def success(task_id: str) -> dict[str, Any]:
    return {
        "success": True,
        "task_id": task_id,
        "data": [{"image_url": f"https://x/{task_id}.png"}],
    }


def failure(task_id: str) -> dict[str, Any]:
    return {"success": False, "task_id": task_id, "error": {"code": "bad", "message": "no"}}


# -- PollSchedule -----------------------------------------------------------------------------
def test_schedule_grows_by_growth_factor_up_to_the_cap() -> None:
    schedule = PollSchedule(1.0, 5.0, max_wait=3600)
    delays = [schedule.next_delay() for _ in range(8)]
    assert GROWTH == 1.5
    assert delays == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 5.0, 5.0])


def test_schedule_cap_below_interval_keeps_interval() -> None:
    schedule = PollSchedule(2.0, 1.0, max_wait=3600)
    assert [schedule.next_delay() for _ in range(3)] == [2.0, 2.0, 2.0]


def test_schedule_never_sleeps_past_the_deadline() -> None:
    schedule = PollSchedule(100.0, 100.0, max_wait=0.5)
    delay = schedule.next_delay()
    assert delay is not None and 0 < delay <= 0.5
    assert PollSchedule(1.0, 1.0, max_wait=0).next_delay() is None
    assert schedule.elapsed() >= 0


def test_chunked() -> None:
    assert list(chunked(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 50)) == []
    assert [len(c) for c in chunked(list(range(120)), 50)] == [50, 50, 20]


# -- PollState --------------------------------------------------------------------------------
def test_poll_state_collects_results_in_input_order() -> None:
    state = PollState(["a", "b", "c", "a"])
    assert state.pending() == ["a", "b", "c"]
    state.update([record("b", success("b")), record("a")], 0.1, return_exceptions=True)
    assert state.pending() == ["a", "c"] and not state.done()
    state.update([record("c", failure("c")), record("a", success("a"))], 0.2, True)
    assert state.done()
    out = state.finish(0.3, return_exceptions=True)
    assert [type(x).__name__ for x in out] == [
        "ImageResult",
        "ImageResult",
        "TaskFailedError",
        "ImageResult",
    ]
    assert out[0].task_id == "a" and out[3] is out[0]
    assert out[2].task_id == "c" and out[2].code == "bad"


def test_poll_state_raises_when_not_returning_exceptions() -> None:
    state = PollState(["c"])
    with pytest.raises(TaskFailedError, match="bad"):
        state.update([record("c", failure("c"))], 0.1, return_exceptions=False)
    state = PollState(["slow"])
    state.last_error = NanoBananaAPIError("boom", status_code=503)
    with pytest.raises(TaskTimeoutError) as info:
        state.finish(2.5, return_exceptions=False)
    assert info.value.task_id == "slow" and info.value.waited == 2.5
    assert isinstance(info.value.__cause__, NanoBananaAPIError)


def test_poll_state_timeouts_as_values() -> None:
    state = PollState(["x", "y"])
    state.update([record("y", success("y"))], 0.1, True)
    out = state.finish(1.0, return_exceptions=True)
    assert isinstance(out[0], TaskTimeoutError) and out[0].task_id == "x"
    assert isinstance(out[1], ImageResult)


def test_parse_batch() -> None:
    parsed = parse_batch({"items": [{"id": "a"}, "junk", {"id": "b", "response": success("b")}]})
    assert list(parsed) == ["a", "b"]
    assert parsed["a"].status == "pending" and parsed["b"].status == "succeeded"
    with pytest.raises(NanoBananaAPIError, match="items"):
        parse_batch({"count": 0})


# -- the client's loops on the simulator ------------------------------------------------------
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
        rounds: list[tuple[int, float]] = []
        out = client.poll_tasks(
            [ok, bad, slow],
            max_wait=0.6,
            on_round=lambda records, elapsed: rounds.append((len(records), elapsed)),
        )
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
    assert len(rounds) == len(reads) and rounds[0][0] == 3
    assert [e for _, e in rounds] == sorted(e for _, e in rounds)


async def test_apoll_tasks_matches_poll_tasks(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.1
    seen: list[int] = []

    async def on_round(records: list[TaskRecord], elapsed: float) -> None:
        seen.append(len(records))

    async with NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=0.05) as client:
        ids = [(await client.agenerate(f"p{n}", wait=False)).task_id or "" for n in range(3)]
        out = await client.apoll_tasks(ids, on_round=on_round)
    assert [r.task_id for r in out] == ids
    assert seen and seen[0] == 3


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
