"""Batch generation at the physical limit (issue 4), against the simulator over real HTTP.

``NanoBananaImageGenerator.batch`` / ``abatch`` / ``batch_as_completed`` /
``abatch_as_completed``: input order, validation of every input before the first submission,
``return_exceptions``, ending early (the first failure, ``asyncio.wait_for``, ``break``) with the
submitted task_ids on the error and in a WARNING, ``max_concurrency``, one ``retrieve_batch`` per
poll round (50 ids per request) shared by every waiter of one client, the
``nano_banana_progress`` event (callback handlers and ``astream_events``), the poll schedule's
restart on progress, keep-alive and pool sizing, async waits without a thread per task, a cheap
``import langchain_nanobanana``, and streamed downloads (memory flat in the image size).

No assertion depends on wall-clock speed: timings live in ``benchmarks/run.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from langchain_nanobanana import (
    ImageResult,
    InvalidImageError,
    NanoBananaClient,
    NanoBananaError,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
    TaskFailedError,
)
from langchain_nanobanana._core.polling import BATCH_CHUNK, RoundTimer, WaitState
from langchain_nanobanana._transport import _PoolAdapter
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.images import download_image, to_image_url
from langchain_nanobanana.runnables import PROGRESS_EVENT, ImageGeneratorInput
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import eventually, fast_client, json_bodies

IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
MiB = 2**20
LOGGER = "langchain_nanobanana"


Hook = Callable[[dict[str, Any]], None]


class Progress(BaseCallbackHandler):
    """Records every custom event; ``hook(data)`` runs on each ``nano_banana_progress`` event."""

    def __init__(self, hook: Hook | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.names: list[str] = []
        self.hook = hook

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.names.append(name)
        if name == PROGRESS_EVENT:
            self.events.append(data)
            if self.hook is not None:
                self.hook(data)


class AsyncProgress(AsyncCallbackHandler):
    """The async flavour of :class:`Progress`."""

    def __init__(self, hook: Hook | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.hook = hook

    async def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == PROGRESS_EVENT:
            self.events.append(data)
            if self.hook is not None:
                self.hook(data)


def finish_in_rounds(sim: FakeNanoBananaServer, *rounds: int) -> Hook:
    """A progress hook that makes the poll loop's pace deterministic: tasks never finish on their
    own (``task_duration`` 60 s); after each round listed in ``rounds`` the hook finishes an equal
    share of the still-pending tasks (all of them at the last listed round), so the next round
    sees them done.
    """
    sim.task_duration = 60.0
    plan = sorted(rounds)

    def hook(data: dict[str, Any]) -> None:
        if data["round"] not in plan:
            return
        left = plan[plan.index(data["round"]) :]
        pending = sorted(t for t, status in data["tasks"].items() if status == "pending")
        share = pending if len(left) == 1 else pending[: max(1, len(pending) // len(left))]
        for task_id in share:
            sim.complete_task(task_id)

    return hook


@pytest.fixture
def gen(client: NanoBananaClient) -> NanoBananaImageGenerator:
    return NanoBananaImageGenerator(client=client)


def prompts(n: int, stem: str = "catalogue item") -> list[ImageGeneratorInput]:
    """``n`` distinct prompts, typed as the generator's batch inputs."""
    return [f"{stem} {i}: a ceramic mug" for i in range(n)]


def assert_in_input_order(inputs: Sequence[ImageGeneratorInput], results: list[Any]) -> None:
    assert len(results) == len(inputs)
    for prompt, result in zip(inputs, results, strict=True):
        assert isinstance(result, ImageResult)
        assert result.status == "succeeded"
        assert result.images[0].prompt == prompt  # the simulator echoes each task's prompt


@pytest.fixture
def reverse_finisher(sim: FakeNanoBananaServer) -> Iterator[Callable[[int], None]]:
    """Start a thread that waits for ``n`` tasks, then finishes them newest first, 30 ms apart,
    so tasks finish in the opposite order of the inputs and over several poll rounds.
    """
    sim.task_duration = 60.0  # only the finisher ends tasks
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def start(n: int) -> None:
        def run() -> None:
            while len(sim.tasks) < n and not stop.wait(0.005):
                pass
            for task_id, _ in sorted(sim.tasks.items(), key=lambda kv: -kv[1]["created_at"]):
                if stop.wait(0.03):
                    return
                sim.complete_task(task_id)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)


def in_flight_peak(sim: FakeNanoBananaServer, latency: float) -> int:
    """Most submissions the simulator was handling at once.

    Each submission is answered ``latency`` seconds after it arrived, and a worker sends its next
    one only after that answer, so the intervals ``[arrival, arrival + latency)`` of one worker
    never overlap: with ``k`` workers, at most ``k`` of them overlap at any instant.
    """
    arrivals = sorted(r.time for r in sim.requests_to(IMAGES))
    return max(sum(1 for b in arrivals if a <= b < a + latency) for a in arrivals)


# -- order and failures ------------------------------------------------------------------------


def test_batch_returns_results_in_input_order(
    sim: FakeNanoBananaServer,
    gen: NanoBananaImageGenerator,
    reverse_finisher: Callable[[int], None],
) -> None:
    inputs = prompts(8)
    reverse_finisher(len(inputs))

    results = gen.batch(list(inputs), config={"max_concurrency": 4})

    assert_in_input_order(inputs, results)
    assert len(sim.requests_to(IMAGES)) == 8


async def test_abatch_returns_results_in_input_order(
    sim: FakeNanoBananaServer,
    gen: NanoBananaImageGenerator,
    reverse_finisher: Callable[[int], None],
) -> None:
    inputs = prompts(8, "async item")
    reverse_finisher(len(inputs))

    results = await gen.abatch(list(inputs), config={"max_concurrency": 4})

    assert_in_input_order(inputs, results)


def _mixed_inputs() -> list[Any]:
    # max_concurrency=1 submits in input order, so the first task created is item 0's.
    return [
        "item 0: the simulator fails this task",
        "item 1: fine",
        {"prompt": "item 2: invalid", "aspect_ratio": "5:4"},  # refused before any request
        "item 3: fine",
    ]


def _check_mixed(sim: FakeNanoBananaServer, results: list[Any]) -> None:
    failed, ok1, invalid, ok3 = results
    assert isinstance(failed, TaskFailedError)
    assert failed.code == "generation_failed"
    assert failed.task_id in sim.tasks
    assert isinstance(ok1, ImageResult) and ok1.images[0].prompt == "item 1: fine"
    assert isinstance(invalid, InvalidRequestError)
    assert "aspect_ratio" in str(invalid) and "5:4" in str(invalid)
    assert isinstance(ok3, ImageResult) and ok3.images[0].prompt == "item 3: fine"
    assert len(sim.requests_to(IMAGES)) == 3  # the invalid item never reached the API


def test_batch_return_exceptions_keeps_each_failure_in_its_slot(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.task_duration = 0.1
    sim.fail_next_tasks(1)

    results = gen.batch(_mixed_inputs(), config={"max_concurrency": 1}, return_exceptions=True)

    _check_mixed(sim, results)


async def test_abatch_return_exceptions_keeps_each_failure_in_its_slot(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.task_duration = 0.1
    sim.fail_next_tasks(1)

    results = await gen.abatch(
        _mixed_inputs(), config={"max_concurrency": 1}, return_exceptions=True
    )

    _check_mixed(sim, results)


# Inputs that are each fine except the last, which only a full validation pass can catch: a bad
# value, an unknown dict key, a wrong type and an unreadable image.
INVALID_LAST: list[tuple[str, Any, type[Exception]]] = [
    ("bad-value", {"prompt": "a cat", "resolution": "4K"}, InvalidRequestError),
    ("unknown-key", {"prompt": "a cat", "style": "noir"}, ValueError),
    ("wrong-type", 42, TypeError),
    ("bad-image", {"prompt": "a hat", "images": [b"not an image"]}, InvalidImageError),
]


@pytest.mark.parametrize(
    ("bad", "error"), [(b, e) for _, b, e in INVALID_LAST], ids=[i for i, _, _ in INVALID_LAST]
)
def test_batch_with_one_invalid_input_raises_before_any_submission(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, bad: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        gen.batch([*prompts(5), bad], config={"max_concurrency": 1})

    assert sim.requests_to(IMAGES) == []  # validated first: nothing was sent, nothing paid
    assert sim.tasks == {}


async def test_abatch_with_one_invalid_input_raises_before_any_submission(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    with pytest.raises(InvalidRequestError, match="aspect_ratio='5:4'"):
        await gen.abatch([*prompts(5), {"prompt": "a cat", "aspect_ratio": "5:4"}])

    assert sim.requests == []


def test_batch_return_exceptions_puts_the_invalid_input_error_in_its_slot(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    inputs: list[ImageGeneratorInput] = [*prompts(3), {"prompt": "a cat", "resolution": "4K"}]

    results: list[Any] = gen.batch(inputs, return_exceptions=True)

    *ok, invalid = results
    assert_in_input_order(inputs[:3], ok)
    assert isinstance(invalid, InvalidRequestError) and "resolution='4K'" in str(invalid)
    assert len(sim.requests_to(IMAGES)) == 3


async def test_abatch_return_exceptions_puts_the_invalid_input_error_in_its_slot(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    inputs: list[ImageGeneratorInput] = [42, *prompts(2)]  # type: ignore[list-item]

    results = await gen.abatch(inputs, return_exceptions=True)

    invalid, *ok = results
    assert isinstance(invalid, TypeError)
    assert_in_input_order(inputs[1:], ok)
    assert len(sim.requests_to(IMAGES)) == 2


def test_batch_without_return_exceptions_raises_the_task_failure(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")

    with pytest.raises(TaskFailedError) as info:
        gen.batch(prompts(3), config={"max_concurrency": 1})

    assert info.value.code == "content_policy"
    assert info.value.task_id in sim.tasks


def _finish_first_task_only(sim: FakeNanoBananaServer, n: int) -> threading.Thread:
    """Tasks never finish on their own; once ``n`` exist, finish the first one created (the
    one ``fail_next_tasks`` fails). Its siblings keep running."""
    sim.task_duration = 60.0

    def run() -> None:
        if eventually(lambda: len(sim.tasks) >= n):
            first = min(sim.tasks.items(), key=lambda kv: kv[1]["created_at"])[0]
            sim.complete_task(first)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _check_first_failure(sim: FakeNanoBananaServer, error: TaskFailedError, started: float) -> None:
    assert time.monotonic() - started < 30  # at once, not after the siblings' 60 s
    siblings = set(sim.tasks) - {error.task_id}
    assert len(siblings) == 3
    assert set(error.task_ids) == siblings  # still running and billed: named on the error
    assert all("response" not in sim.tasks[t] for t in siblings)
    for task_id in siblings:
        assert task_id in str(error)


def test_batch_first_failure_raises_at_once_naming_the_siblings(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sim.fail_next_tasks(1)
    finisher = _finish_first_task_only(sim, 4)
    started = time.monotonic()

    with pytest.raises(TaskFailedError) as info:
        gen.batch(prompts(4), config={"max_concurrency": 1})

    finisher.join(5)
    _check_first_failure(sim, info.value, started)
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert all(t in warned for t in info.value.task_ids)


async def test_abatch_first_failure_raises_at_once_naming_the_siblings(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.fail_next_tasks(1)
    finisher = _finish_first_task_only(sim, 4)
    started = time.monotonic()

    with pytest.raises(TaskFailedError) as info:
        await gen.abatch(prompts(4), config={"max_concurrency": 1})

    finisher.join(5)
    _check_first_failure(sim, info.value, started)


def _exception_chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and all(exc is not s for s in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


async def test_abatch_under_wait_for_timeout_names_the_submitted_tasks(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sim.task_duration = 60.0  # far longer than the caller waits

    with pytest.raises(asyncio.TimeoutError) as info:
        await asyncio.wait_for(gen.abatch(prompts(3)), timeout=0.5)

    submitted = set(sim.tasks)
    assert len(submitted) == 3
    carriers = [e for e in _exception_chain(info.value) if getattr(e, "task_ids", None)]
    assert carriers, "no exception in the TimeoutError's cause/context chain names the tasks"
    assert set(carriers[0].task_ids) == submitted  # type: ignore[attr-defined]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert all(r.name.startswith(LOGGER) for r in warnings)
    assert any(all(t in r.getMessage() for t in submitted) for r in warnings)


def test_failed_task_shows_as_failed_in_progress_events(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.task_duration = 60.0
    sim.fail_next_tasks(1)  # the first task created (max_concurrency=1: item 0's)

    def hook(data: dict[str, Any]) -> None:
        by_age = sorted(sim.tasks.items(), key=lambda kv: kv[1]["created_at"])
        if data["round"] == 1:
            sim.complete_task(by_age[0][0])  # round 2 sees it failed, the others pending
        elif data["round"] == 2:
            for task_id, _ in by_age[1:]:
                sim.complete_task(task_id)

    progress = Progress(hook)
    results = gen.batch(
        prompts(3),
        config={"max_concurrency": 1, "callbacks": [progress]},
        return_exceptions=True,
    )

    assert isinstance(results[0], TaskFailedError)
    second = progress.events[1]
    assert second["tasks"][results[0].task_id] == "failed"
    assert (second["pending"], second["succeeded"], second["failed"]) == (2, 0, 1)
    assert [r.status for r in results[1:]] == ["succeeded", "succeeded"]


def test_last_progress_event_reports_every_task_done(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.task_duration = 0.1
    sim.fail_next_tasks(1)
    progress = Progress()

    results = gen.batch(
        prompts(3),
        config={"max_concurrency": 1, "callbacks": [progress]},
        return_exceptions=True,
    )

    assert progress.events, "no nano_banana_progress event"
    last = progress.events[-1]
    assert isinstance(results[0], TaskFailedError)
    assert last["tasks"][results[0].task_id] == "failed"
    assert (last["pending"], last["succeeded"], last["failed"]) == (0, 2, 1)


def test_a_wait_of_one_round_still_dispatches_its_progress_event(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    progress = Progress()  # the task is done when the first round reads it

    result = gen.invoke("an instant cat", {"callbacks": [progress]})

    assert len(sim.requests_to(TASKS)) == 1  # one round
    assert [e["tasks"] for e in progress.events] == [{result.task_id: "succeeded"}]


# -- batch_as_completed ----------------------------------------------------------------------


def _finish_in_order(
    sim: FakeNanoBananaServer, n: int, order: Callable[[list[str]], list[str]]
) -> tuple[threading.Thread, list[tuple[str, float]]]:
    """Start a thread that waits for ``n`` tasks (created oldest first), then finishes them in
    ``order(ids by creation)``, 0.3 s apart (more than the ``client`` fixture's longest poll
    interval, so each finish is seen by its own round). Returns ``(thread, finished ids)``."""
    sim.task_duration = 60.0
    finished: list[tuple[str, float]] = []

    def run() -> None:
        if not eventually(lambda: len(sim.tasks) >= n):
            return
        by_age = [t for t, _ in sorted(sim.tasks.items(), key=lambda kv: kv[1]["created_at"])]
        for task_id in order(by_age):
            time.sleep(0.3)
            sim.complete_task(task_id)
            finished.append((task_id, time.monotonic()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, finished


def _check_as_completed(
    sim: FakeNanoBananaServer,
    inputs: list[ImageGeneratorInput],
    seen: list[tuple[int, Any, float]],
    finished: list[tuple[str, float]],
) -> None:
    by_task = {r.task_id: (i, r, at) for i, r, at in seen}
    assert [t for t, _ in finished] == [r.task_id for _, r, _ in seen]  # finishing order
    for task_id, done_at in finished:
        index, result, yielded_at = by_task[task_id]
        assert result.images[0].prompt == inputs[index]  # the index is the input's
        assert 0 <= yielded_at - done_at < 1.5  # about one (0.2 s) poll interval, loosely
    assert sorted(i for i, _, _ in seen) == list(range(len(inputs)))
    assert len(sim.requests_to(IMAGES)) == len(inputs)


def test_batch_as_completed_yields_in_finishing_order(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    inputs = prompts(4, "as completed")
    finisher, finished = _finish_in_order(sim, 4, lambda ids: [ids[2], ids[0], ids[3], ids[1]])
    seen: list[tuple[int, Any, float]] = []

    for index, result in gen.batch_as_completed(inputs, config={"max_concurrency": 1}):
        seen.append((index, result, time.monotonic()))

    finisher.join(5)
    _check_as_completed(sim, inputs, seen, finished)
    assert [i for i, _, _ in seen] == [2, 0, 3, 1]


async def test_abatch_as_completed_yields_in_finishing_order(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    inputs = prompts(4, "async as completed")
    finisher, finished = _finish_in_order(sim, 4, lambda ids: ids[::-1])
    seen: list[tuple[int, Any, float]] = []

    async for index, result in gen.abatch_as_completed(inputs, config={"max_concurrency": 1}):
        seen.append((index, result, time.monotonic()))

    finisher.join(5)
    _check_as_completed(sim, inputs, seen, finished)
    assert [i for i, _, _ in seen] == [3, 2, 1, 0]


def test_batch_as_completed_validates_every_input_first(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    with pytest.raises(InvalidRequestError):
        for _ in gen.batch_as_completed([*prompts(3), {"prompt": "x", "count": 9}]):
            pass
    assert sim.requests == []

    out = dict(
        gen.batch_as_completed(
            [{"prompt": "x", "count": 9}, "a fine cat"], None, return_exceptions=True
        )
    )
    assert isinstance(out[0], InvalidRequestError)
    assert isinstance(out[1], ImageResult) and out[1].status == "succeeded"
    assert len(sim.requests_to(IMAGES)) == 1


def _pending_after_break(
    sim: FakeNanoBananaServer, first: ImageResult, caplog: pytest.LogCaptureFixture
) -> set[str]:
    pending = set(sim.tasks) - {first.task_id}
    assert len(pending) == 3
    assert all("response" not in sim.tasks[t] for t in pending)
    return pending


def _warned_about(caplog: pytest.LogCaptureFixture, task_ids: set[str]) -> bool:
    return any(
        r.levelno == logging.WARNING
        and r.name.startswith(LOGGER)
        and all(t in r.getMessage() for t in task_ids)
        for r in caplog.records
    )


def test_break_out_of_batch_as_completed_submits_nothing_more_and_warns(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    finisher, _ = _finish_in_order(sim, 4, lambda ids: ids[1:2])  # only one task ever ends
    first: ImageResult | None = None

    for _, result in gen.batch_as_completed(prompts(4), config={"max_concurrency": 2}):
        assert isinstance(result, ImageResult)
        first = result
        break

    assert first is not None and first.status == "succeeded"
    posts = len(sim.requests_to(IMAGES))
    time.sleep(0.3)
    finisher.join(5)
    assert posts == len(sim.requests_to(IMAGES)) == 4  # nothing submitted after the break
    assert _warned_about(caplog, _pending_after_break(sim, first, caplog))


async def test_break_out_of_abatch_as_completed_submits_nothing_more_and_warns(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    finisher, _ = _finish_in_order(sim, 4, lambda ids: ids[2:3])
    first: ImageResult | None = None

    async for _, result in gen.abatch_as_completed(prompts(4), config={"max_concurrency": 2}):
        assert isinstance(result, ImageResult)
        first = result
        break

    assert first is not None and first.status == "succeeded"
    posts = len(sim.requests_to(IMAGES))
    pending = _pending_after_break(sim, first, caplog)
    for _ in range(100):  # the event loop closes the abandoned async generator soon after
        if _warned_about(caplog, pending):
            break
        await asyncio.sleep(0.02)
    finisher.join(5)
    assert posts == len(sim.requests_to(IMAGES)) == 4
    assert _warned_about(caplog, pending)


def test_batch_as_completed_polls_no_more_than_twice_what_batch_does(
    sim: FakeNanoBananaServer,
) -> None:
    """64 tasks of 2 s, ``poll_interval`` 0.25 s: the task reads of ``batch_as_completed`` stay
    within twice those of ``batch`` for the same job (shared rounds, 50 ids per request)."""
    sim.task_duration = 2.0
    reads: dict[str, int] = {}
    for how in ("batch", "as_completed"):
        with fast_client(sim, poll_interval=0.25, max_poll_interval=10.0) as client:
            gen = NanoBananaImageGenerator(client=client)
            inputs = prompts(64, how)
            sim.clear_requests()
            results: list[Any]
            if how == "batch":
                results = gen.batch(inputs, config={"max_concurrency": 16})
            else:
                out = dict(gen.batch_as_completed(inputs, config={"max_concurrency": 16}))
                results = [out[i] for i in range(64)]
            assert_in_input_order(inputs, results)
            polls = json_bodies(sim, TASKS)
            # a round with one pending task reads it alone ({"action": "retrieve", "id": ...})
            assert all(len(p.get("ids", [p.get("id")])) <= BATCH_CHUNK for p in polls)
            reads[how] = len(polls)
    assert reads["as_completed"] <= 2 * reads["batch"], reads
    assert reads["batch"] <= 2 * math.ceil(64 / BATCH_CHUNK) * 6, reads  # a handful of rounds


# -- concurrency -------------------------------------------------------------------------------


def test_batch_max_concurrency_bounds_submissions_in_flight(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.submit_latency = 0.2

    results = gen.batch(prompts(9), config={"max_concurrency": 3})

    assert all(r.status == "succeeded" for r in results)
    peak = in_flight_peak(sim, 0.2)
    assert 2 <= peak <= 3, peak  # parallel, never past max_concurrency


async def test_abatch_max_concurrency_bounds_submissions_in_flight(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.submit_latency = 0.2

    results = await gen.abatch(prompts(9), config={"max_concurrency": 3})

    assert all(r.status == "succeeded" for r in results)
    peak = in_flight_peak(sim, 0.2)
    assert 2 <= peak <= 3, peak


# -- one poll request per round -------------------------------------------------------------


def task_ids(results: Sequence[ImageResult]) -> list[str]:
    """The task id of each result, in order (every submitted task has one)."""
    ids = []
    for result in results:
        assert result.task_id is not None
        ids.append(result.task_id)
    return ids


def test_one_retrieve_batch_per_round_for_all_pending_tasks(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    # Round 1: all pending (the hook then ends half); round 2: half done (the hook ends the
    # rest); round 3: all done. Three rounds by construction.
    progress = Progress(finish_in_rounds(sim, 1, 2))

    results = gen.batch(prompts(12), config={"max_concurrency": 12, "callbacks": [progress]})

    polls = json_bodies(sim, TASKS)
    assert len(polls) == 3  # exactly one request per round
    assert len(progress.events) == 3  # one event per round: all pending; half done; all done
    ids = task_ids(results)
    assert {p["action"] for p in polls} == {"retrieve_batch"}
    assert sorted(polls[0]["ids"]) == sorted(ids)  # the first round asks for every task
    for before, body in zip(progress.events, polls[1:], strict=False):
        still = sorted(t for t, status in before["tasks"].items() if status == "pending")
        assert sorted(body["ids"]) == still  # later rounds ask only for the pending ones


async def test_abatch_one_retrieve_batch_per_round(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    progress = AsyncProgress(finish_in_rounds(sim, 1, 2))

    results = await gen.abatch(prompts(12), config={"max_concurrency": 12, "callbacks": [progress]})

    polls = json_bodies(sim, TASKS)
    assert len(polls) == 3
    assert len(progress.events) == 3
    assert {p["action"] for p in polls} == {"retrieve_batch"}
    assert sorted(polls[0]["ids"]) == sorted(task_ids(results))


def test_more_than_50_pending_tasks_are_polled_in_chunks(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    progress = Progress(finish_in_rounds(sim, 1, 2))
    inputs = prompts(2 * BATCH_CHUNK + 7)

    results = gen.batch(list(inputs), config={"max_concurrency": 16, "callbacks": [progress]})

    assert_in_input_order(inputs, results)
    polls = json_bodies(sim, TASKS)
    assert all(len(p["ids"]) <= BATCH_CHUNK for p in polls)
    # rounds read 107 ids (none done yet), 107 (53 done), then the last 54: one request per
    # chunk of pending ids, per round
    assert [e["pending"] for e in progress.events] == [107, 54, 0]
    assert len(polls) == 3 + 3 + 2
    first_round = polls[:3]
    assert [len(p["ids"]) for p in first_round] == [BATCH_CHUNK, BATCH_CHUNK, 7]
    assert sorted(i for p in first_round for i in p["ids"]) == sorted(task_ids(results))
    assert sorted(i for p in polls[6:] for i in p["ids"]) == sorted(
        t for t, status in progress.events[1]["tasks"].items() if status == "pending"
    )


def test_concurrent_waiters_of_one_client_share_rounds(
    sim: FakeNanoBananaServer, client: NanoBananaClient
) -> None:
    """Threads each waiting on their own task (``invoke``) and a ``batch``: one poller reads
    every pending task of every waiter in the same ``retrieve_batch`` rounds."""
    sim.task_duration = 60.0
    gen = NanoBananaImageGenerator(client=client)
    results: dict[str, Any] = {}

    def one(name: str) -> None:
        results[name] = gen.invoke(f"thread {name}")

    threads = [threading.Thread(target=one, args=(str(i),)) for i in range(6)]
    for thread in threads:
        thread.start()
    batch_thread = threading.Thread(target=lambda: results.update(batch=gen.batch(prompts(4))))
    batch_thread.start()
    assert eventually(lambda: len(sim.tasks) == 10)
    assert eventually(lambda: any(len(b.get("ids", [])) == 10 for b in json_bodies(sim, TASKS)))
    for task_id in list(sim.tasks):
        sim.complete_task(task_id)
    for thread in [*threads, batch_thread]:
        thread.join(10)

    assert all(results[str(i)].status == "succeeded" for i in range(6))
    assert [r.status for r in results["batch"]] == ["succeeded"] * 4
    polls = json_bodies(sim, TASKS)
    # one shared read per round once every waiter joined, never one request per waiter
    assert {p["action"] for p in polls} <= {"retrieve", "retrieve_batch"}
    assert max(len(p.get("ids", [p.get("id")])) for p in polls) == 10


# -- progress events --------------------------------------------------------------------------


def _check_progress(events: list[dict[str, Any]], task_ids: list[str | None]) -> None:
    assert events, "no nano_banana_progress event"
    assert [e["round"] for e in events] == list(range(1, len(events) + 1))
    elapsed = [e["elapsed"] for e in events]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    for event in events:
        assert set(event["tasks"]) == set(task_ids)  # every task, in every round
        counts = [list(event["tasks"].values()).count(s) for s in ("pending", "succeeded")]
        assert [event["pending"], event["succeeded"]] == counts
        json.dumps(event)  # plain JSON: fit for any tracer or UI
    assert set(events[0]["tasks"].values()) == {"pending"}
    assert set(events[-1]["tasks"].values()) == {"succeeded"}  # the round that ended the wait


def test_batch_progress_events_reach_a_callback_handler(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    progress = Progress(finish_in_rounds(sim, 2))

    results = gen.batch(prompts(5), config={"callbacks": [progress]})

    assert set(progress.names) == {PROGRESS_EVENT}
    _check_progress(progress.events, [r.task_id for r in results])
    assert len(progress.events) == 3  # rounds 1 and 2 saw every task pending, round 3 done


def test_batch_progress_ends_with_every_task_succeeded(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    progress = Progress(finish_in_rounds(sim, 2))

    gen.batch(prompts(5), config={"callbacks": [progress]})

    assert len(progress.events) == len(sim.requests_to(TASKS)) == 3  # one event per round
    assert set(progress.events[-1]["tasks"].values()) == {"succeeded"}


async def test_abatch_progress_events_reach_an_async_handler(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    progress = AsyncProgress(finish_in_rounds(sim, 2))

    results = await gen.abatch(prompts(5), config={"callbacks": [progress]})

    _check_progress(progress.events, [r.task_id for r in results])


async def test_progress_events_in_astream_events_v2(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    finish = finish_in_rounds(sim, 2)
    custom: list[dict[str, Any]] = []
    final: Any = None

    async for event in gen.astream_events("a glass greenhouse", version="v2"):
        if event["event"] == "on_custom_event":
            assert event["name"] == PROGRESS_EVENT
            data = cast("dict[str, Any]", event["data"])  # the progress event's payload
            custom.append(data)
            finish(data)
        elif event["event"] == "on_chain_end":
            final = event["data"]["output"]

    assert isinstance(final, ImageResult)
    _check_progress(custom, [final.task_id])
    assert len(custom) == len(sim.requests_to(TASKS)) == 3  # one event per poll round


# -- poll schedule ----------------------------------------------------------------------------


def test_schedule_restarts_at_the_first_interval() -> None:
    timer = RoundTimer(1.0, 10.0)
    timer.joined(0.0)
    assert timer.due == 1.0
    delays = []
    for now in (1.0, 2.0, 3.0):
        timer.after_round(now, progress=False)
        delays.append(timer.due - now)
    assert delays == pytest.approx([1.5, 2.25, 3.375])

    timer.after_round(10.0, progress=True)  # a task ended in that round

    assert timer.due - 10.0 == pytest.approx(1.0)
    timer.after_round(11.0, progress=False)
    assert timer.due - 11.0 == pytest.approx(1.5)


def test_wait_state_reports_progress() -> None:
    state = WaitState(["a", "b"], max_wait=60.0)
    first = state.progress()
    assert (first["round"], first["pending"], first["succeeded"]) == (1, 2, 0)
    assert state.finish("a", ImageResult(status="succeeded", task_id="a")) is True
    assert state.finish("a", ImageResult(status="succeeded", task_id="a")) is False  # once
    assert state.finish("c", ImageResult(status="succeeded", task_id="c")) is False  # not ours
    assert state.finish("b", NanoBananaError("boom", task_id="b")) is True
    last = state.progress()
    assert last["tasks"] == {"a": "succeeded", "b": "failed"}
    assert (last["round"], last["pending"], last["succeeded"], last["failed"]) == (2, 0, 1, 1)
    assert state.pending() == []


def test_poll_loop_restarts_the_schedule_when_a_round_finishes_tasks(
    sim: FakeNanoBananaServer, client: NanoBananaClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    restarts: list[int] = []
    original = RoundTimer.after_round

    def spy(self: RoundTimer, now: float, *, progress: bool, started: float | None = None) -> None:
        if progress:
            restarts.append(1)
        original(self, now, progress=progress, started=started)

    monkeypatch.setattr(RoundTimer, "after_round", spy)
    sim.task_duration = 60.0
    pending = [str(client.generate(p, wait=False).task_id) for p in ("one", "two")]
    seen: list[int] = []

    def on_progress(payload: dict[str, Any]) -> None:
        seen.append(payload["succeeded"])
        if len(seen) == 1:
            sim.complete_task(pending[0])  # seen next round: progress
        elif len(seen) == 3:
            sim.complete_task(pending[1])

    results = client.poll_tasks(pending, on_progress=on_progress)

    assert [r.status for r in results] == ["succeeded", "succeeded"]
    assert seen[:3] == [0, 1, 1]
    assert len(sim.requests_to(TASKS)) == 4
    assert len(restarts) == 2  # one per round that saw a task finish


# -- connections --------------------------------------------------------------------------------


def test_sequential_calls_reuse_connections(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    for i in range(10):
        assert gen.invoke(f"keep-alive {i}").status == "succeeded"

    assert len(sim.requests) == 20  # 10 submissions + 10 task reads
    # one connection per adapter (submission, task read), each reused: not one per request
    assert sim.connections_accepted <= 2


def test_ensure_pool_size_grows_every_adapter_and_never_shrinks(client: NanoBananaClient) -> None:
    adapters = {id(a): a for a in client.session.adapters.values()}.values()
    ours = [a for a in adapters if isinstance(a, _PoolAdapter)]
    assert len(ours) == 3  # http:// and https:// (submissions, downloads) and task reads
    assert client.pool_maxsize == 10

    client.ensure_pool_size(24)
    client.ensure_pool_size(12)

    assert client.pool_maxsize == 24
    for adapter in ours:
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == 24


def test_batch_sizes_the_pool_to_max_concurrency_and_reuses_it(
    sim: FakeNanoBananaServer,
    gen: NanoBananaImageGenerator,
    client: NanoBananaClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.submit_latency = 0.1
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")

    gen.batch(prompts(32), config={"max_concurrency": 16})
    after_first = sim.connections_accepted
    gen.batch(prompts(32, "second batch"), config={"max_concurrency": 16})

    assert client.pool_maxsize == 16
    assert after_first <= 16 + 1  # 16 submissions in flight at most, plus one poller
    assert sim.connections_accepted == after_first  # the second batch opened no connection
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_batch_below_the_pool_size_leaves_the_pool_alone(
    gen: NanoBananaImageGenerator, client: NanoBananaClient
) -> None:
    gen.batch(prompts(4), config={"max_concurrency": 4})

    assert client.pool_maxsize == 10


# -- async waits ------------------------------------------------------------------------------


@pytest.fixture
def loop_thread_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every ``time.sleep`` made on the calling (event loop) thread."""
    sleeps: list[float] = []
    real_sleep = time.sleep
    here = threading.get_ident()

    def spy(seconds: float) -> None:
        if threading.get_ident() == here:
            sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", spy)
    return sleeps


async def test_abatch_waits_with_asyncio_sleep_and_a_bounded_thread_pool(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, loop_thread_sleeps: list[float]
) -> None:
    n = 40
    worker_threads: list[int] = []

    def watch(data: dict[str, Any]) -> None:
        live = [t for t in threading.enumerate() if t.name.startswith("asyncio_")]
        worker_threads.append(len(live))
        finish(data)

    finish = finish_in_rounds(sim, 3)
    results = await gen.abatch(prompts(n), config={"callbacks": [AsyncProgress(watch)]})

    assert all(r.status == "succeeded" for r in results)
    assert loop_thread_sleeps == []  # the event loop never slept in time.sleep
    assert len(worker_threads) == 4  # three rounds of waiting, then the last one
    # to_thread's default executor, never a thread per waiting task
    assert max(worker_threads) <= min(32, (os.cpu_count() or 1) + 4) < n


async def test_tool_async_path_waits_with_asyncio_sleep(
    sim: FakeNanoBananaServer, client: NanoBananaClient, loop_thread_sleeps: list[float]
) -> None:
    sim.task_duration = 60.0
    tool = NanoBananaGenerateTool(client=client)

    def finish_after_two_polls() -> None:
        while len(sim.requests_to(TASKS)) < 2:
            time.sleep(0.005)  # another thread: not the event loop's
        sim.complete_task(next(iter(sim.tasks)))

    finisher = threading.Thread(target=finish_after_two_polls, daemon=True)
    finisher.start()
    message = await tool.ainvoke(
        {"type": "tool_call", "name": tool.name, "id": "call-1", "args": {"prompt": "a kite"}}
    )
    finisher.join(5)

    assert message.artifact.status == "succeeded"
    assert len(sim.requests_to(TASKS)) >= 3  # it polled while the task ran
    assert loop_thread_sleeps == []


# -- cheap import -------------------------------------------------------------------------------

_IMPORT_PROBE = r"""
import json, sys, threading

# What the package must import anyway: the LangChain classes it subclasses and its HTTP stack.
# (Importing urllib3 binds a throwaway socket to ::1 to detect IPv6 support, and langsmith
# loads psutil when installed: theirs, before the probe starts.)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableSerializable
from langchain_core.tools import BaseTool, BaseToolkit
import pydantic, requests

before = set(sys.modules)
events = []

def hook(event, args):
    if event.startswith(("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn")):
        events.append(event)

sys.addaudithook(hook)
import langchain_nanobanana
from langchain_nanobanana import NanoBananaClient, NanoBananaImageGenerator, NanoBananaToolkit

new = sorted(set(sys.modules) - before)
heavy = (
    "langchain_nanobanana.testing", "http.server", "socketserver", "acedatacloud", "psutil",
    "httpx", "langchain.", "langgraph", "IPython", "PIL", "numpy", "pytest", "multiprocessing",
)
loaded = [m for m in new if m.startswith(heavy) or m in {h.rstrip(".") for h in heavy}]
threads = [t.name for t in threading.enumerate()]
print(json.dumps({"events": events, "loaded": loaded, "threads": threads}))
"""


def test_import_is_cheap_no_network_no_simulator_no_optional_dependency() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACEDATACLOUD_")}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"events": [], "loaded": [], "threads": ["MainThread"]}, report


def test_import_probe_sees_what_it_looks_for() -> None:
    probe = _IMPORT_PROBE.replace(
        "import langchain_nanobanana\nfrom",
        "import langchain_nanobanana.testing, socket\nsocket.socket().close()\n"
        "langchain_nanobanana.testing.FakeNanoBananaServer().start()\nfrom",
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "socket.__new__" in report["events"]
    assert {"langchain_nanobanana.testing", "http.server"} <= set(report["loaded"])
    assert len(report["threads"]) > 1


# -- streamed I/O ---------------------------------------------------------------------------------


def _traced_peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_download_streams_with_flat_memory(
    sim: FakeNanoBananaServer, client: NanoBananaClient, tmp_path: Path
) -> None:
    size = 20 * MiB
    url = f"{sim.base_url}/files/padded/{size}.png"
    requests.get(url, timeout=30).close()  # the simulator builds (and caches) the body now

    peak = _traced_peak(
        lambda: download_image(client._transport, url, tmp_path / "stream", max_bytes=2 * size)
    )
    naive = _traced_peak(lambda: client.session.get(url, timeout=30).content)

    [saved] = (tmp_path / "stream").iterdir()
    assert saved.stat().st_size == size
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert naive > size  # the probe sees a body held in memory...
    assert peak < 2 * MiB, peak  # ...and the streamed download holds none


def test_result_download_streams_with_flat_memory(
    sim: FakeNanoBananaServer, client: NanoBananaClient, tmp_path: Path
) -> None:
    size = 12 * MiB
    url = f"{sim.base_url}/files/padded/{size}.png"
    requests.get(url, timeout=30).close()
    result = ImageResult(status="succeeded", task_id="t-1", images=[{"image_url": url}])

    peak = _traced_peak(lambda: result.download(tmp_path, client=client))

    assert [p.stat().st_size for p in tmp_path.iterdir()] == [size]
    assert peak < 2 * MiB, peak


def test_oversized_path_input_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "huge.png"
    with big.open("wb") as fh:  # a sparse 64 MiB file: cheap to make, costly to read
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(64 * MiB)
    caught: list[InvalidImageError] = []

    def attempt() -> None:
        with pytest.raises(InvalidImageError) as info:
            to_image_url(big)
        caught.append(info.value)

    peak = _traced_peak(attempt)

    assert "over 10485760 bytes" in str(caught[0])
    assert peak < 1 * MiB, peak


def test_path_input_is_read_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_nanobanana.testing import padded_png

    path = tmp_path / "input.png"
    path.write_bytes(padded_png(3 * MiB))
    reads: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def read(self, n: int = -1) -> bytes:
            reads.append(n)
            data: bytes = self.fh.read(n)
            return data

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def spy_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(file, mode, *args, **kwargs)
        return Spy(fh) if os.path.realpath(file) == os.path.realpath(path) else fh

    monkeypatch.setattr("builtins.open", spy_open)
    uri = to_image_url(path)

    assert uri.startswith("data:image/png;base64,")
    assert reads and all(0 < n <= MiB for n in reads)  # bounded reads, never read() whole
