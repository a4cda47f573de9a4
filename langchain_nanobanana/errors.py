"""The exception tree of ``langchain_nanobanana`` and the one response -> exception mapper.

Hierarchy::

    NanoBananaError                      base of everything this package raises
    ├── NanoBananaAPIError               non-2xx or unreadable answer (status_code, code, trace_id)
    │   ├── BadRequestError              400 (token_mismatched, api_not_implemented)
    │   ├── AuthenticationError          401 invalid_token, or no token configured at all
    │   ├── RateLimitError               429 too_many_requests (retry_after, seconds)
    │   └── ServerError                  5xx api_error
    ├── APIConnectionError               the server could not be reached (after retries)
    ├── SubmissionUncertainError         the billable POST may have run: do not resubmit blindly
    ├── TaskFailedError                  the task finished with ``response.success == false``
    ├── TaskTimeoutError                 polling gave up; the task runs on (poll_task resumes)
    └── InvalidImageError (ValueError)   an image input that cannot be sent (size, type, location)

Source of the status/code table: seed 000 ("错误处理") and SPEC Part 1 "Errors".
``str(error)`` always includes the code and the ``trace_id`` when known, and never the API token:
errors are built only from response bodies and ids, never from request headers.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "InvalidImageError",
    "NanoBananaAPIError",
    "NanoBananaError",
    "RateLimitError",
    "ServerError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskTimeoutError",
    "error_from_response",
]

_SNIPPET_CHARS = 200


class NanoBananaError(Exception):
    """Base class of every error raised by ``langchain_nanobanana``.

    Attributes:
        task_id: The task this error concerns, when one is known (never dropped once known).
        trace_id: The API's trace id for support, when known.

    """

    task_id: str | None = None
    trace_id: str | None = None

    def _suffix(self) -> str:
        parts = []
        if self.task_id:
            parts.append(f"task_id={self.task_id}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        return f" ({', '.join(parts)})" if parts else ""


class NanoBananaAPIError(NanoBananaError):
    """The API answered with an error, or with something that is not the documented JSON.

    Args:
        message: Human-readable message (the API's ``error.message`` or a description).
        status_code: HTTP status of the answer (int).
        code: The API's ``error.code`` (``token_mismatched``, ``invalid_token``, ...), if any.
        trace_id: The API's ``trace_id`` for support, if any.
        task_id: The task concerned, if known.
        body: The decoded JSON body, or a short text snippet (at most 200 characters) when the body
            was not JSON.

    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        trace_id: str | None = None,
        task_id: str | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.trace_id = trace_id
        self.task_id = task_id
        self.body = body

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}", f"code={self.code}"]
        if self.task_id:
            parts.append(f"task_id={self.task_id}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        return f"{self.message} ({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_api_error, (type(self), self.message, self.__dict__))


def _rebuild_api_error(
    cls: type[NanoBananaAPIError], message: str, state: dict[str, Any]
) -> NanoBananaAPIError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class BadRequestError(NanoBananaAPIError):
    """HTTP 400: bad parameters (``token_mismatched``) or ``api_not_implemented``."""


class AuthenticationError(NanoBananaAPIError):
    """HTTP 401 ``invalid_token``, or no token configured (status 401, code ``no_token``).

    Not something a model can fix: the tools re-raise it instead of returning a tool message.
    """


class RateLimitError(NanoBananaAPIError):
    """HTTP 429 ``too_many_requests`` after the client's retries ran out.

    Attributes:
        retry_after: Seconds the server asked to wait (from ``Retry-After``), or ``None``.

    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(NanoBananaAPIError):
    """HTTP 5xx (``api_error``). Never retried on a submission: the generation may have run."""


class APIConnectionError(NanoBananaError):
    """The API could not be reached (connection refused, DNS, connect timeout, or, for task reads,
    any transport failure) after the client's retries.

    For a submission this means nothing was sent, so nothing was billed: it is safe to retry.

    Attributes:
        task_id: The task concerned, when known (task reads).

    """

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task_id = task_id

    def __str__(self) -> str:
        return f"{self.message}{self._suffix()}"


class SubmissionUncertainError(NanoBananaError):
    """The billable submission may have been processed, but no answer arrived.

    Raised after a read timeout or a connection dropped after the request was sent (and, wrapped as
    ``__cause__``, after a 5xx on submission). Resubmitting could pay twice: look the task up first
    (``get_task(task_id)`` when ``task_id`` is known, or your callback / the vendor console).

    Attributes:
        task_id: Known task id, if any (``None`` when the server never answered).
        trace_id: Known trace id, if any.

    """

    def __init__(
        self, message: str, *, task_id: str | None = None, trace_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.task_id = task_id
        self.trace_id = trace_id

    def __str__(self) -> str:
        return (
            f"{self.message}. The generation may have run and been billed: do not resubmit "
            f"blindly; look the task up first{self._suffix()}"
        )


class TaskFailedError(NanoBananaError):
    """A task finished with ``response.success == false``.

    Attributes:
        task_id, trace_id: Ids of the task.
        code, message: The API's ``response.error.code`` and ``.message``.

    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None,
        trace_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.task_id = task_id
        self.trace_id = trace_id
        self.code = code

    def __str__(self) -> str:
        return f"Task failed: {self.message} (code={self.code}{_ids(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_simple, (type(self), self.message, self.__dict__))


class TaskTimeoutError(NanoBananaError):
    """Polling gave up after ``waited`` seconds; the task itself keeps running.

    Resume with ``NanoBananaClient.poll_task(task_id)``: nothing is resubmitted or paid twice.

    Attributes:
        task_id: The task that is still running.
        waited: Seconds spent polling before giving up (float).

    """

    def __init__(self, task_id: str, *, waited: float, trace_id: str | None = None) -> None:
        super().__init__(task_id)
        self.task_id = task_id
        self.waited = waited
        self.trace_id = trace_id

    def __str__(self) -> str:
        return (
            f"Task {self.task_id} still running after {self.waited:.1f} s; it was not cancelled. "
            f"Resume with poll_task({self.task_id!r}){_ids(self, with_task=False)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_simple, (type(self), self.task_id, self.__dict__))


class InvalidImageError(NanoBananaError, ValueError):
    """An image input that cannot be sent: not http(s) nor an image data URI, not an image, over
    10 MiB (10 x 2**20 bytes, seed 001), or a local path outside ``allowed_image_dir``.

    Raised before any HTTP request. Also a ``ValueError`` so pydantic validators surface it.
    """


def _rebuild_simple(cls: type[Exception], arg: str, state: dict[str, Any]) -> Exception:
    err = cls.__new__(cls)
    Exception.__init__(err, arg)
    err.__dict__.update(state)
    return err


def _ids(err: NanoBananaError, *, with_task: bool = True) -> str:
    out = ""
    if with_task and err.task_id:
        out += f", task_id={err.task_id}"
    if err.trace_id:
        out += f", trace_id={err.trace_id}"
    return out


def _parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP-date, RFC 9110 10.2.3), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_from_response(
    status_code: int,
    body_text: str,
    *,
    headers: dict[str, str] | None = None,
    task_id: str | None = None,
) -> NanoBananaAPIError:
    """Map one HTTP answer to the matching :class:`NanoBananaAPIError` subclass.

    Args:
        status_code: HTTP status (int). 400 -> BadRequestError, 401 -> AuthenticationError,
            429 -> RateLimitError, >= 500 -> ServerError, any other -> NanoBananaAPIError.
        body_text: The body as text. The documented shape is
            ``{"success": false, "error": {"code", "message"}, "trace_id"}`` (seed 000); anything
            else (HTML, truncated JSON) keeps a 200-character snippet as ``body`` and ``message``.
        headers: Response headers (case-insensitive mapping); ``Retry-After`` is read for 429.
        task_id: The task concerned, when the caller knows it.

    Returns:
        The exception instance (not raised).

    """
    code: str | None = None
    trace_id: str | None = None
    body: object
    try:
        data = json.loads(body_text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        body = data
        err = data.get("error")
        if isinstance(err, dict):
            code = _str_or_none(err.get("code"))
            message = _str_or_none(err.get("message")) or f"HTTP {status_code} error"
        else:
            message = _str_or_none(err) or f"HTTP {status_code} answer without an error object"
        trace_id = _str_or_none(data.get("trace_id"))
        task_id = task_id or _str_or_none(data.get("task_id"))
    else:
        snippet = body_text[:_SNIPPET_CHARS]
        body = snippet
        message = f"Unexpected non-JSON answer from the API: {snippet!r}"
    cls: type[NanoBananaAPIError]
    kwargs: dict[str, Any] = {}
    if status_code == 400:
        cls = BadRequestError
    elif status_code == 401:
        cls = AuthenticationError
    elif status_code == 429:
        cls = RateLimitError
        kwargs["retry_after"] = _parse_retry_after((headers or {}).get("Retry-After"))
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = NanoBananaAPIError
    return cls(
        message,
        status_code=status_code,
        code=code,
        trace_id=trace_id,
        task_id=task_id,
        body=body,
        **kwargs,
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
