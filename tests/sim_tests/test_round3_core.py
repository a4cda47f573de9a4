"""Round 3, the core's findings (issue "one table of facts"), each against the simulator:

- an unreadable task record ends a read at once and a wait after three unreadable answers in a
  row, with the task_id (never a TaskTimeoutError after ``max_wait``);
- a record of another task is never handed to this task's waiter; a record without its id whose
  response names the asked task is read;
- ``batch(return_exceptions=False)`` that raises names every task it paid for (finished ones
  too) and keeps the finished results (``results``);
- a closed client sends nothing; options that cannot work are refused when the client is built;
- after ``fork`` the child gets a poller of its own;
- the poller's callback API (``client.watch``) needs no thread per waiter.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Any

import pytest
import requests

from langchain_nanobanana import (
    APIResponseValidationError,
    ConfigurationError,
    ImageResult,
    NanoBananaClient,
    NanoBananaImageGenerator,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana._request import build_request
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import eventually, fast_client

TASKS = "/nano-banana/tasks"
SUBMIT = "/nano-banana/images"


def _pending_task(sim: FakeNanoBananaServer, client: NanoBananaClient) -> str:
    sim.task_duration = 60.0
    result = client.generate("a kite", wait=False)
    assert result.task_id is not None
    return result.task_id


@pytest.mark.parametrize(
    "record",
    [
        {"response": "done"},
        {"response": ["a", "list"]},
        {"response": {"success": True}, "finished_at": 1.0},  # finished, yet no images
        {"response": {"success": True, "data": "not a list"}},
        {"response": {"success": True, "data": [{"image": "no url"}]}},
    ],
    ids=["str", "list", "success-no-images", "data-str", "data-no-url"],
)
def test_an_unreadable_record_is_an_error_at_once_from_get_task(
    sim: FakeNanoBananaServer, record: dict[str, Any]
) -> None:
    client = fast_client(sim)
    task_id = _pending_task(sim, client)
    sim.inject_fault("body", path=TASKS, body={"id": task_id, **record})
    with pytest.raises(APIResponseValidationError) as info:
        client.get_task(task_id)
    assert info.value.task_id == task_id
    assert info.value.billed == "yes"  # a read: the task exists
    client.close()


def test_a_record_nested_too_deep_is_unreadable_not_pending(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    task_id = _pending_task(sim, client)
    nested = "[" * 900 + "1" + "]" * 900
    deep = f'{{"id": "{task_id}", "response": {{"success": true, "data": {nested}}}}}'
    sim.inject_fault("body", path=TASKS, body=deep)
    with pytest.raises(APIResponseValidationError) as info:
        client.get_task(task_id)
    assert info.value.task_id == task_id
    client.close()


def test_a_wait_ends_after_three_unreadable_records_in_a_row(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim, max_wait=60.0)
    task_id = _pending_task(sim, client)
    sim.inject_fault("body", count=10, path=TASKS, body={"id": task_id, "response": "done"})
    with pytest.raises(APIResponseValidationError) as info:
        client.poll_task(task_id)
    assert info.value.task_id == task_id
    assert len(sim.requests_to(TASKS)) == 3
    client.close()


def test_a_record_holding_another_tasks_response_is_not_handed_over(
    sim: FakeNanoBananaServer,
) -> None:
    client = fast_client(sim)
    task_id = _pending_task(sim, client)
    other = {
        "success": True,
        "task_id": "someone-else",
        "data": [{"prompt": "x", "image_url": sim.image_url(8, 8)}],
    }
    sim.inject_fault("body", path=TASKS, body={"id": task_id, "response": other})
    with pytest.raises(APIResponseValidationError, match="someone-else"):
        client.get_task(task_id)
    client.close()


def test_a_record_without_id_whose_response_names_the_task_is_read(
    sim: FakeNanoBananaServer,
) -> None:
    client = fast_client(sim)
    task_id = _pending_task(sim, client)
    response = {
        "success": True,
        "task_id": task_id,
        "data": [{"prompt": "x", "image_url": sim.image_url(8, 8)}],
    }
    sim.inject_fault("body", path=TASKS, body={"response": response})
    record = client.get_task(task_id)
    assert record.status == "succeeded" and record.id == task_id
    client.close()


def test_from_callback_refuses_deep_json_with_a_value_error() -> None:
    body = '{"task_id": "t", "success": true, "data": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(ValueError, match="nested too deep"):
        ImageResult.from_callback(body)


# -- batch: nothing paid is lost ----------------------------------------------------------------


def _fail_from_the_second_submission(sim: FakeNanoBananaServer) -> requests.Session:
    """A session whose response hook makes every task after the first one fail (the simulator
    fails the next created tasks)."""
    session = requests.Session()
    seen: list[str] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.path_url.endswith(SUBMIT) and not seen:
            seen.append("first")
            sim.fail_next_tasks(10)

    session.hooks["response"].append(hook)
    return session


@pytest.mark.parametrize("mode", ["sync", "poll"])
def test_a_raising_batch_names_every_task_it_paid_for_and_keeps_the_finished_results(
    sim: FakeNanoBananaServer, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    sim.task_duration = 0.05
    session = _fail_from_the_second_submission(sim)
    client = fast_client(sim, mode=mode, session=session)
    gen = NanoBananaImageGenerator(client=client)
    with (
        caplog.at_level(logging.WARNING, logger="langchain_nanobanana"),
        pytest.raises(TaskFailedError) as info,
    ):
        gen.batch(["a lighthouse", "a failing one"], config={"max_concurrency": 1})
    error = info.value
    paid = set(sim.tasks)
    assert len(paid) == 2
    assert paid <= {error.task_id, *error.task_ids}, "a paid task is named nowhere"
    (first,) = [t for t in paid if t != error.task_id]
    assert first in error.task_ids and first in caplog.text  # named on the error and logged
    if mode == "sync":  # the image arrived before the failure: it is kept on the error
        results: dict[int, ImageResult] = error.results  # type: ignore[attr-defined]
        assert {i: r.task_id for i, r in results.items()} == {0: first}
    client.close()
    session.close()


# -- the client refuses what cannot work ----------------------------------------------------------


def test_a_closed_client_sends_nothing(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    client.close()
    with pytest.raises(ConfigurationError, match="closed"):
        client.generate("a cat")
    assert sim.requests == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", 0),
        ("sync_timeout", 0),
        ("poll_interval", 0),
        ("max_poll_interval", 0.0),
        ("pool_maxsize", 0),
    ],
)
def test_options_that_cannot_work_are_refused_when_built(option: str, value: float) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ConfigurationError, match=option):
        NanoBananaClient("t", base_url="http://127.0.0.1:9", **options)


def test_a_cap_below_the_first_poll_interval_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_poll_interval"):
        NanoBananaClient("t", base_url="http://127.0.0.1:9", poll_interval=5, max_poll_interval=1)


# -- fork -------------------------------------------------------------------------------------


def _child_generate(client: NanoBananaClient, out: Any) -> None:
    try:
        out.put(client.generate("a forked cat").status)
    except BaseException as exc:  # reported to the parent
        out.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_a_forked_child_gets_a_poller_of_its_own(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.3
    client = fast_client(sim, max_wait=10.0)
    assert client.generate("the parent's cat").status == "succeeded"  # the poller thread lives
    sim.task_duration = 0.3
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_child_generate, args=(client, out))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert out.get(timeout=5) == "succeeded"
    assert client.generate("the parent's second cat").status == "succeeded"
    client.close()


def test_poll_now_reads_a_watched_task_without_waiting_out_the_interval(
    sim: FakeNanoBananaServer,
) -> None:
    """``client.poll_now()`` (what ``nanobanana batch`` calls after its last submission): a
    finished task is seen at once, not a 30 s poll interval later.
    """
    sim.task_duration = 0.0
    client = fast_client(sim, poll_interval=30.0, max_poll_interval=60.0)
    task_id = client.generate("a cat", wait=False).task_id
    assert task_id
    outcomes: list[Any] = []
    client.watch([task_id], lambda _id, outcome: outcomes.append(outcome))
    client.poll_now()
    assert eventually(lambda: bool(outcomes), within=5)  # the schedule said 30 s
    assert isinstance(outcomes[0], ImageResult) and outcomes[0].status == "succeeded"
    client.close()


# -- callbacks instead of waiting threads ---------------------------------------------------------


def test_watch_calls_back_once_per_task_without_a_thread_per_waiter(
    sim: FakeNanoBananaServer,
) -> None:
    sim.task_duration = 0.1
    client = fast_client(sim)
    ids = [client.generate(f"cat {n}", wait=False).task_id for n in range(20)]
    outcomes: dict[str, Any] = {}
    lock = threading.Lock()

    def record(task_id: str, outcome: Any) -> None:
        with lock:
            assert task_id not in outcomes
            outcomes[task_id] = outcome

    before = threading.active_count()
    watches = [client.watch([t], record) for t in ids if t]  # 20 waiters
    assert threading.active_count() <= before + 1  # at most the poller's own thread
    assert eventually(lambda: len(outcomes) == 20, within=15)
    assert all(isinstance(o, ImageResult) and o.status == "succeeded" for o in outcomes.values())
    assert all(w.done for w in watches)
    client.close()


def test_watch_times_out_at_its_own_deadline_and_cancel_stops_it(
    sim: FakeNanoBananaServer,
) -> None:
    sim.task_duration = 60.0
    client = fast_client(sim)
    slow = client.generate("slow", wait=False).task_id
    other = client.generate("other", wait=False).task_id
    assert slow and other
    got: list[Any] = []
    client.watch([slow], lambda t, o: got.append(o), max_wait=0.3)
    cancelled: list[Any] = []
    handle = client.watch([other], lambda t, o: cancelled.append(o), max_wait=0.3)
    handle.cancel()
    assert eventually(lambda: len(got) == 1, within=5)
    assert isinstance(got[0], TaskTimeoutError) and got[0].task_id == slow
    assert cancelled == []
    client.close()


def test_closing_the_client_ends_every_watch_with_its_task(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60.0
    client = fast_client(sim)
    task_id = client.generate("slow", wait=False).task_id
    assert task_id
    got: list[Any] = []
    client.watch([task_id], lambda t, o: got.append((t, o)))
    client.close()
    assert eventually(lambda: len(got) == 1)
    assert got[0][0] == task_id and task_id in str(got[0][1])


@pytest.mark.parametrize("status", [400, 402, 403, 429])
def test_a_refusal_that_names_a_task_does_not_free_the_journal_key(
    sim: FakeNanoBananaServer, tmp_path: Any, status: int
) -> None:
    body = {"success": False, "task_id": "named-task", "error": {"code": "x", "message": "no"}}
    sim.inject_fault("body", path=SUBMIT, status=status, body=body)
    client = fast_client(sim, journal=str(tmp_path / "j.sqlite"), max_retries=0)
    with pytest.raises(Exception) as info:
        client.generate("a cat", idempotency_key="k1")
    assert getattr(info.value, "task_id", None) == "named-task"
    assert getattr(info.value, "billed", None) == "maybe"
    assert getattr(info.value, "retryable", None) is False
    # the key was not freed: the same key does not pay again, it polls the named task
    before = len(sim.requests_to(SUBMIT))
    again = client.generate("a cat", idempotency_key="k1", wait=False)
    assert again.task_id == "named-task" and again.status == "pending"
    assert len(sim.requests_to(SUBMIT)) == before
    client.close()


def test_busy_wait_zero_defers_at_once_while_another_caller_holds_the_key(
    sim: FakeNanoBananaServer, tmp_path: Any
) -> None:
    from langchain_nanobanana.journal import IdempotencyKeyBusyError

    sim.submit_latency = 1.5  # the first caller's POST is in flight for 1.5 s
    client = fast_client(sim, journal=str(tmp_path / "j.sqlite"))

    def first_caller() -> None:
        client.generate("a cat", idempotency_key="k", wait=False)

    first = threading.Thread(target=first_caller)
    first.start()
    assert eventually(lambda: len(sim.requests_to(SUBMIT)) == 1)
    assert first.is_alive()
    request = build_request("generate", "a cat")
    with pytest.raises(IdempotencyKeyBusyError):
        client.submit(request, wait=False, idempotency_key="k", busy_wait=0)
    first.join()
    assert len(sim.requests_to(SUBMIT)) == 1  # the deferred caller sent nothing
    again = client.submit(request, wait=False, idempotency_key="k", busy_wait=0)
    assert again.task_id in sim.tasks  # the owner's task, now recorded
    client.close()


def test_watch_with_an_executor_journals_and_calls_back_off_the_pollers_thread(
    sim: FakeNanoBananaServer, tmp_path: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sim.task_duration = 0.1
    client = fast_client(sim, journal=str(tmp_path / "j.sqlite"))
    results = [client.generate(f"cat {n}", idempotency_key=f"k{n}", wait=False) for n in range(5)]
    threads: list[str] = []

    def record(task_id: str, outcome: Any) -> None:
        threads.append(threading.current_thread().name)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mine") as pool:
        for result in results:
            assert result.task_id
            client.watch([result.task_id], record, executor=pool)
        assert eventually(lambda: len(threads) == 5, within=15)
    assert all(name.startswith("mine") for name in threads), threads
    journal = client.journal
    assert journal is not None
    for n in range(5):  # each outcome was journaled before its callback
        entry = journal.get(client.base_url, f"k{n}")
        assert entry is not None and entry.state == "succeeded"
    client.close()
