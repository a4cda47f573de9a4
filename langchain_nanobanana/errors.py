"""The exception tree of ``langchain_nanobanana``.

Hierarchy::

    NanoBananaError                          base of everything this package raises
    ├── NanoBananaAPIError                   the API answered with an error (status_code, code)
    │   ├── BadRequestError                  400 token_mismatched / api_not_implemented
    │   ├── AuthenticationError              401 invalid_token, token_expired, no_token
    │   ├── InsufficientBalanceError         402, or code used_up (any status)
    │   ├── PermissionDeniedError            403 disabled
    │   │   └── ContentModerationError       403 without a known code: the prompt was refused
    │   ├── RateLimitError                   429 too_many_requests (retry_after, seconds)
    │   ├── ServerError                      5xx api_error
    │   └── APIResponseValidationError       a 2xx (or redirect) answer we cannot read
    ├── APIConnectionError                   the server could not be reached (after retries)
    ├── SubmissionUncertainError             the billable POST may have run: do not resubmit blindly
    ├── TaskFailedError                      the task finished with ``response.success == false``
    ├── TaskTimeoutError                     the wait ended; the task runs on (poll_task resumes)
    └── InvalidImageError (ValueError)       an image input that cannot be sent

Sources: the status/code table ("错误处理", error handling) of the Nano Banana Images API
Integration Guide (https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e);
``token_expired``, ``no_token``, ``used_up``, 402, ``disabled`` and a code-less 403 (moderation)
from the error map of the vendor's Python SDK, package ``acedatacloud``
(https://github.com/AceDataCloud/SDK/tree/main/python). Which error an answer becomes is decided in
``langchain_nanobanana._core.answers``.

Every error keeps the ids it knows: ``task_id`` (the task concerned), ``trace_id`` (for support)
and ``task_ids`` (every task already submitted when a call or batch ended early: they ran and
were billed). ``str(error)`` includes the code and the ids and never the API token: errors are built
from answer bodies and ids only, and transport exceptions are never chained raw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "SAFE_TO_RETRY",
    "APIConnectionError",
    "APIResponseValidationError",
    "AuthenticationError",
    "BadRequestError",
    "ContentModerationError",
    "InsufficientBalanceError",
    "InvalidImageError",
    "NanoBananaAPIError",
    "NanoBananaError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskTimeoutError",
    "add_note",
    "attach_task_ids",
]


class NanoBananaError(Exception):
    """Base class of every error raised by ``langchain_nanobanana``.

    Args:
        message: Human-readable description.
        task_id: The task this error concerns, when known (never dropped once known).
        trace_id: The API's trace id for support, when known.
        task_ids: Tasks already submitted (and billed) when the call ended early.
        **fields: Class-specific attributes (``status_code``, ``code``, ``retry_after``, ...).

    ``str()`` is ``message`` plus ``(code=..., task_id=..., trace_id=...)`` for what is known;
    pickling keeps every attribute.

    """

    #: Words appended to ``str()`` before the ids (subclasses give guidance here).
    hint: str = ""
    task_id: str | None = None
    trace_id: str | None = None
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        trace_id: str | None = None,
        task_ids: Iterable[str] = (),
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.task_id = task_id
        self.trace_id = trace_id
        self.task_ids: list[str] = list(dict.fromkeys(task_ids))
        for name, value in fields.items():
            setattr(self, name, value)

    def _details(self) -> list[str]:
        return [f"code={self.code}"] if self.code else []

    def __str__(self) -> str:
        parts = self._details()
        if self.task_id:
            parts.append(f"task_id={self.task_id}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        others = [t for t in self.task_ids if t != self.task_id]
        if others:
            parts.append(f"task_ids={others} (submitted and billed: poll_task each one)")
        suffix = f" ({', '.join(parts)})" if parts else ""
        message = self.message.rstrip(".") if self.hint.startswith(".") else self.message
        return f"{message}{self.hint}{suffix}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[NanoBananaError], message: str, state: dict[str, Any]) -> NanoBananaError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class NanoBananaAPIError(NanoBananaError):
    """The API answered with an error, or with something that is not the documented JSON.

    Attributes:
        status_code: HTTP status of the answer (int).
        code: The API's ``error.code`` (``token_mismatched``, ``invalid_token``, ...), if any.
        body: The decoded JSON body, or a text snippet of at most 200 characters.

    """

    status_code: int = 0
    body: object = None

    def __init__(self, message: str, *, status_code: int, **kwargs: Any) -> None:
        kwargs.setdefault("code", None)
        kwargs.setdefault("body", None)
        super().__init__(message, status_code=status_code, **kwargs)

    def _details(self) -> list[str]:
        return [f"HTTP {self.status_code}", f"code={self.code}"]


class BadRequestError(NanoBananaAPIError):
    """HTTP 400: bad parameters (``token_mismatched``) or ``api_not_implemented``.

    Source: the error table of the Nano Banana Images API Integration Guide,
    https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e.
    """


class AuthenticationError(NanoBananaAPIError):
    """HTTP 401 ``invalid_token``; codes ``token_expired`` / ``no_token`` (vendor SDK); or no
    token configured at all (status 401, code ``no_token``). Raised out of the tools.
    """


class InsufficientBalanceError(NanoBananaAPIError):
    """HTTP 402, or code ``used_up`` at any status (vendor SDK): the account is out of credit.
    Nothing was generated; raised out of the tools (the model cannot fix it).
    """


class PermissionDeniedError(NanoBananaAPIError):
    """HTTP 403: the resource is ``disabled`` for this account (vendor SDK). Raised out of tools."""


class ContentModerationError(PermissionDeniedError):
    """HTTP 403 without a known code: the prompt or an image was refused by content moderation
    (vendor SDK). The tools hand it back to the model, which may rephrase.
    """


class RateLimitError(NanoBananaAPIError):
    """HTTP 429 ``too_many_requests`` after the client's retries ran out.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After``, any header case), or None.

    """

    retry_after: float | None = None


class ServerError(NanoBananaAPIError):
    """HTTP 5xx (``api_error``). Never retried on a submission: the generation may have run."""


class APIResponseValidationError(NanoBananaAPIError):
    """The server answered, but not in a shape we can read: not JSON, too deeply nested, wrong
    types, missing ids, a redirect (API requests never follow one), or an answer over the size
    cap. ``task_id`` is set when known; on a submission the generation may have run.
    """


class APIConnectionError(NanoBananaError):
    """The API could not be reached (connection refused, DNS, connect timeout), or, for task
    reads, a transport failure after retries. For a submission this means nothing was sent,
    so nothing was billed: it is safe to retry.
    """


class SubmissionUncertainError(NanoBananaError):
    """The billable submission may have been processed, but no usable answer arrived (read
    timeout, connection dropped after sending, a 5xx). Resubmitting could pay twice: look the
    task up first (``get_task(task_id)`` when ``task_id`` is known, your callback, or the console).
    """

    hint = (
        ". The generation may have run and been billed: do not resubmit blindly; "
        "look the task up first"
    )


class TaskFailedError(NanoBananaError):
    """A task finished and failed (``response.success == false``, or a ``state`` word such as
    ``failed``). Attributes ``code`` and ``message`` come from ``response.error``.
    """

    def __str__(self) -> str:
        return "Task failed: " + super().__str__()


class TaskTimeoutError(NanoBananaError):
    """The wait for a task ended after ``waited`` seconds; the task itself keeps running and was
    not cancelled. Resume with ``NanoBananaClient.poll_task(task_id)``: nothing is resubmitted.
    """

    waited: float = 0.0

    def __init__(self, task_id: str, *, waited: float, **kwargs: Any) -> None:
        message = (
            f"Task {task_id} still running after {waited:.1f} s; it was not cancelled. "
            f"Resume with poll_task({task_id!r})"
        )
        super().__init__(message, task_id=task_id, waited=waited, **kwargs)


class InvalidImageError(NanoBananaError, ValueError):
    """An image input that cannot be sent: not http(s) nor an image data URI, not an image, over
    10 MiB (10 x 2**20 bytes; "10MB" in the Nano Banana Images API reference,
    https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d),
    or a local path outside ``allowed_image_dir``. Raised
    before any HTTP request; also a ``ValueError`` so pydantic validators surface it.
    """


#: Errors after which nothing was billed, so retrying cannot pay twice: pass it as
#: ``runnable.with_retry(retry_if_exception_type=SAFE_TO_RETRY)``. Not in it: ServerError and
#: SubmissionUncertainError (the generation may have run), TaskFailedError (it ran and was billed),
#: TaskTimeoutError (it still runs: poll it instead).
SAFE_TO_RETRY: tuple[type[BaseException], ...] = (RateLimitError, APIConnectionError)


def attach_task_ids(exc: BaseException, task_ids: Iterable[str]) -> BaseException:
    """Record ``task_ids`` (submitted and billed) on ``exc`` and return it.

    A :class:`NanoBananaError` gains them in ``task_ids`` (shown by ``str``); any other exception
    (``KeyboardInterrupt``, ``asyncio.CancelledError``, ...) gets a ``task_ids`` attribute and a
    note (``__notes__``, shown by tracebacks on Python 3.11+).
    """
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        return exc
    current = list(getattr(exc, "task_ids", None) or [])
    merged = list(dict.fromkeys([*current, *ids]))
    exc.task_ids = merged  # type: ignore[attr-defined]
    if not isinstance(exc, NanoBananaError):
        add_note(
            exc, f"langchain_nanobanana: tasks already submitted (billed, still running): {ids}"
        )
    return exc


def add_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc.__notes__`` once (``BaseException.add_note`` on Python 3.11+; the
    same attribute on 3.10, where tracebacks do not print it).
    """
    notes = getattr(exc, "__notes__", None)
    if notes is None:
        exc.__notes__ = [note]  # type: ignore[attr-defined]
    elif note not in notes:
        notes.append(note)
