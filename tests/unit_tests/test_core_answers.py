"""The core without I/O: answer classification (``_core.answers``) and the polling state
(``_core.polling``). Sockets are disabled here: every answer is built by hand.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from langchain_nanobanana import (
    APIConnectionError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ImageResult,
    InsufficientBalanceError,
    NanoBananaAPIError,
    NanoBananaError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana._core.answers import (
    Answer,
    classify_error,
    decode_object,
    parse_retry_after,
    read_acknowledgement,
    read_batch,
    read_record,
)
from langchain_nanobanana._core.polling import (
    BATCH_CHUNK,
    GROWTH,
    RoundTimer,
    WaitState,
    chunked,
    outcome_of,
    read_again,
)
from langchain_nanobanana.errors import NotFoundError, ResponseTooLargeError, on_read
from langchain_nanobanana.progress import progress_event

TRACE = "tr-1"


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> Answer:
    """An answer as the transport builds it: header names lower-cased, the body as bytes."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, {k.lower(): v for k, v in (headers or {}).items()}, raw, "https://x")


def record(task_id: str, response: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": task_id, "created_at": 1.0, "trace_id": TRACE, **extra}
    if response is not None:
        data["response"] = response
    return data


def success(task_id: str, n: int = 1) -> dict[str, Any]:
    images = [{"prompt": "p", "image_url": f"https://x/{task_id}-{i}.png"} for i in range(n)]
    return {"success": True, "task_id": task_id, "trace_id": TRACE, "data": images}


def failure(task_id: str, code: str = "bad") -> dict[str, Any]:
    return {
        "success": False,
        "task_id": task_id,
        "trace_id": TRACE,
        "error": {"code": code, "message": "no"},
    }


# -- Answer, parse_retry_after, decode_object -----------------------------------------------------


def test_answer_header_any_case_and_short_snippet() -> None:
    a = answer(429, b"\xff" * 1000 + b"x", {"Retry-After": "3"})
    assert a.header("retry-after") == a.header("RETRY-AFTER") == "3"
    assert a.header("missing") is None
    assert len(a.snippet()) <= 200  # invalid UTF-8 decoded leniently, never raises


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("-4", 0.0),
        ("NaN", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Mon, 99 Foo 2020 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(30.0)
    earlier = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0


@pytest.mark.parametrize("value", ["inf", "1e999", "Infinity"])
def test_parse_retry_after_refuses_infinity(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or math.isfinite(seconds)


@pytest.mark.parametrize(
    ("body", "problem"),
    [(b'{"success": tru', "not JSON"), (b"[" * 100_000, "too deeply nested"), (b"\xff", "JSON")],
)
def test_decode_object_unreadable(body: bytes, problem: str) -> None:
    with pytest.raises(APIResponseValidationError, match=problem) as info:
        decode_object(answer(200, body), task_id="t-1")
    assert info.value.task_id == "t-1" and info.value.status_code == 200
    assert "may have run" not in str(info.value)
    with pytest.raises(APIResponseValidationError, match="may have run"):
        decode_object(answer(200, body), billable=True)


# -- classify_error -------------------------------------------------------------------------------


def test_classify_error_by_code_then_status() -> None:
    body = {"success": False, "error": {"code": "used_up", "message": "m"}, "trace_id": TRACE}
    error = classify_error(answer(400, body), body, task_id="t-1")
    assert type(error) is InsufficientBalanceError
    assert (error.code, error.message, error.trace_id, error.task_id) == (
        "used_up",
        "m",
        TRACE,
        "t-1",
    )
    assert type(classify_error(answer(402, b""), None)) is InsufficientBalanceError
    assert type(classify_error(answer(418, b"x"), None)) is NanoBananaAPIError
    assert type(classify_error(answer(599, b"x"), None)) is ServerError
    limited = classify_error(answer(429, {}, {"Retry-After": "4"}), {})
    assert isinstance(limited, RateLimitError) and limited.retry_after == 4.0


# -- read_acknowledgement -------------------------------------------------------------------------


def test_acknowledgement_pending_and_in_line() -> None:
    pending = read_acknowledgement(
        answer(200, {"success": True, "task_id": "t-1", "trace_id": TRACE}), in_line=False
    )
    assert (pending.status, pending.task_id, pending.trace_id) == ("pending", "t-1", TRACE)
    done = read_acknowledgement(answer(200, success("t-2", 2)), in_line=True)
    assert done.status == "succeeded" and len(done.urls) == 2


def test_acknowledgement_of_a_task_that_ran_and_failed() -> None:
    """``success: false`` naming a task_id with a code of the task's own: it ran (sync mode)."""
    result = read_acknowledgement(answer(200, failure("t-3", "content_policy")), in_line=True)
    assert result.status == "failed" and result.task_id == "t-3"
    assert result.error is not None and result.error.code == "content_policy"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_acknowledgement_5xx_is_uncertain(status: int) -> None:
    body = {"success": False, "error": {"code": "api_error", "message": "m"}, "task_id": "t-4"}
    with pytest.raises(SubmissionUncertainError) as info:
        read_acknowledgement(answer(status, body), in_line=True)
    assert info.value.task_id == "t-4"  # read back once by the client, never resubmitted
    assert isinstance(info.value.__cause__, ServerError)
    assert info.value.__cause__.status_code == status


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (200, {"success": True}, "no task_id"),
        (200, {"success": True, "task_id": 5}, "no task_id"),
        (200, [1, 2], "not a JSON object"),
        (200, b'{"success": tru', "not JSON"),
        (200, b"[" * 100_000, "too deeply nested"),
        (307, b"", "not followed"),
        (308, b"<html>moved</html>", "not followed"),
        (301, b"", "not followed"),
    ],
)
def test_acknowledgement_unreadable(status: int, body: object, problem: str) -> None:
    with pytest.raises(APIResponseValidationError, match=problem) as info:
        read_acknowledgement(answer(status, body, {"Location": "https://y/"}), in_line=False)
    assert info.value.status_code == status
    assert "may have run" in str(info.value)  # a submission: look it up before resubmitting


def test_acknowledgement_in_line_with_unreadable_images() -> None:
    body = {"success": True, "task_id": "t-5", "data": [{"image_url": 7}, "junk"]}
    with pytest.raises(APIResponseValidationError, match="image_url") as info:
        read_acknowledgement(answer(200, body), in_line=True)
    assert info.value.task_id == "t-5"


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (200, {"success": False, "error": {"code": "invalid_token"}}, AuthenticationError),
        (200, {"success": False, "error": {"code": "used_up"}}, InsufficientBalanceError),
        (200, {"success": False, "error": "plain words"}, NanoBananaAPIError),
        (200, {"success": False, "error": None}, NanoBananaAPIError),
        (200, {"error": {"code": "token_mismatched", "message": "x"}}, BadRequestError),
        (400, {"success": False, "error": "bad"}, BadRequestError),
        (401, b"", AuthenticationError),
    ],
)
def test_acknowledgement_error_answers(status: int, body: object, cls: type[Exception]) -> None:
    with pytest.raises(cls) as info:
        read_acknowledgement(answer(status, body), in_line=False)
    assert type(info.value) is cls


# -- read_record ----------------------------------------------------------------------------------


def test_record_states() -> None:
    assert read_record(answer(200, record("t")), task_id="t").status == "pending"
    done = read_record(answer(200, record("t", success("t"))), task_id="t")
    assert done.status == "succeeded" and done.result is not None and done.result.urls
    failed = read_record(answer(200, record("t", failure("t"))), task_id="t")
    assert failed.status == "failed" and failed.result is not None
    # A response without images nor error: still running.
    still = read_record(answer(200, record("t", {"success": True})), task_id="t")
    assert still.status == "pending" and still.result is None


@pytest.mark.parametrize("word", ["failed", "FAILED", "error", "cancelled", "rejected"])
def test_record_failed_state_word_ends_at_once(word: str) -> None:
    rec = read_record(answer(200, record("t", state=word)), task_id="t")
    assert rec.status == "failed" and rec.result is not None
    with pytest.raises(TaskFailedError) as info:
        rec.result.raise_for_status()
    assert info.value.task_id == "t" and word.lower() in str(info.value)


def test_record_done_state_word_without_response_keeps_polling() -> None:
    rec = read_record(answer(200, record("t", state="succeeded")), task_id="t")
    assert rec.status == "pending"  # no images to return yet


def test_record_without_id_takes_the_id_asked_for() -> None:
    data = record("t")
    del data["id"]
    assert read_record(answer(200, data), task_id="t").id == "t"


@pytest.mark.parametrize(
    "body",
    [[1, 2], "a string", 5, None],
)
def test_record_not_an_object(body: object) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        read_record(answer(200, body), task_id="t")
    assert info.value.task_id == "t"


def test_record_odd_types_never_raise() -> None:
    response = {
        "success": True,
        "task_id": ["no"],
        "trace_id": 3,
        "data": [
            {"prompt": 5, "image_url": "https://x/a.png"},
            {"prompt": None, "image_url": 9},
            "junk",
            {"image_url": ""},
        ],
    }
    data = {
        "id": "t",
        "created_at": "yesterday",
        "finished_at": True,
        "request": [1],
        "trace_id": {},
    }
    data["response"] = response
    rec = read_record(answer(200, data), task_id="t")
    assert rec.status == "succeeded" and rec.result is not None
    assert rec.result.urls == ["https://x/a.png"] and rec.result.images[0].prompt is None
    assert rec.created_at is None and rec.finished_at is None and rec.request is None
    assert rec.result.task_id == "t" and rec.trace_id is None
    error = {"success": False, "error": {"code": 5, "message": {"a": 1}}}
    failed = read_record(answer(200, record("t", error)), task_id="t")
    assert failed.status == "failed" and failed.result is not None
    assert failed.result.error is not None and failed.result.error.code is None


def test_record_error_answers_keep_the_task_id() -> None:
    body = {"success": False, "error": {"code": "invalid_token", "message": "who?"}}
    with pytest.raises(AuthenticationError) as info:
        read_record(answer(200, body), task_id="t")
    assert info.value.task_id == "t" and info.value.status_code == 200
    with pytest.raises(ServerError) as server:
        read_record(answer(503, b"<html>down</html>"), task_id="t")
    assert server.value.task_id == "t"


def test_record_with_a_huge_number_is_typed() -> None:
    body = b'{"id": "t", "created_at": 1' + b"0" * 400 + b"}"
    try:
        rec = read_record(answer(200, body), task_id="t")
    except APIResponseValidationError:
        return
    assert rec.created_at is None or math.isfinite(rec.created_at)


def test_record_nested_deep_but_decodable_is_typed() -> None:
    depth = 900
    body = b'{"id": "t", "request": ' + b"[" * depth + b"]" * depth + b"}"
    json.loads(body)  # decodable: the client must read it or call it unreadable
    with contextlib.suppress(APIResponseValidationError):  # unreadable is a fine answer
        read_record(answer(200, body), task_id="t")


# -- read_batch -----------------------------------------------------------------------------------


def test_batch_reads_what_it_can() -> None:
    items: list[object] = [
        record("a"),
        record("b", success("b")),
        {"created_at": 1.0, "response": success("zzz")},  # no id: skipped, never fatal
        "junk",
        None,
        record("c", failure("c")),
        record("stranger", success("stranger")),
    ]
    found = read_batch(answer(200, {"items": items, "count": 7}), task_ids=["a", "b", "c", "d"])
    assert set(found) == {"a", "b", "c", "stranger"}  # "d" is unknown: simply absent
    statuses = {k: getattr(v, "status", None) for k, v in found.items()}
    assert statuses == {"a": "pending", "b": "succeeded", "c": "failed", "stranger": "succeeded"}


@pytest.mark.parametrize(
    "body",
    [{"count": 0}, {"items": "nope"}, {"items": {"a": 1}}, [1], b"not json", b"[" * 100_000],
)
def test_batch_without_an_items_list_is_unreadable(body: object) -> None:
    with pytest.raises(APIResponseValidationError):
        read_batch(answer(200, body), task_ids=["a"])


def test_batch_error_answer_is_classified() -> None:
    body = {"success": False, "error": {"code": "invalid_token", "message": "who?"}}
    with pytest.raises(AuthenticationError):
        read_batch(answer(200, body), task_ids=["a"])
    with pytest.raises(RateLimitError):
        read_batch(answer(429, {}, {"retry-after": "1"}), task_ids=["a"])


# -- polling: chunks, the round timer, one waiter's state -----------------------------------------


def test_chunked() -> None:
    assert list(chunked(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 50)) == []
    assert [len(c) for c in chunked(list(range(120)), BATCH_CHUNK)] == [50, 50, 20]
    assert list(chunked([1, 2], 0)) == [[1], [2]]  # a size below 1 counts as 1


def test_round_timer_grows_and_restarts() -> None:
    timer = RoundTimer(1.0, 5.0)
    assert timer.due == math.inf  # nothing joined: no round
    timer.joined(100.0)
    assert timer.due == 101.0
    delays = []
    for n in range(7):
        timer.after_round(200.0 + n, progress=False)
        delays.append(timer.delay)
    assert GROWTH == 1.5
    assert delays == pytest.approx([1.5, 2.25, 3.375, 5.0, 5.0, 5.0, 5.0])
    assert timer.due == pytest.approx(206.0 + 5.0)
    timer.after_round(300.0, progress=True)  # a task finished: back to poll_interval
    assert timer.delay == 1.0 and timer.due == 301.0
    timer.after_round(302.0, progress=False)
    timer.joined(302.5)  # a task joined: the next round within poll_interval
    assert timer.due == 303.5 and timer.delay == 1.0
    timer.joined(400.0)  # never postpones a round already due earlier
    assert timer.due == 303.5
    timer.idle()
    assert timer.due == math.inf and timer.delay == 1.0


def test_round_timer_cap_below_interval_keeps_interval() -> None:
    timer = RoundTimer(2.0, 1.0)
    timer.joined(0.0)
    for n in range(3):
        timer.after_round(float(n), progress=False)
        assert timer.delay == 2.0


def test_wait_state_bookkeeping() -> None:
    state = WaitState(["a", "b", "c", "a"], max_wait=10.0, started=100.0)
    assert state.task_ids == ["a", "b", "c"] and state.pending() == ["a", "b", "c"]
    assert state.deadline == 110.0 and state.remaining(now=104.0) == 6.0
    result = ImageResult(status="succeeded", task_id="b", images=[])
    assert state.finish("b", result) is True
    assert state.finish("b", result) is False  # once
    assert state.finish("zzz", result) is False  # not ours
    assert state.finish("c", TaskFailedError("no", task_id="c")) is True
    assert state.pending() == ["a"]
    assert state.statuses == {"a": "pending", "b": "succeeded", "c": "failed"}
    payload = state.progress()
    assert payload["round"] == 1 and state.rounds == 1
    assert (payload["pending"], payload["succeeded"], payload["failed"]) == (1, 1, 1)
    assert payload["tasks"] == state.statuses
    assert state.progress()["round"] == 2
    assert payload == {**progress_event(1, payload["elapsed"], state.statuses)}


def test_wait_state_time_out_names_each_task_with_its_last_read_error() -> None:
    state = WaitState(["a", "b"], max_wait=0.0)
    state.finish("b", ImageResult(status="succeeded", task_id="b"))
    cause = ServerError("down", status_code=503)
    timed_out = list(state.time_out({"a": cause}))
    assert [t for t, _ in timed_out] == ["a"]
    error = timed_out[0][1]
    assert isinstance(error, TaskTimeoutError) and error.task_id == "a"
    assert error.__cause__ is cause and "poll_task('a')" in str(error)
    assert state.pending() == [] and state.statuses["a"] == "failed"
    assert list(state.time_out({})) == []  # nothing left


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (APIConnectionError("x"), True),
        (ServerError("x", status_code=503), True),
        (RateLimitError("x", status_code=429), True),
        (APIResponseValidationError("x", status_code=200), True),
        (ResponseTooLargeError("x", status_code=200, limit=1), True),
        (AuthenticationError("x", status_code=401), False),
        (InsufficientBalanceError("x", status_code=402), False),
        (BadRequestError("x", status_code=400), False),
        (NotFoundError("x", status_code=404), False),
    ],
)
def test_read_again_follows_the_facts_of_a_read_error(
    error: NanoBananaError, transient: bool
) -> None:
    on_read(error)
    assert error.billed == "yes"
    assert read_again(error, 1) is transient


def test_read_again_gives_up_on_an_answer_unreadable_three_times() -> None:
    error = on_read(APIResponseValidationError("x", status_code=200))
    assert [read_again(error, n) for n in (1, 2, 3)] == [True, True, False]
    server = on_read(ServerError("x", status_code=503))
    assert read_again(server, 50) is True  # a 5xx is read again until max_wait
    assert read_again(ValueError("x"), 1) is False  # not ours: never read again
    odd = on_read(NanoBananaAPIError("x", status_code=418))  # unknown answer: three reads
    assert [read_again(odd, n) for n in (1, 2, 3)] == [True, True, False]


def test_outcome_of() -> None:
    ok = ImageResult(status="succeeded", task_id="t")
    assert outcome_of(ok) is ok
    failed = ImageResult.from_response(failure("t", "content_policy"))
    error = outcome_of(failed)
    assert isinstance(error, TaskFailedError) and error.code == "content_policy"
    assert error.task_id == "t" and error.trace_id == TRACE


def test_a_round_asked_for_at_once_during_a_round_comes_right_after_it() -> None:
    """``poll_now`` while a round reads (it took its list of tasks before the last ones
    joined): the next round is due at once, not a whole interval later.
    """
    timer = RoundTimer(1.0, 10.0)
    timer.joined(100.0)
    assert timer.due == 101.0
    timer.ask_now(100.2)
    assert timer.due == 100.2
    timer.after_round(100.4, progress=False, started=100.1)  # asked after the round started
    assert timer.due == 100.4
    timer.after_round(100.5, progress=False, started=100.45)  # nothing asked since
    assert timer.due == 100.5 + 2.25  # the schedule went on growing (x1.5 per quiet round)
    timer.ask_now(101.0)
    timer.after_round(101.2, progress=True, started=101.05)  # asked before this round began
    assert timer.due == 102.2


def test_the_first_round_is_due_an_interval_after_the_submission() -> None:
    timer = RoundTimer(1.0, 10.0)
    timer.joined(100.0, since=80.0)  # a batch that took 20 s to submit: read at once
    assert timer.due <= 100.0
    timer = RoundTimer(1.0, 10.0)
    timer.joined(100.0, since=99.7)
    assert timer.due == 100.7
