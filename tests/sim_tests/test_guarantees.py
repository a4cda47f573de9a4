"""SPEC Part 3's guarantees, one failure class at a time, through the public API on the simulator.

- Billable safety never hangs on URL matching: however the base URL is spelled, a submission
  that may have run is sent once (dropped connection, 5xx, read timeout, redirects).
- ``user:pass@`` base URLs are refused without repeating the password.
- Answers the code does not expect (missing ids, odd types, deep nesting, ``success: false`` on a
  200, ``error`` as a string or ``null``, lower-case ``retry-after``, a ``state`` word) become
  typed errors or results, never a bare ``ValueError``/``TypeError``/``RecursionError``/pydantic
  ``ValidationError``; an authentication answer ends a wait at once.
- ``max_wait`` bounds the whole wait, slow answers included.
- Big records (an edit echoing its data URIs) are read, also in batches too big for one answer.
- NaN / infinite / negative / bool numbers are refused with the field's name before any request.

(The token's unreachability from raised errors is in ``test_security.py``.)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from langchain_nanobanana import (
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ImageResult,
    NanoBananaAPIError,
    NanoBananaClient,
    NanoBananaError,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskRecord,
    TaskTimeoutError,
)
from langchain_nanobanana.client import BATCH_ANSWER_CAP
from langchain_nanobanana.testing import FakeNanoBananaServer, make_png
from tests.helpers import SIM_TOKEN, fast_client

SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"

#: What must never escape the package for an answer it did not expect.
BARE = (TypeError, AttributeError, KeyError, IndexError, RecursionError, ArithmeticError)


def submissions(sim: FakeNanoBananaServer) -> list[str]:
    """Paths of every submission POST the simulator received (any path prefix)."""
    return [r.path for r in sim.requests if r.method == "POST" and r.path.endswith(SUBMIT)]


def assert_typed(error: BaseException) -> None:
    """A typed package error, never a bare Python or pydantic error."""
    assert isinstance(error, NanoBananaError), f"{type(error).__name__}: {error}"
    assert not isinstance(error, (ValidationError, *BARE)), type(error).__mro__
    if isinstance(error, ValueError):  # only InvalidImageError is both
        assert type(error).__name__ == "InvalidImageError"


# -- one submission, whatever the base URL's spelling ---------------------------------------------

SPELLINGS = [
    "{base}/./",
    "{base}/v1/../",
    "{base}/%76%31",
    "http://LOCALHOST:{port}",
    "{base}?",
    "{base}/v1/./",
    "{base}//v1//",
    "{base}/v1/%2E%2E/v1/",
    "HTTP://LocalHost:{port}/v1?",
]


def spell(template: str, sim: FakeNanoBananaServer) -> str:
    port = sim.base_url.rsplit(":", 1)[1]
    return template.format(base=sim.base_url, port=port)


@pytest.mark.parametrize("fault", ["drop", "500"])
@pytest.mark.parametrize("template", SPELLINGS)
def test_submission_sent_once_whatever_the_spelling(
    sim: FakeNanoBananaServer, template: str, fault: str
) -> None:
    sim.path_prefix = "/v1"  # both "" and "/v1" spellings reach the API
    sim.inject_fault(fault, path=SUBMIT, count=5)
    client = fast_client(sim, base_url=spell(template, sim), max_retries=3)
    with pytest.raises(SubmissionUncertainError) as info:
        client.generate("a red kite")
    assert len(submissions(sim)) == 1, submissions(sim)
    assert "may have run" in str(info.value)
    assert len(sim.tasks) <= 1
    client.close()


@pytest.mark.parametrize("template", ["{base}", "{base}/./", "http://LOCALHOST:{port}/v1/../"])
@pytest.mark.parametrize("fault", ["307", "308"])
def test_redirected_submission_never_resent(
    sim: FakeNanoBananaServer, fault: str, template: str
) -> None:
    sim.inject_fault(fault, path=SUBMIT)  # the request was processed (billed) before the 3xx
    client = fast_client(sim, base_url=spell(template, sim), max_retries=3)
    with pytest.raises(NanoBananaAPIError) as info:
        client.generate("a red kite")
    assert info.value.status_code == int(fault) and "not followed" in str(info.value)
    assert "may have run" in str(info.value)
    assert len(submissions(sim)) == 1
    assert len(sim.tasks) == 1  # one task: the body was never re-sent
    client.close()


@st.composite
def base_url_spellings(draw: st.DrawFn) -> str:
    """A template (``{port}`` placeholder) of the simulator's URL spelled another way: scheme
    and host case, dot segments, doubled slashes, percent-encoding, a trailing ``/`` or ``?``."""
    scheme = draw(st.sampled_from(["http", "HTTP", "Http"]))
    host = draw(st.sampled_from(["127.0.0.1", "localhost", "LOCALHOST", "LocalHost"]))
    noise = st.sampled_from(["/.", "/./", "/zz/..", "//", "/%2E"])
    prefix = draw(st.sampled_from(["", "/v1", "/%76%31", "/v%31", "/V1/../v1"]))
    path = "".join(draw(st.lists(noise, max_size=2)))
    path += prefix + "".join(draw(st.lists(noise, max_size=2)))
    trailing = draw(st.sampled_from(["", "/", "?", "/?", "/./"]))
    return f"{scheme}://{host}:{{port}}{path}{trailing}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=base_url_spellings(),
    fault=st.sampled_from(["drop", "500", "503", "307", "308", "timeout"]),
)
def test_no_second_submission_for_any_spelling_and_fault(template: str, fault: str) -> None:
    """Property: for any spelling of the simulator's URL and any fault that may follow a
    processed submission, the simulator never receives a second submission."""
    with FakeNanoBananaServer(token=SIM_TOKEN, path_prefix="/v1") as sim:
        url = template.format(port=sim.base_url.rsplit(":", 1)[1])
        sim.inject_fault(fault, path=SUBMIT, count=5, retry_after="1")
        with fast_client(sim, base_url=url, max_retries=3, timeout=0.2) as client:
            with pytest.raises(NanoBananaError) as info:
                client.generate("a red kite")
            assert_typed(info.value)
            assert len(submissions(sim)) == 1, (url, fault, submissions(sim))
        assert sim.internal_errors == []


# -- userinfo in the base URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "userinfo", ["user:s3cret-pw-81@", "s3cret-pw-81@", ":s3cret-pw-81@", "a%40b:s3cret-pw-81@"]
)
def test_userinfo_base_url_refused_without_the_password(
    sim: FakeNanoBananaServer, monkeypatch: pytest.MonkeyPatch, userinfo: str
) -> None:
    url = sim.base_url.replace("://", f"://{userinfo}")
    builders: list[Callable[[], object]] = [
        lambda: NanoBananaClient(SIM_TOKEN, base_url=url),
        lambda: NanoBananaImageGenerator(api_token=SIM_TOKEN, base_url=url),
        lambda: NanoBananaGenerateTool(api_token=SIM_TOKEN, base_url=url),
    ]
    for build in builders:
        with pytest.raises(ValueError, match="user:password@") as info:
            build()
        assert "s3cret-pw-81" not in str(info.value) and "s3cret-pw-81" not in repr(info.value)
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", url)
    with pytest.raises(ValueError) as from_env:
        NanoBananaClient(SIM_TOKEN)
    assert "s3cret-pw-81" not in str(from_env.value)
    assert sim.requests == []


# -- answers the code does not expect -------------------------------------------------------------


@pytest.fixture
def finished(sim: FakeNanoBananaServer) -> Iterator[tuple[NanoBananaClient, str]]:
    """A client (no retries) and a finished task."""
    client = fast_client(sim, max_retries=0, max_wait=5.0)
    task_id = client.generate("a red kite", wait=False).task_id or ""
    yield client, task_id
    client.close()


def test_record_without_id(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    record = {k: v for k, v in sim.tasks[task_id].items() if k != "id"}
    sim.inject_fault("body", path=TASKS, body=record)
    assert client.get_task(task_id).id == task_id  # the id asked for
    sim.inject_fault("body", path=TASKS, body=record)
    assert client.poll_task(task_id).task_id == task_id


def test_prompt_not_a_string(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    record = json.loads(json.dumps(sim.tasks[task_id]))
    record["response"]["data"][0]["prompt"] = 12345
    sim.inject_fault("body", path=TASKS, body=record)
    found = client.get_task(task_id)
    assert found.status == "succeeded" and found.result is not None
    assert found.result.images[0].prompt is None and found.result.urls


def test_deeply_nested_answers(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    deep = b"[" * 100_000
    sim.inject_fault("body", path=TASKS, body=deep)
    with pytest.raises(APIResponseValidationError, match="too deeply nested") as info:
        client.get_task(task_id)
    assert info.value.task_id == task_id and info.value.status_code == 200
    sim.inject_fault("body", path=TASKS, body=deep, count=2)
    assert client.poll_task(task_id).status == "succeeded"  # unreadable reads are retried
    sim.inject_fault("body", path=SUBMIT, body=deep)
    with pytest.raises(APIResponseValidationError, match="may have run"):
        client.generate("a red kite")
    sim.inject_fault("body", path=TASKS, body=deep, status=500)
    with pytest.raises(ServerError):
        client.get_task(task_id)


def test_record_nested_deep_but_decodable(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    body = b'{"id": "%s", "request": %s}' % (task_id.encode(), b"[" * 900 + b"]" * 900)
    json.loads(body)
    sim.inject_fault("body", path=TASKS, body=body)
    try:
        client.get_task(task_id)
    except Exception as exc:
        assert_typed(exc)


def test_record_with_a_huge_integer(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    body = b'{"id": "%s", "created_at": 1%s}' % (task_id.encode(), b"0" * 400)
    sim.inject_fault("body", path=TASKS, body=body)
    try:
        client.get_task(task_id)
    except Exception as exc:
        assert_typed(exc)


def test_record_of_another_task_is_never_taken_for_this_one(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    other = json.loads(json.dumps(sim.tasks[task_id]))
    other["id"] = other["response"]["task_id"] = "someone-else"
    sim.inject_fault("body", path=TASKS, body=other)
    with pytest.raises(APIResponseValidationError):
        client.get_task(task_id)
    sim.inject_fault("body", path=TASKS, body=other)
    assert client.poll_task(task_id).task_id == task_id


ODD_RECORDS: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"42",
    b"\xff\xfe\x00garbage",
    b"{}",
    b'{"id": 5}',
    b'{"id": null, "task_id": ["x"]}',
    b'{"id": "%(id)s", "response": "x"}',
    b'{"id": "%(id)s", "response": {"success": true, "data": "x"}}',
    b'{"id": "%(id)s", "response": {"success": true, "data": [{"image_url": 5, "prompt": {}}]}}',
    b'{"id": "%(id)s", "response": {"success": false, "error": [1, 2]}}',
    b'{"id": "%(id)s", "response": {"success": false, "error": {"code": 1, "message": 2}}}',
    b'{"id": "%(id)s", "created_at": NaN, "finished_at": Infinity, "trace_id": 3}',
    b'{"id": "%(id)s", "state": 5, "status": ["failed"], "request": "x"}',
    b'{"id": "%(id)s", "response": {"success": true, "task_id": 7, "trace_id": [], "data": []}}',
    b'{"success": false, "error": "a bare string", "trace_id": "t"}',
    b'{"success": false, "error": null}',
    b'{"success": false}',
    b"[" * 100_000,
]


@pytest.mark.parametrize("body", ODD_RECORDS, ids=lambda b: b[:40].decode("latin-1"))
def test_odd_task_answers_are_typed(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str], body: bytes
) -> None:
    client, task_id = finished
    raw = body.replace(b"%(id)s", task_id.encode())
    sim.inject_fault("body", path=TASKS, body=raw)
    try:
        record = client.get_task(task_id)
    except Exception as exc:
        assert_typed(exc)
        assert getattr(exc, "task_id", task_id) == task_id
    else:
        assert isinstance(record, TaskRecord)
    sim.inject_fault("body", path=TASKS, body=raw)
    outcome = client.poll_tasks([task_id], max_wait=3.0)[0]
    if isinstance(outcome, BaseException):
        assert_typed(outcome)
    else:
        assert isinstance(outcome, ImageResult)
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):
        return
    sim.inject_fault("body", path=TASKS, body={"items": [item, "junk"], "count": 2})
    try:
        client.get_tasks([task_id, "another-id"])  # the same record as a retrieve_batch item
    except Exception as exc:
        assert_typed(exc)


ODD_ACKS: list[object] = [
    b"",
    b"null",
    b"[1]",
    b"\xff\xfe",
    {"success": True},
    {"success": True, "task_id": {"a": 1}},
    {"success": "maybe", "task_id": "t"},
    {"success": True, "task_id": "t", "data": [{"image_url": None}]},
    {"success": False, "error": "a bare string"},
    {"success": False, "error": None},
    {"success": False, "error": {"code": ["x"], "message": 5}},
    {"success": False, "task_id": "t", "error": {"code": "bad", "message": {"x": 1}}},
]


@pytest.mark.parametrize("mode", ["poll", "sync"])
@pytest.mark.parametrize("body", ODD_ACKS, ids=lambda b: repr(b)[:40])
def test_odd_submission_answers_are_typed(
    sim: FakeNanoBananaServer, body: object, mode: str
) -> None:
    client = fast_client(sim, max_retries=0, max_wait=1.0, mode=mode)
    sim.inject_fault("body", path=SUBMIT, body=body)
    try:
        client.generate("a red kite")
    except Exception as exc:
        assert_typed(exc)
    assert len(submissions(sim)) == 1
    client.close()


def test_one_id_less_item_in_a_batch_answer(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim, max_retries=0)
    ids = [client.generate(f"kite {n}", wait=False).task_id or "" for n in range(3)]
    items: list[Any] = [sim.tasks[t] for t in ids]
    anonymous = {k: v for k, v in items[1].items() if k != "id"}
    body = {"items": [items[0], anonymous, items[1], items[2]], "count": 4}
    sim.inject_fault("body", path=TASKS, body=body)
    assert [r.id for r in client.get_tasks(ids)] == ids
    sim.inject_fault("body", path=TASKS, body=body)
    results = client.poll_tasks(ids)
    assert [r.task_id for r in results] == ids
    assert all(isinstance(r, ImageResult) and r.status == "succeeded" for r in results)
    client.close()


def test_200_invalid_token_ends_the_wait_at_once(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60.0
    client = fast_client(sim, max_wait=20.0)
    ids = [client.generate(f"kite {n}", wait=False).task_id or "" for n in range(2)]
    body = {"success": False, "error": {"code": "invalid_token", "message": "who?"}}
    sim.inject_fault("body", path=TASKS, body=body)
    started = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        client.poll_task(ids[0])
    assert time.monotonic() - started < 3.0  # not polled until max_wait
    assert info.value.status_code == 200 and info.value.task_id == ids[0]
    sim.inject_fault("body", path=TASKS, body=body)
    outcomes = client.poll_tasks(ids)  # one retrieve_batch answer ends both waits
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    sim.inject_fault("body", path=SUBMIT, body=body, create_task=False)
    with pytest.raises(AuthenticationError):
        client.generate("a red kite")
    client.close()


@pytest.mark.parametrize("shape", ["string", "null", "missing"])
def test_error_as_string_or_null(sim: FakeNanoBananaServer, shape: str) -> None:
    sim.error_shape = shape  # type: ignore[assignment]
    client = fast_client(sim, max_retries=0)
    sim.inject_fault("400", path=SUBMIT)
    with pytest.raises(BadRequestError) as bad:
        client.generate("a red kite")
    assert bad.value.status_code == 400 and bad.value.trace_id
    if shape == "string":
        assert "The prompt was rejected." in str(bad.value)
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")
    with pytest.raises(TaskFailedError) as failed:
        client.generate("a red kite")
    assert failed.value.task_id in sim.tasks
    if shape == "string":
        assert "The prompt was refused." in str(failed.value)
    task_id = failed.value.task_id or ""
    sim.inject_fault("503", path=TASKS)
    with pytest.raises(ServerError) as server:
        client.get_task(task_id)
    assert server.value.task_id == task_id and server.value.status_code == 503
    client.close()


def test_lower_case_retry_after_is_honoured(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("429_lower", path=SUBMIT, retry_after="1")
    client = fast_client(sim, max_retries=1, backoff_factor=0.01)
    assert client.generate("a red kite").status == "succeeded"
    first, second = (r.time for r in sim.requests_to(SUBMIT))
    assert second - first >= 0.9  # the server's 1 s, not the 0.01 s backoff
    assert len(sim.tasks) == 1
    client.close()


def test_lower_case_retry_after_kept_when_retries_run_out(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("429_lower", path=SUBMIT, retry_after="1", count=2)
    client = fast_client(sim, max_retries=1, backoff_factor=0.01)
    with pytest.raises(RateLimitError) as info:
        client.generate("a red kite")
    assert info.value.retry_after == 1.0
    assert len(sim.requests_to(SUBMIT)) == 2 and sim.tasks == {}
    pending = client.generate("a red kite", wait=False).task_id or ""
    sim.inject_fault("429_lower", path=TASKS, retry_after="3", count=2)
    with pytest.raises(RateLimitError) as read:
        fast_client(sim, max_retries=0).get_task(pending)
    assert read.value.retry_after == 3.0 and read.value.task_id == pending
    client.close()


@pytest.mark.parametrize("state_words", [False, True])
def test_failed_state_word_ends_at_once(sim: FakeNanoBananaServer, state_words: bool) -> None:
    sim.state_words = state_words
    sim.fail_next_tasks(1, state_only=True)
    client = fast_client(sim, max_wait=20.0)
    started = time.monotonic()
    with pytest.raises(TaskFailedError) as info:
        client.generate("a red kite")
    assert time.monotonic() - started < 3.0
    (task_id,) = sim.tasks
    assert info.value.task_id == task_id and "failed" in str(info.value)
    assert "response" not in sim.tasks[task_id]  # only the state word said so
    client.close()


def test_redirect_on_a_task_read_is_not_followed_and_polling_goes_on(
    sim: FakeNanoBananaServer, finished: tuple[NanoBananaClient, str]
) -> None:
    client, task_id = finished
    sim.inject_fault("307", path=TASKS)
    with pytest.raises(APIResponseValidationError) as info:
        client.get_task(task_id)
    assert info.value.status_code == 307 and info.value.task_id == task_id
    assert len(sim.requests_to(TASKS)) == 1
    sim.inject_fault("308", path=TASKS, count=2)
    assert client.poll_task(task_id).status == "succeeded"


# -- max_wait bounds the whole wait ---------------------------------------------------------------


def test_max_wait_bounds_a_slow_answer(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    sim.task_duration = 60.0
    task_id = client.generate("a red kite", wait=False).task_id or ""
    sim.inject_fault("slow", path=TASKS, retry_after="10", count=20)
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError) as info:
        client.poll_task(task_id, max_wait=1)
    elapsed = time.monotonic() - started
    assert elapsed <= 2.5, elapsed  # a correctness bound, not a benchmark
    assert info.value.task_id == task_id and info.value.waited >= 1.0
    client.close()


async def test_max_wait_bounds_a_slow_answer_async(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim, max_wait=1.0)
    sim.task_duration = 60.0
    sim.inject_fault("slow", path=TASKS, retry_after="10", count=20)
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError):
        await client.agenerate("a red kite")  # the client's max_wait
    assert time.monotonic() - started <= 2.5
    assert len(submissions(sim)) == 1
    client.close()


# -- big records ----------------------------------------------------------------------------------


PADDING = 40 * 2**20


@pytest.fixture
def padded(sim: FakeNanoBananaServer) -> Iterator[NanoBananaClient]:
    """Every record answer grows by 40 MiB (an edit echoing its data URIs)."""
    sim.record_padding = PADDING
    client = fast_client(sim, max_retries=0, timeout=60.0)
    yield client
    client.close()


def test_an_edit_whose_record_is_over_32_mib(
    sim: FakeNanoBananaServer, padded: NanoBananaClient
) -> None:
    result = padded.edit("add a bow tie", [make_png(8, 8)])
    assert result.status == "succeeded" and result.urls
    assert len(submissions(sim)) == 1


def test_a_batch_too_big_for_one_answer_falls_back_to_smaller_chunks(
    sim: FakeNanoBananaServer, padded: NanoBananaClient
) -> None:
    assert 3 * PADDING > BATCH_ANSWER_CAP  # the premise: three records do not fit one answer
    ids = [
        padded.edit(f"bow tie {n}", [make_png(8, 8)], wait=False).task_id or "" for n in range(3)
    ]
    records = padded.get_tasks(ids)
    assert [r.id for r in records] == ids and all(r.status == "succeeded" for r in records)
    reads = [r.json for r in sim.requests_to(TASKS) if isinstance(r.json, dict)]
    assert reads[0] == {"action": "retrieve_batch", "ids": ids}  # tried whole first
    assert len(reads) > 1  # then smaller chunks
    sim.clear_requests()
    outcomes = padded.poll_tasks(ids)
    assert all(isinstance(o, ImageResult) and o.status == "succeeded" for o in outcomes)


# -- NaN and friends are refused before any request -----------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "max_wait",
        "poll_interval",
        "max_poll_interval",
        "max_retries",
        "timeout",
        "sync_timeout",
        "backoff_factor",
    ],
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -1, True])
def test_bad_numbers_refused_at_construction(
    sim: FakeNanoBananaServer, field: str, value: object
) -> None:
    options: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field):
        NanoBananaClient(SIM_TOKEN, base_url=sim.base_url, **options)
    assert sim.requests == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_bad_max_wait_refused_before_any_request(sim: FakeNanoBananaServer, value: float) -> None:
    client = fast_client(sim)
    with pytest.raises(ValueError, match="max_wait"):
        client.poll_task("some-task", max_wait=value)
    with pytest.raises(ValueError, match="max_wait"):
        client.poll_tasks(["some-task"], max_wait=value)
    with pytest.raises(ValueError, match="max_wait"):
        list(client.iter_outcomes(["some-task"], max_wait=value))
    with pytest.raises(ValueError, match="max_wait"):
        asyncio.run(client.apoll_task("some-task", max_wait=value))
    assert sim.requests == []
    client.close()
