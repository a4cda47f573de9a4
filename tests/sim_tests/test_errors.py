"""The exception tree and ``error_from_response`` (seed 000 error table), unit and over HTTP."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from langchain_nanobanana import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    InvalidImageError,
    NanoBananaAPIError,
    NanoBananaClient,
    NanoBananaError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana.errors import error_from_response
from langchain_nanobanana.testing import FakeNanoBananaServer

TRACE = "6f2b0f8e-1111-4c3a-9d5e-5a0cbb2e8e41"
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
    "</html>\r\n"
)


def api_body(code: str, message: str, **extra: Any) -> str:
    return json.dumps(
        {"success": False, "error": {"code": code, "message": message}, "trace_id": TRACE, **extra}
    )


def test_hierarchy() -> None:
    for cls in (BadRequestError, AuthenticationError, RateLimitError, ServerError):
        assert issubclass(cls, NanoBananaAPIError)
    for base in (
        NanoBananaAPIError,
        APIConnectionError,
        SubmissionUncertainError,
        TaskFailedError,
        TaskTimeoutError,
        InvalidImageError,
    ):
        assert issubclass(base, NanoBananaError)
    assert issubclass(InvalidImageError, ValueError)
    assert issubclass(NanoBananaError, Exception)


@pytest.mark.parametrize(
    ("status", "code", "message", "cls"),
    [
        (400, "token_mismatched", "Invalid value for 'aspect_ratio'.", BadRequestError),
        (400, "api_not_implemented", "API not implemented.", BadRequestError),
        (401, "invalid_token", "Invalid or missing token.", AuthenticationError),
        (429, "too_many_requests", "Too many requests.", RateLimitError),
        (500, "api_error", "Internal server error.", ServerError),
        (503, "api_error", "Service temporarily unavailable.", ServerError),
        (404, "not_found", "Task 'x' not found.", NanoBananaAPIError),
    ],
)
def test_documented_errors(
    status: int, code: str, message: str, cls: type[NanoBananaAPIError]
) -> None:
    error = error_from_response(status, api_body(code, message))
    assert type(error) is cls
    assert error.status_code == status and error.code == code and error.message == message
    assert error.trace_id == TRACE and error.task_id is None
    assert error.body == json.loads(api_body(code, message))
    text = str(error)
    for part in (message, f"HTTP {status}", f"code={code}", f"trace_id={TRACE}"):
        assert part in text


def test_task_id_from_body_or_argument() -> None:
    assert error_from_response(500, api_body("api_error", "x", task_id="t-1")).task_id == "t-1"
    error = error_from_response(400, api_body("token_mismatched", "x"), task_id="t-2")
    assert error.task_id == "t-2" and "task_id=t-2" in str(error)


def test_429_retry_after_seconds() -> None:
    error = error_from_response(
        429, api_body("too_many_requests", "slow down"), headers={"Retry-After": "7"}
    )
    assert isinstance(error, RateLimitError) and error.retry_after == 7.0
    no_header = error_from_response(429, api_body("too_many_requests", "x"))
    assert isinstance(no_header, RateLimitError) and no_header.retry_after is None
    junk = error_from_response(429, "{}", headers={"Retry-After": "soon"})
    assert isinstance(junk, RateLimitError) and junk.retry_after is None


def test_429_retry_after_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    error = error_from_response(
        429,
        api_body("too_many_requests", "x"),
        headers={"Retry-After": format_datetime(when, True)},
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None and 25 <= error.retry_after <= 31
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), True)
    late = error_from_response(429, "{}", headers={"Retry-After": past})
    assert isinstance(late, RateLimitError) and late.retry_after == 0.0


def test_502_html_page() -> None:
    error = error_from_response(502, HTML_502)
    assert isinstance(error, ServerError)
    assert error.status_code == 502 and error.code is None and error.trace_id is None
    assert isinstance(error.body, str) and error.body == HTML_502[:200]
    assert "502 Bad Gateway" in str(error) and "HTTP 502" in str(error)


@pytest.mark.parametrize(
    "body",
    ["<html>" + "x" * 5000 + "</html>", '{"success": tru' + "e" * 900, "", "\x00\xff" * 300],
)
def test_non_json_keeps_a_short_snippet(body: str) -> None:
    error = error_from_response(500, body)
    assert isinstance(error.body, str) and len(error.body) <= 200
    assert error.body == body[:200]
    assert repr(body[:200]) in error.message and len(error.message) < 900
    assert not isinstance(error, json.JSONDecodeError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"success": false, "error": "plain text error", "trace_id": "t"}', "plain text error"),
        ('{"success": false}', "without an error object"),
        ("[1, 2]", "non-JSON"),
        ('{"error": {"code": 5, "message": null}}', "HTTP 400 error"),
    ],
)
def test_odd_json_shapes(body: str, message: str) -> None:
    error = error_from_response(400, body)
    assert isinstance(error, BadRequestError) and message in str(error)


def test_error_messages_name_code_and_trace_for_task_errors() -> None:
    failed = TaskFailedError("Blocked.", task_id="t-9", trace_id=TRACE, code="content_blocked")
    assert (
        str(failed)
        == f"Task failed: Blocked. (code=content_blocked, task_id=t-9, trace_id={TRACE})"
    )
    timeout = TaskTimeoutError("t-9", waited=12.34, trace_id=TRACE)
    assert "t-9" in str(timeout) and "12.3 s" in str(timeout) and "poll_task('t-9')" in str(timeout)
    assert TRACE in str(timeout)
    uncertain = SubmissionUncertainError("No answer", task_id="t-9", trace_id=TRACE)
    assert "do not resubmit" in str(uncertain) and "task_id=t-9" in str(uncertain)
    assert "No answer" in str(SubmissionUncertainError("No answer"))
    connection = APIConnectionError("Could not connect", task_id="t-9")
    assert str(connection) == "Could not connect (task_id=t-9)"


@pytest.mark.parametrize(
    "error",
    [
        error_from_response(400, api_body("token_mismatched", "bad"), task_id="t-1"),
        error_from_response(401, api_body("invalid_token", "who?")),
        error_from_response(429, api_body("too_many_requests", "x"), headers={"Retry-After": "3"}),
        error_from_response(500, api_body("api_error", "x")),
        error_from_response(502, HTML_502),
        NanoBananaAPIError("odd", status_code=418, code="teapot", trace_id=TRACE, body={"a": 1}),
        TaskFailedError("Blocked.", task_id="t-9", trace_id=TRACE, code="content_blocked"),
        TaskTimeoutError("t-9", waited=3.5, trace_id=TRACE),
        SubmissionUncertainError("No answer", task_id="t-9", trace_id=TRACE),
        APIConnectionError("Could not connect", task_id="t-9"),
        InvalidImageError("image_urls[0]: bad"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_pickle_round_trip_keeps_attributes(error: NanoBananaError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)
    assert copy.args == error.args


def test_rate_limit_pickle_keeps_retry_after() -> None:
    error = error_from_response(429, "{}", headers={"Retry-After": "9"})
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, RateLimitError) and copy.retry_after == 9.0


# -- the same mapping, end to end over HTTP ------------------------------------------------------
@pytest.fixture
def strict_client(sim: FakeNanoBananaServer) -> NanoBananaClient:
    """No retries, so each injected fault is the final answer."""
    return NanoBananaClient(sim.token, base_url=sim.base_url, max_retries=0, poll_interval=0.02)


@pytest.mark.parametrize(
    ("fault", "cls", "code"),
    [
        ("429", RateLimitError, "too_many_requests"),
        ("500", ServerError, "api_error"),
        ("503", ServerError, "api_error"),
        ("502", ServerError, None),
        ("html", ServerError, None),
    ],
)
def test_task_read_errors_over_http(
    strict_client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    fault: str,
    cls: type[NanoBananaAPIError],
    code: str | None,
) -> None:
    task_id = strict_client.generate("x", wait=False).task_id or ""
    sim.inject_fault(fault, path="/nano-banana/tasks", retry_after="4")
    with pytest.raises(cls) as info:
        strict_client.get_task(task_id)
    error = info.value
    assert error.code == code and error.task_id == task_id and task_id in str(error)
    if code is None:  # an HTML page: a short snippet, never a JSONDecodeError
        assert isinstance(error.body, str) and 0 < len(error.body) <= 200
        assert "<" in str(error)
    else:
        assert error.trace_id and error.trace_id in str(error)
    if isinstance(error, RateLimitError):
        assert error.retry_after == 4.0


def test_bad_request_from_the_api(strict_client: NanoBananaClient) -> None:
    with pytest.raises(BadRequestError) as info:
        strict_client.get_task("")  # the API requires a non-empty id
    assert info.value.code == "token_mismatched" and info.value.trace_id


def test_submission_5xx_is_uncertain_not_retried(
    sim: FakeNanoBananaServer, strict_client: NanoBananaClient
) -> None:
    sim.inject_fault("500", path="/nano-banana/images")
    with pytest.raises(SubmissionUncertainError) as info:
        strict_client.generate("x")
    cause = info.value.__cause__
    assert isinstance(cause, ServerError) and cause.code == "api_error"
    assert info.value.trace_id == cause.trace_id and str(cause.trace_id) in str(info.value)
    assert len(sim.requests_to("/nano-banana/images")) == 1


def test_malformed_success_body(sim: FakeNanoBananaServer, strict_client: NanoBananaClient) -> None:
    task_id = strict_client.generate("x", wait=False).task_id or ""
    sim.inject_fault("malformed", path="/nano-banana/tasks")
    with pytest.raises(NanoBananaAPIError) as info:
        strict_client.get_task(task_id)
    assert info.value.status_code == 200 and info.value.body == '{"success": tru'
    assert not isinstance(info.value, json.JSONDecodeError)
