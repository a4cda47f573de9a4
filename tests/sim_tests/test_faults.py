"""Fault injection end to end: the simulator misbehaves, nothing mocks ``requests``.

Never pay twice: a submission that may have been processed is never resent, and the error says so
with whatever ids are known. Never lose a result: faults while polling are retried (urllib3 first,
then the poll loop) until the images arrive, and a poll that gives up keeps the ``task_id`` so that
``poll_task`` resumes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import cast

import pytest

from langchain_nanobanana import (
    APIConnectionError,
    APIResponseValidationError,
    ImageResult,
    NanoBananaAPIError,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
    NanoBananaTaskTool,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana.runnables import ImageGeneratorInput
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import eventually, fast_client, invoke_tool, tool_call_input

SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


# -- faults on the billable submission: never retried --------------------------------------------


@pytest.mark.parametrize(
    ("kind", "snippet"),
    [
        ("500", "Internal server error."),
        ("503", "Service temporarily unavailable."),
        ("502", "502 Bad Gateway"),  # nginx HTML page
        ("html", "Internal Server Error"),  # HTML 500 page
    ],
)
def test_submission_5xx_raises_uncertain_once(
    sim: FakeNanoBananaServer, kind: str, snippet: str
) -> None:
    sim.inject_fault(kind, path=SUBMIT)
    with pytest.raises(SubmissionUncertainError) as info:
        fast_client(sim, max_retries=3).generate("a red kite")
    error = info.value
    assert len(sim.requests_to(SUBMIT)) == 1  # exactly one submission: no retry
    text = str(error)
    assert "may have run" in text and "do not resubmit" in text
    assert snippet in text  # what the server said (the HTML page's title too)
    cause = error.__cause__
    assert isinstance(cause, ServerError)
    assert cause.status_code == (500 if kind == "html" else int(kind))
    if kind in ("500", "503"):  # a JSON error body: code and trace_id kept
        assert cause.code == "api_error"
        assert error.trace_id and error.trace_id == cause.trace_id and error.trace_id in text
    else:  # an HTML page: status and a short snippet, never a JSONDecodeError
        assert cause.code is None
        assert isinstance(cause.body, str) and snippet in cause.body and len(cause.body) <= 200


@pytest.mark.parametrize("create_task", [True, False])
def test_connection_dropped_after_send_is_not_retried(
    sim: FakeNanoBananaServer, create_task: bool
) -> None:
    sim.inject_fault("drop", path=SUBMIT, create_task=create_task)
    with pytest.raises(SubmissionUncertainError) as info:
        fast_client(sim, max_retries=3).generate("a red kite")
    assert len(sim.requests_to(SUBMIT)) == 1
    # The simulator really ran it when create_task=True: a resend would have paid twice.
    assert len(sim.tasks) == (1 if create_task else 0)
    assert "may have run" in str(info.value) and "look the task up" in str(info.value)


def test_sync_mode_read_timeout_is_uncertain_and_the_task_ran(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("timeout", path=SUBMIT, retry_after="0.8")  # answers after 0.8 s
    client = fast_client(sim, mode="sync", sync_timeout=0.2, max_retries=3)
    with pytest.raises(SubmissionUncertainError) as info:
        client.generate("a red kite")
    assert "ReadTimeout" in str(info.value) and "may have run" in str(info.value)
    assert info.value.task_id is None  # nothing is known: the answer never arrived
    assert len(sim.requests_to(SUBMIT)) == 1
    assert eventually(lambda: len(sim.tasks) == 1)  # ...and the generation did run


def test_poll_mode_read_timeout_on_submission_is_not_retried(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("timeout", path=SUBMIT, retry_after="0.8")
    with pytest.raises(SubmissionUncertainError):
        fast_client(sim, timeout=0.2, max_retries=3).generate("a red kite")
    assert len(sim.requests_to(SUBMIT)) == 1
    assert eventually(lambda: len(sim.tasks) == 1)


def test_sync_mode_failed_generation_is_read_back_not_lost(sim: FakeNanoBananaServer) -> None:
    """A sync-mode 500 that names its task: the client reads the task (never resubmits) and
    reports the task's own failure, as poll mode does."""
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")
    client = fast_client(sim, mode="sync")
    with pytest.raises(TaskFailedError) as info:
        client.generate("a red kite")
    (task_id,) = sim.tasks
    assert info.value.task_id == task_id
    assert info.value.code == "content_policy"
    assert info.value.trace_id == sim.tasks[task_id]["trace_id"]
    assert task_id in str(info.value)
    assert len(sim.requests_to(SUBMIT)) == 1
    assert [r.json for r in sim.requests_to(TASKS)] == [{"action": "retrieve", "id": task_id}]


def test_sync_mode_500_with_unreadable_task_keeps_task_id(sim: FakeNanoBananaServer) -> None:
    """When the task named by a 5xx cannot be read either, the error keeps its ids and says
    the generation may have run."""
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")
    sim.inject_fault("500", path=TASKS, count=5)
    client = fast_client(sim, mode="sync", max_retries=0)
    with pytest.raises(SubmissionUncertainError) as info:
        client.generate("a red kite")
    (task_id,) = sim.tasks
    assert info.value.task_id == task_id
    assert info.value.trace_id == sim.tasks[task_id]["trace_id"]
    assert task_id in str(info.value) and "may have run" in str(info.value)
    assert len(sim.requests_to(SUBMIT)) == 1
    # Nothing lost: the known id finds the task and its failure once reads work again.
    sim.clear_faults()
    record = client.get_task(task_id)
    assert record.status == "failed"
    assert record.result is not None and record.result.error is not None
    assert record.result.error.code == "content_policy"


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
def test_unreadable_2xx_on_submission(sim: FakeNanoBananaServer, kind: str) -> None:
    """A malformed body is an answer we cannot read (``APIResponseValidationError``, status and
    snippet kept); a truncated one never fully arrived (``SubmissionUncertainError``). Both say
    the generation may have run, and neither is ever resent."""
    sim.inject_fault(kind, path=SUBMIT)
    with pytest.raises((APIResponseValidationError, SubmissionUncertainError)) as info:
        fast_client(sim, max_retries=3).generate("a red kite")
    error = info.value
    if kind == "malformed":
        assert isinstance(error, APIResponseValidationError)
        assert error.status_code == 200 and "not JSON" in str(error)
        assert error.body == '{"success": tru'
    else:
        assert isinstance(error, SubmissionUncertainError)
        assert "truncated" in str(error) and "HTTP 200" in str(error)
    assert "may have run" in str(error)  # the simulator processed it: tell the user
    assert len(sim.requests_to(SUBMIT)) == 1
    assert len(sim.tasks) == 1


@pytest.mark.parametrize("kind", ["malformed", "truncated", "html"])
def test_unreadable_task_read_is_a_typed_error(sim: FakeNanoBananaServer, kind: str) -> None:
    client = fast_client(sim, max_retries=0)
    pending = client.generate("a red kite", wait=False)
    assert pending.task_id is not None
    sim.inject_fault(kind, path=TASKS)
    with pytest.raises((NanoBananaAPIError, APIConnectionError)) as info:
        client.get_task(pending.task_id)
    error = info.value
    assert error.task_id == pending.task_id
    assert pending.task_id in str(error)
    if kind == "truncated":  # the answer never fully arrived: a transport failure
        assert isinstance(error, APIConnectionError) and "truncated" in str(error)
    else:
        assert isinstance(error, NanoBananaAPIError)
        assert type(error) is (ServerError if kind == "html" else APIResponseValidationError)
        assert error.status_code == (500 if kind == "html" else 200)
        assert isinstance(error.body, str) and len(error.body) <= 200


# -- faults while polling: retried, the result arrives -------------------------------------------


@pytest.mark.parametrize(
    "kind", ["500", "502", "503", "429", "html", "drop", "malformed", "truncated"]
)
def test_faults_while_polling_never_lose_the_task(sim: FakeNanoBananaServer, kind: str) -> None:
    # More faults than max_retries: urllib3 gives up, and the poll loop carries on (an
    # unreadable answer at most twice in a row: the third ends the wait, see below).
    count = 2 if kind == "malformed" else 4
    sim.inject_fault(kind, count=count, path=TASKS)
    result = fast_client(sim, max_retries=1).generate("a red kite")
    assert result.status == "succeeded" and len(result.urls) == 1
    assert len(sim.requests_to(SUBMIT)) == 1
    assert result.task_id in sim.tasks
    faults = [r.fault for r in sim.requests_to(TASKS)]
    assert faults[:count] == [kind] * count and faults[-1] is None


def test_an_answer_unreadable_three_times_in_a_row_ends_the_wait_with_the_task_id(
    sim: FakeNanoBananaServer,
) -> None:
    sim.inject_fault("malformed", count=10, path=TASKS)
    client = fast_client(sim, max_retries=0, max_wait=60.0)
    started = time.monotonic()
    with pytest.raises(APIResponseValidationError) as info:
        client.generate("a red kite")
    (task_id,) = sim.tasks
    assert info.value.task_id == task_id and info.value.billed == "yes"
    assert len(sim.requests_to(TASKS)) == 3  # three reads, then the error: not max_wait
    assert time.monotonic() - started < 30.0


@pytest.mark.parametrize("kind", ["503", "drop", "malformed"])
async def test_faults_while_polling_async(sim: FakeNanoBananaServer, kind: str) -> None:
    sim.inject_fault(kind, count=2 if kind == "malformed" else 3, path=TASKS)
    result = await fast_client(sim, max_retries=1).agenerate("a red kite")
    assert result.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 1


def test_poll_timeout_keeps_task_id_and_poll_task_resumes(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60.0
    client = fast_client(sim, max_wait=0.3)
    with pytest.raises(TaskTimeoutError) as info:
        client.generate("a red kite")
    error = info.value
    (task_id,) = sim.tasks
    assert error.task_id == task_id and error.waited >= 0.3
    assert f"poll_task({task_id!r})" in str(error)
    sim.complete_task(task_id)
    result = client.poll_task(error.task_id)
    assert result.status == "succeeded" and result.task_id == task_id
    assert len(sim.requests_to(SUBMIT)) == 1  # resumed, never resubmitted


async def test_poll_timeout_resumes_async(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60.0
    client = fast_client(sim, max_wait=0.3)
    with pytest.raises(TaskTimeoutError) as info:
        await client.agenerate("a red kite")
    task_id = info.value.task_id
    assert task_id is not None
    sim.complete_task(task_id)
    result = await client.apoll_task(task_id)
    assert result.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 1


def test_persistent_poll_faults_end_in_timeout_with_cause(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim, max_retries=0, max_wait=0.4)
    pending = client.generate("a red kite", wait=False)
    assert pending.task_id is not None
    sim.inject_fault("503", count=1000, path=TASKS)
    with pytest.raises(TaskTimeoutError) as info:
        client.poll_task(pending.task_id)
    assert info.value.task_id == pending.task_id
    assert isinstance(info.value.__cause__, ServerError)  # why it could not finish
    assert info.value.__cause__.status_code == 503
    sim.clear_faults()  # the outage ends (the simulator has no public "clear faults")
    assert client.poll_task(pending.task_id).status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 1


def test_failed_task_raises_with_code_and_ids(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")
    with pytest.raises(TaskFailedError) as info:
        fast_client(sim).generate("a red kite")
    error = info.value
    (task_id,) = sim.tasks
    assert error.task_id == task_id
    assert error.trace_id == sim.tasks[task_id]["trace_id"]
    assert error.code == "content_policy" and error.message == "The prompt was refused."
    assert error.trace_id is not None
    text = str(error)
    assert "content_policy" in text and error.trace_id in text and task_id in text


# -- what the model and the developer see from the tools -----------------------------------------


def test_tool_failed_task_keeps_ids_for_model(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")
    message = invoke_tool(NanoBananaGenerateTool(client=fast_client(sim)), {"prompt": "a red kite"})
    (task_id,) = sim.tasks
    assert message.status == "error"
    assert isinstance(message.content, str)
    assert task_id in message.content
    assert sim.tasks[task_id]["trace_id"] in message.content
    assert "content_policy" in message.content and "refused" in message.content


def test_tool_uncertain_submission_is_raised_not_retried(sim: FakeNanoBananaServer) -> None:
    """``SubmissionUncertainError`` is raised out of the tool (SPEC Part 3: the model must not
    resubmit), with the ids and the "do not resubmit" advice for the developer."""
    sim.inject_fault("503", path=SUBMIT)
    tool = NanoBananaGenerateTool(client=fast_client(sim))
    with pytest.raises(SubmissionUncertainError) as info:
        invoke_tool(tool, {"prompt": "a red kite"})
    text = str(info.value)
    assert "may have run" in text and "do not resubmit" in text
    assert "trace_id=" in text and isinstance(info.value.__cause__, ServerError)
    assert len(sim.requests_to(SUBMIT)) == 1


def test_tool_timeout_names_the_task_tool(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60.0
    client = fast_client(sim, max_wait=0.2)
    message = invoke_tool(NanoBananaGenerateTool(client=client), {"prompt": "a red kite"})
    (task_id,) = sim.tasks
    assert message.status == "error" and isinstance(message.content, str)
    assert f"nano_banana_task(task_id={task_id!r})" in message.content
    sim.complete_task(task_id)
    found = invoke_tool(NanoBananaTaskTool(client=client), {"task_id": task_id})
    assert found.status != "error" and found.artifact is not None
    assert found.artifact.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 1


async def test_tool_failed_task_async(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="refused")
    tool = NanoBananaGenerateTool(client=fast_client(sim))
    message = await tool.ainvoke(tool_call_input(tool, {"prompt": "a kite"}, "c1"))
    (task_id,) = sim.tasks
    assert message.status == "error"
    assert task_id in message.content and sim.tasks[task_id]["trace_id"] in message.content


# -- the Runnable under faults: every item accounted for -----------------------------------------


async def test_abatch_under_faults_accounts_for_every_item(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="refused")  # the first task fails
    sim.inject_fault("429", count=2, path=SUBMIT)  # retried: not processed
    sim.inject_fault("503", count=4, path=TASKS)  # retried by urllib3, then the poll loop
    generator = NanoBananaImageGenerator(client=fast_client(sim, max_retries=2))
    prompts = [f"kite number {i}" for i in range(6)]
    inputs: list[ImageGeneratorInput] = list(prompts)
    results = cast(  # with return_exceptions=True a failed item comes back as its exception
        "list[ImageResult | Exception]",
        await generator.abatch(inputs, config={"max_concurrency": 1}, return_exceptions=True),
    )
    failed = [r for r in results if isinstance(r, TaskFailedError)]
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(failed) == 1 and len(ok) == 5
    assert failed[0].task_id in sim.tasks and failed[0].code == "content_policy"
    assert all(r.status == "succeeded" for r in ok)
    # One task per item, no duplicate from the 429 retries.
    assert len(sim.tasks) == 6
    assert sorted(t["request"]["prompt"] for t in sim.tasks.values()) == sorted(prompts)


# -- RELIABILITY.md stays true -------------------------------------------------------------------


def test_reliability_table_names_existing_tests() -> None:
    """Every row of RELIABILITY.md's tables names a test that exists (and so runs here)."""
    here = Path(__file__).parent
    doc = (here.parents[1] / "RELIABILITY.md").read_text(encoding="utf-8")
    section = doc.split("## Faults and bad inputs", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    rows = [line for line in lines[1:] if not line.startswith("| ---")]  # no header, no rule
    assert len(rows) >= 30
    for row in rows:
        refs = re.findall(r"`(test_\w+\.py)::(test_\w+)`", row)
        assert refs, f"row names no test: {row[:80]}"
        for filename, name in refs:
            source = (here / filename).read_text(encoding="utf-8")
            assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{filename}::{name}"
