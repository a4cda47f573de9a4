"""The exception tree and answer classification (``_core.answers.classify_error``; seed 000's
error table and the vendor SDK's map), pure and over HTTP."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from langchain_nanobanana import (
    SAFE_TO_RETRY,
    APIConnectionError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ContentModerationError,
    InsufficientBalanceError,
    InvalidImageError,
    NanoBananaAPIError,
    NanoBananaClient,
    NanoBananaError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana._core.answers import Answer, classify_error
from langchain_nanobanana.errors import NotFoundError, attach_task_ids
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


def classify(
    status: int,
    body: str,
    *,
    headers: dict[str, str] | None = None,
    task_id: str | None = None,
) -> NanoBananaAPIError:
    """What ``classify_error`` makes of an answer, as the transport hands it over (header
    names lower-cased, the body as bytes, decoded leniently)."""
    raw = body.encode("utf-8", "surrogatepass")
    answer = Answer(status, {k.lower(): v for k, v in (headers or {}).items()}, raw, "https://x")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    return classify_error(answer, data, task_id=task_id)


def test_hierarchy() -> None:
    for cls in (
        BadRequestError,
        AuthenticationError,
        InsufficientBalanceError,
        PermissionDeniedError,
        RateLimitError,
        ServerError,
        APIResponseValidationError,
    ):
        assert issubclass(cls, NanoBananaAPIError)
    assert issubclass(ContentModerationError, PermissionDeniedError)
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
    # Only errors after which nothing was billed are safe to retry blindly.
    assert set(SAFE_TO_RETRY) == {RateLimitError, APIConnectionError}
    for billed_or_running in (ServerError, SubmissionUncertainError, TaskFailedError):
        assert not issubclass(billed_or_running, SAFE_TO_RETRY)
    assert not issubclass(TaskTimeoutError, SAFE_TO_RETRY)


@pytest.mark.parametrize(
    ("status", "code", "message", "cls"),
    [
        (400, "token_mismatched", "Invalid value for 'aspect_ratio'.", BadRequestError),
        (400, "api_not_implemented", "API not implemented.", BadRequestError),
        (401, "invalid_token", "Invalid or missing token.", AuthenticationError),
        (401, "token_expired", "Token expired.", AuthenticationError),
        (401, "no_token", "No token.", AuthenticationError),
        (402, "used_up", "Balance used up.", InsufficientBalanceError),
        (403, "disabled", "Disabled.", PermissionDeniedError),
        (403, "content_blocked", "Refused by moderation.", ContentModerationError),
        (429, "too_many_requests", "Too many requests.", RateLimitError),
        (500, "api_error", "Internal server error.", ServerError),
        (503, "api_error", "Service temporarily unavailable.", ServerError),
        (404, "not_found", "Task 'x' not found.", NotFoundError),
        # error.code first, then the status (vendor SDK)
        (400, "used_up", "Balance used up.", InsufficientBalanceError),
        (500, "invalid_token", "Who?", AuthenticationError),
        (200, "invalid_token", "Who?", AuthenticationError),
        (418, "too_many_requests", "Slow down.", RateLimitError),
    ],
)
def test_documented_errors(
    status: int, code: str, message: str, cls: type[NanoBananaAPIError]
) -> None:
    error = classify(status, api_body(code, message))
    assert type(error) is cls
    assert error.status_code == status and error.code == code and error.message == message
    assert error.trace_id == TRACE and error.task_id is None
    assert error.body == json.loads(api_body(code, message))
    text = str(error)
    for part in (message, f"HTTP {status}", f"code={code}", f"trace_id={TRACE}"):
        assert part in text


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientBalanceError),
        (403, ContentModerationError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (504, ServerError),
        (404, NotFoundError),
        (409, NanoBananaAPIError),
    ],
)
def test_status_decides_without_a_known_code(status: int, cls: type[NanoBananaAPIError]) -> None:
    for body in ('{"success": false}', '{"error": {"code": "who-knows"}}', "", "<html>x</html>"):
        error = classify(status, body)
        assert type(error) is cls, body
        assert error.status_code == status


def test_task_id_from_body_or_argument() -> None:
    assert classify(500, api_body("api_error", "x", task_id="t-1")).task_id == "t-1"
    error = classify(400, api_body("token_mismatched", "x"), task_id="t-2")
    assert error.task_id == "t-2" and "task_id=t-2" in str(error)
    # the caller's id wins over the body's
    assert classify(500, api_body("api_error", "x", task_id="t-1"), task_id="t-3").task_id == "t-3"


def test_429_retry_after_seconds() -> None:
    error = classify(429, api_body("too_many_requests", "slow down"), headers={"Retry-After": "7"})
    assert isinstance(error, RateLimitError) and error.retry_after == 7.0
    lower = classify(429, api_body("too_many_requests", "x"), headers={"retry-after": "2.5"})
    assert isinstance(lower, RateLimitError) and lower.retry_after == 2.5
    no_header = classify(429, api_body("too_many_requests", "x"))
    assert isinstance(no_header, RateLimitError) and no_header.retry_after is None
    for junk in ("soon", "NaN", ""):
        bad = classify(429, "{}", headers={"Retry-After": junk})
        assert isinstance(bad, RateLimitError) and bad.retry_after is None, junk
    negative = classify(429, "{}", headers={"Retry-After": "-5"})
    assert isinstance(negative, RateLimitError) and negative.retry_after == 0.0


def test_429_retry_after_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    error = classify(
        429,
        api_body("too_many_requests", "x"),
        headers={"Retry-After": format_datetime(when, True)},
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None and 25 <= error.retry_after <= 31
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), True)
    late = classify(429, "{}", headers={"Retry-After": past})
    assert isinstance(late, RateLimitError) and late.retry_after == 0.0


def test_502_html_page() -> None:
    error = classify(502, HTML_502)
    assert isinstance(error, ServerError)
    assert error.status_code == 502 and error.code is None and error.trace_id is None
    assert isinstance(error.body, str) and error.body == HTML_502[:200]
    assert "502 Bad Gateway" in str(error) and "HTTP 502" in str(error)


@pytest.mark.parametrize(
    "body",
    ["<html>" + "x" * 5000 + "</html>", '{"success": tru' + "e" * 900, "", "\x00\xff" * 300],
)
def test_non_json_keeps_a_short_snippet(body: str) -> None:
    error = classify(500, body)
    assert isinstance(error, ServerError)
    assert isinstance(error.body, str) and len(error.body) <= 200
    assert error.body == body[:200]
    if body:
        assert repr(body[:200]) in error.message
    assert len(error.message) < 900
    assert not isinstance(error, json.JSONDecodeError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"success": false, "error": "plain text error", "trace_id": "t"}', "plain text error"),
        ('{"success": false, "error": null, "trace_id": "t"}', "HTTP 400 error"),
        ('{"success": false}', "HTTP 400 error"),
        ('{"message": "top-level words"}', "top-level words"),
        ("[1, 2]", "HTTP 400 error"),
        ('"just a string"', "HTTP 400 error"),
        ('{"error": {"code": 5, "message": null}}', "HTTP 400 error"),
        ('{"error": {"code": ["x"], "message": {"a": 1}}, "trace_id": 7}', "HTTP 400 error"),
        ('{"error": [1, 2, 3]}', "HTTP 400 error"),
    ],
)
def test_odd_json_shapes(body: str, message: str) -> None:
    """``error`` as a string, ``null``, missing, or with odd types: still a typed error, never a
    ``TypeError``/``AttributeError`` (vendor SDK tolerates all of these)."""
    error = classify(400, body)
    assert isinstance(error, BadRequestError) and message in str(error)
    assert error.code is None or isinstance(error.code, str)
    assert error.trace_id is None or isinstance(error.trace_id, str)


def test_attach_task_ids() -> None:
    error = ServerError("boom", status_code=500, task_id="t-1")
    assert attach_task_ids(error, ["t-1", "t-2", "t-2"]) is error
    assert error.task_ids == ["t-1", "t-2"]
    assert "task_ids=['t-2']" in str(error) and "poll_task" in str(error)
    interrupt = KeyboardInterrupt()
    attach_task_ids(interrupt, ["t-9"])
    assert interrupt.task_ids == ["t-9"]  # type: ignore[attr-defined]
    assert any("t-9" in note for note in getattr(interrupt, "__notes__", []))
    plain = NanoBananaError("x", task_ids=["a", "b", "a"])
    assert plain.task_ids == ["a", "b"]


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
        classify(400, api_body("token_mismatched", "bad"), task_id="t-1"),
        classify(401, api_body("invalid_token", "who?")),
        classify(429, api_body("too_many_requests", "x"), headers={"Retry-After": "3"}),
        classify(500, api_body("api_error", "x")),
        classify(502, HTML_502),
        NanoBananaAPIError("odd", status_code=418, code="teapot", trace_id=TRACE, body={"a": 1}),
        TaskFailedError("Blocked.", task_id="t-9", trace_id=TRACE, code="content_blocked"),
        TaskTimeoutError("t-9", waited=3.5, trace_id=TRACE),
        SubmissionUncertainError("No answer", task_id="t-9", trace_id=TRACE),
        APIConnectionError("Could not connect", task_id="t-9"),
        InvalidImageError("image_urls[0]: bad"),
        APIResponseValidationError("odd", status_code=200, task_id="t-9", body="{"),
        classify(403, "{}"),
        classify(402, api_body("used_up", "x")),
        NanoBananaError("early end", task_ids=["t-1", "t-2"]),
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
    error = classify(429, "{}", headers={"Retry-After": "9"})
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
    with pytest.raises(APIResponseValidationError) as info:
        strict_client.get_task(task_id)
    assert info.value.status_code == 200 and info.value.body == '{"success": tru'
    assert info.value.task_id == task_id
    assert not isinstance(info.value, json.JSONDecodeError)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (402, None, InsufficientBalanceError),
        (400, "used_up", InsufficientBalanceError),
        (403, "disabled", PermissionDeniedError),
        (403, None, ContentModerationError),
        (401, "token_expired", AuthenticationError),
        (200, "invalid_token", AuthenticationError),
        (200, "no_token", AuthenticationError),
    ],
)
def test_vendor_codes_over_http(
    sim: FakeNanoBananaServer,
    strict_client: NanoBananaClient,
    status: int,
    code: str | None,
    cls: type[NanoBananaAPIError],
) -> None:
    error_obj = {"code": code, "message": "no"} if code else {"message": "no"}
    body = {"success": False, "error": error_obj, "trace_id": TRACE}
    sim.inject_fault(
        "body", path="/nano-banana/images", status=status, body=body, create_task=False
    )
    with pytest.raises(cls) as info:
        strict_client.generate("x")
    assert type(info.value) is cls
    assert info.value.status_code == status and info.value.code == code
    assert info.value.trace_id == TRACE
    assert len(sim.requests_to("/nano-banana/images")) == 1 and sim.tasks == {}


@pytest.mark.parametrize("shape", ["object", "string", "null", "missing"])
@pytest.mark.parametrize(
    ("fault", "cls"),
    [("400", BadRequestError), ("429", RateLimitError), ("500", SubmissionUncertainError)],
)
def test_every_error_shape_is_typed(
    sim: FakeNanoBananaServer,
    strict_client: NanoBananaClient,
    shape: str,
    fault: str,
    cls: type[NanoBananaError],
) -> None:
    """``error`` as the documented object, a bare string, ``null`` or missing (vendor SDK):
    the same typed error, status and trace_id kept."""
    sim.error_shape = shape  # type: ignore[assignment]
    sim.inject_fault(fault, path="/nano-banana/images")
    with pytest.raises(cls) as info:
        strict_client.generate("x")
    error = info.value
    assert error.trace_id  # the body's trace_id survives every shape
    api_error = error.__cause__ if isinstance(error, SubmissionUncertainError) else error
    assert isinstance(api_error, NanoBananaAPIError) and api_error.status_code == int(fault)
    if shape == "string":
        assert api_error.message != f"HTTP {fault} error"  # the bare message is kept
    assert len(sim.requests_to("/nano-banana/images")) == 1
