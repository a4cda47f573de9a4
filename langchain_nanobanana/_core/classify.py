"""Which error an answer is: the API's ``error.code`` first, then the HTTP status (pure; no
I/O). The codes and statuses come from the Nano Banana Integration Guide's error table
(https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d) and the vendor
SDK's error map (package ``acedatacloud``). Also the statuses a read repeats at once, derived from
the error facts. Imports nothing above :mod:`langchain_nanobanana.errors`, so the transport's
retry policy can use it.
"""

from __future__ import annotations

from typing import Any

from langchain_nanobanana._core.http import Answer, opt_str, parse_retry_after
from langchain_nanobanana.errors import (
    AuthenticationError,
    BadRequestError,
    ContentModerationError,
    InsufficientBalanceError,
    NanoBananaAPIError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    on_read,
)

__all__ = ["KNOWN_CODES", "classify_error", "read_retry_statuses"]

#: ``error.code`` -> error class (the Integration Guide's table and the vendor SDK's map); checked
#: before the status.
_BY_CODE: dict[str, type[NanoBananaAPIError]] = {
    "token_mismatched": BadRequestError,
    "api_not_implemented": BadRequestError,
    "invalid_token": AuthenticationError,
    "token_expired": AuthenticationError,
    "no_token": AuthenticationError,
    "used_up": InsufficientBalanceError,
    "disabled": PermissionDeniedError,
    "too_many_requests": RateLimitError,
    "api_error": ServerError,
}
#: HTTP status -> error class, when the code is unknown or missing.
_BY_STATUS: dict[int, type[NanoBananaAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: ContentModerationError,
    404: NotFoundError,
    429: RateLimitError,
}


#: The ``error.code`` values that name an error of the API (not of one task).
KNOWN_CODES = frozenset(_BY_CODE)


def classify_error(
    answer: Answer, data: object, *, task_id: str | None = None
) -> NanoBananaAPIError:
    """Map an error answer (any status, or a 2xx saying ``success: false``) to its class.

    Args:
        answer: The HTTP answer (status and headers are read).
        data: Its decoded body (any JSON value), or ``None`` when it was not JSON.
        task_id: The task concerned, when the caller knows it.

    Returns:
        The exception instance (not raised): by ``error.code`` first (``_BY_CODE``), then by
        status (400, 401, 402, 403 -> moderation, 429, 5xx); anything else NanoBananaAPIError.

    """
    code: str | None = None
    message: str | None = None
    trace_id: str | None = None
    named: str | None = None
    body: object = answer.snippet()
    if isinstance(data, dict):
        body = data
        err = data.get("error")
        if isinstance(err, dict):
            code, message = opt_str(err.get("code")), opt_str(err.get("message"))
        else:
            message = opt_str(err) or opt_str(data.get("message"))
        trace_id = opt_str(data.get("trace_id"))
        named = opt_str(data.get("task_id"))
        task_id = task_id or named
    elif data is None and answer.body:
        message = f"Unexpected non-JSON answer from the API: {answer.snippet()!r}"
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(answer.status)
    if cls is None:
        cls = ServerError if answer.status >= 500 else NanoBananaAPIError
    extra: dict[str, Any] = {}
    if cls is RateLimitError:
        extra["retry_after"] = parse_retry_after(answer.header("retry-after"))
    error = cls(
        message or f"HTTP {answer.status} error",
        status_code=answer.status,
        code=code,
        trace_id=trace_id,
        task_id=task_id,
        body=body,
        **extra,
    )
    if named and error.billed == "no":  # the answer names a task: one exists, so it may be paid
        error.billed = "maybe"
        error.retryable = False
    return error


def read_retry_statuses() -> frozenset[int]:
    """The HTTP statuses a task *read* repeats at once (the read policy's ``status_forcelist``).

    Derived from the error facts: every 5xx whose answer, classified and marked as a read
    (:func:`~langchain_nanobanana.errors.on_read`), is ``retryable``. A 429 is the rate gate's,
    and a 4xx is an answer the API gave with certainty.
    """
    return frozenset(
        status
        for status in range(500, 600)
        if on_read(classify_error(Answer(status), None)).retryable
    )
