"""The exception tree of ``langchain_nanobanana``.

Hierarchy::

    NanoBananaError                          base of everything this package raises
    ├── NanoBananaAPIError                   the API answered with an error (status_code, code)
    │   ├── BadRequestError                  400 token_mismatched / api_not_implemented
    │   ├── AuthenticationError              401 invalid_token, token_expired, no_token
    │   ├── InsufficientBalanceError         402, or code used_up (any status)
    │   ├── PermissionDeniedError            403 disabled
    │   │   └── ContentModerationError       403 without a known code: the prompt was refused
    │   ├── NotFoundError                    404: no such task (or endpoint)
    │   ├── RateLimitError                   429 too_many_requests (retry_after, seconds)
    │   ├── ServerError                      5xx api_error
    │   ├── APIResponseValidationError       a 2xx (or redirect) answer we cannot read
    │   └── ResponseTooLargeError            an answer over the size cap (not malformed)
    ├── APIConnectionError                   the server could not be reached (after retries)
    ├── SubmissionUncertainError             the billable POST may have run: do not resubmit blindly
    ├── TaskFailedError                      the task finished with ``response.success == false``
    ├── TaskTimeoutError                     the wait ended; the task runs on (poll_task resumes)
    ├── InvalidRequestError (ValueError)     request arguments that break a documented rule
    │   └── InvalidImageError                an image input that cannot be sent
    └── ConfigurationError (ValueError)      a component set up wrongly (no journal for a key, ...)

Every class carries its **facts** as class attributes, and every decision about an error reads
them (never a list of classes kept elsewhere):

=================  ==============================================================================
``billed``         ``"no"``: no task can exist (refused before sending or by the API: validation,
                   400, 401, 402, 403 on submit, 429, connection refused); ``"maybe"``: a task may
                   exist (dropped connection, read timeout or 5xx on the paid POST, a redirect, an
                   unreadable acknowledgement); ``"yes"``: a task exists (it failed, the wait timed
                   out, its record is unreadable)
``retryable``      repeating the *same* call cannot pay twice and may succeed (429; on reads also
                   5xx, connection errors and unreadable answers)
``model_fixable``  a tool hands it back to the model as an error tool message; otherwise the tool
                   raises and the agent run stops
``exit_code``      what the ``nanobanana`` command line exits with for it: 1 failed, 2 bad input
                   (nothing sent), 3 authentication / configuration / balance, 4 uncertain
``row_status``     the status of a command-line manifest row that ended with it
=================  ==============================================================================

An instance may override a fact when the same class means something else on the other side of
the API: an error from a task *read* (the task exists, the read may be repeated) is marked with
:func:`on_read`. :data:`SAFE_TO_RETRY` is derived from the facts.

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
from typing import Any, Literal

Billed = Literal["no", "maybe", "yes"]
RowStatus = Literal["failed", "uncertain", "invalid", "pending"]

__all__ = [
    "SAFE_TO_RETRY",
    "APIConnectionError",
    "APIResponseValidationError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentModerationError",
    "InsufficientBalanceError",
    "InvalidImageError",
    "InvalidRequestError",
    "NanoBananaAPIError",
    "NanoBananaError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskTimeoutError",
    "add_note",
    "attach_task_ids",
    "error_classes",
    "on_read",
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
    #: Whether a task may exist (and was paid for) when this error ends a call.
    billed: Billed = "maybe"
    #: Whether the *same* call may be repeated: it cannot pay twice and may succeed.
    retryable: bool = False
    #: Whether a tool returns it to the model (True) or raises it out of the run (False).
    model_fixable: bool = False
    #: ``nanobanana`` exit code for it (1 failed, 2 bad input, 3 configuration, 4 uncertain).
    exit_code: int = 1
    #: Status of a command-line manifest row that ended with it.
    row_status: RowStatus = "failed"
    #: Consecutive failed reads of one task after which a wait gives up (``None``: until
    #: ``max_wait``); only read errors that are ``retryable`` are read again at all.
    read_attempts: int | None = 3
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

    def for_model(self) -> str:
        """The text a tool hands back to the model for a ``model_fixable`` error: ``str(self)``
        plus what the model can do next (subclasses add their advice).
        """
        return str(self)


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

    billed: Billed = "no"
    retryable = False
    model_fixable = True
    exit_code = 1


class AuthenticationError(NanoBananaAPIError):
    """HTTP 401 ``invalid_token``; codes ``token_expired`` / ``no_token`` (vendor SDK); or no
    token configured at all (status 401, code ``no_token``). Raised out of the tools.
    """

    billed: Billed = "no"
    retryable = False
    model_fixable = False
    exit_code = 3


class InsufficientBalanceError(NanoBananaAPIError):
    """HTTP 402, or code ``used_up`` at any status (vendor SDK): the account is out of credit.
    Nothing was generated; raised out of the tools (the model cannot fix it).
    """

    billed: Billed = "no"
    retryable = False
    model_fixable = False
    exit_code = 3


class PermissionDeniedError(NanoBananaAPIError):
    """HTTP 403: the resource is ``disabled`` for this account (vendor SDK). Raised out of tools."""

    billed: Billed = "no"
    retryable = False
    model_fixable = False
    exit_code = 3


class ContentModerationError(PermissionDeniedError):
    """HTTP 403 without a known code: the prompt or an image was refused by content moderation
    (vendor SDK). The tools hand it back to the model, which may rephrase.
    """

    def for_model(self) -> str:  # noqa: D102 - see NanoBananaError.for_model
        return (
            f"{self}. The prompt or an image was refused by content moderation: rephrase the "
            "prompt (or use other images) and call again."
        )

    billed: Billed = "no"
    retryable = False
    model_fixable = True
    exit_code = 1


class NotFoundError(NanoBananaAPIError):
    """HTTP 404: no such task (a task read), or no such endpoint (a base URL with a wrong path
    prefix). Nothing was processed. The task tool hands it back to the model (a wrong id).
    """

    billed: Billed = "no"
    retryable = False
    model_fixable = True
    exit_code = 1

    def for_model(self) -> str:  # noqa: D102 - see NanoBananaError.for_model
        return (
            f"{self}. task_id={self.task_id!r} was not found: use the task_id string returned by "
            "an image call (nano_banana_generate / nano_banana_edit)."
        )


class RateLimitError(NanoBananaAPIError):
    """HTTP 429 ``too_many_requests`` after the client's retries ran out.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After``, any header case), or None.

    """

    billed: Billed = "no"
    retryable = True
    model_fixable = True
    exit_code = 1
    read_attempts: int | None = None

    retry_after: float | None = None

    def for_model(self) -> str:  # noqa: D102 - see NanoBananaError.for_model
        wait = f"{self.retry_after:g} s" if self.retry_after is not None else "a little"
        return f"{self}. Rate limited: wait {wait} before calling again."


class ServerError(NanoBananaAPIError):
    """HTTP 5xx (``api_error``). Never retried on a submission: the generation may have run."""

    billed: Billed = "maybe"
    retryable = False
    model_fixable = False
    exit_code = 1
    read_attempts: int | None = None


class APIResponseValidationError(NanoBananaAPIError):
    """The server answered, but not in a shape we can read: not JSON, too deeply nested, wrong
    types, missing ids, a redirect (API requests never follow one), or an answer over the size
    cap. ``task_id`` is set when known; on a submission the generation may have run.

    A task record that stays unreadable ends a wait after ``read_attempts`` (3) reads in a row,
    never after ``max_wait``.
    """

    billed: Billed = "maybe"
    retryable = False
    model_fixable = False
    exit_code = 1
    read_attempts: int | None = 3


class APIConnectionError(NanoBananaError):
    """The API could not be reached (connection refused, DNS, connect timeout), or, for task
    reads, a transport failure after retries. For a submission this means nothing was sent,
    so nothing was billed: it is safe to retry.
    """

    billed: Billed = "no"
    retryable = True
    model_fixable = False
    exit_code = 1
    read_attempts: int | None = None


class SubmissionUncertainError(NanoBananaError):
    """The billable submission may have been processed, but no usable answer arrived (read
    timeout, connection dropped after sending, a 5xx). Resubmitting could pay twice: look the
    task up first (``get_task(task_id)`` when ``task_id`` is known, your callback, or the console).
    """

    billed: Billed = "maybe"
    retryable = False
    model_fixable = False
    exit_code = 4
    row_status: RowStatus = "uncertain"

    hint = (
        ". The generation may have run and been billed: do not resubmit blindly; "
        "look the task up first"
    )


class TaskFailedError(NanoBananaError):
    """A task finished and failed (``response.success == false``, or a ``state`` word such as
    ``failed``). Attributes ``code`` and ``message`` come from ``response.error``.
    """

    billed: Billed = "yes"
    retryable = False
    model_fixable = True
    exit_code = 1

    def __str__(self) -> str:
        return "Task failed: " + super().__str__()


class TaskTimeoutError(NanoBananaError):
    """The wait for a task ended after ``waited`` seconds; the task itself keeps running and was
    not cancelled. Resume with ``NanoBananaClient.poll_task(task_id)``: nothing is resubmitted.
    """

    billed: Billed = "yes"
    retryable = False
    model_fixable = True
    exit_code = 1
    row_status: RowStatus = "pending"

    waited: float = 0.0

    def __init__(self, task_id: str, *, waited: float, **kwargs: Any) -> None:
        message = (
            f"Task {task_id} still running after {waited:.1f} s; it was not cancelled. "
            f"Resume with poll_task({task_id!r})"
        )
        super().__init__(message, task_id=task_id, waited=waited, **kwargs)

    def for_model(self) -> str:  # noqa: D102 - the model has no poll_task: name its tool
        return (
            f"{self}. Do not submit it again: look it up later with "
            f"nano_banana_task(task_id={self.task_id!r})."
        )


class ResponseTooLargeError(NanoBananaAPIError):
    """An answer larger than the cap the caller set (``limit`` bytes, counted after decoding).

    Not malformed: a ``retrieve_batch`` answer is re-read in smaller chunks. On the paid
    submission the generation may have run (``billed="maybe"``); on a read the task exists.

    Attributes:
        limit: The cap in bytes (int).

    """

    billed: Billed = "maybe"
    retryable = False
    model_fixable = False
    exit_code = 1
    read_attempts: int | None = 3
    limit: int = 0


class InvalidRequestError(NanoBananaError, ValueError):
    """Request arguments that break a documented rule, found before any HTTP request: the
    message names the field, the bad value and what is allowed (one message per broken rule).

    Also a ``ValueError``. Attributes: ``errors`` (pydantic's error list, without input values
    that could be secrets), ``field`` (the first field named).
    """

    billed: Billed = "no"
    retryable = False
    model_fixable = True
    exit_code = 2
    row_status: RowStatus = "invalid"
    field: str | None = None


class ConfigurationError(NanoBananaError, ValueError):
    """A component configured in a way that cannot work (an idempotency key without a journal,
    a journal bound to another API host, ...). Nothing was sent; the tools raise it (the model
    cannot fix it). Also a ``ValueError``.
    """

    billed: Billed = "no"
    retryable = False
    model_fixable = False
    exit_code = 3


class InvalidImageError(InvalidRequestError):
    """An image input that cannot be sent: not http(s) nor an image data URI, not an image, over
    10 MiB (10 x 2**20 bytes; "10MB" in the Nano Banana Images API reference,
    https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d),
    or a local path outside ``allowed_image_dir``. Raised
    before any HTTP request; also a ``ValueError`` so pydantic validators surface it.
    """

    billed: Billed = "no"
    retryable = False
    model_fixable = True
    exit_code = 2
    row_status: RowStatus = "invalid"


def error_classes() -> list[type[NanoBananaError]]:
    """Every error class of this module, base first (the classes whose facts are tabled)."""
    found: list[type[NanoBananaError]] = []
    pending: list[type[NanoBananaError]] = [NanoBananaError]
    while pending:
        cls = pending.pop(0)
        if cls.__module__ == __name__ and cls not in found:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


#: Errors after which nothing was billed, so retrying cannot pay twice: pass it as
#: ``runnable.with_retry(retry_if_exception_type=SAFE_TO_RETRY)``. Derived from the facts: the
#: classes with ``billed == "no"`` and ``retryable`` (429 and connection refused).
SAFE_TO_RETRY: tuple[type[BaseException], ...] = tuple(
    cls for cls in error_classes() if cls.billed == "no" and cls.retryable
)


def on_read(exc: NanoBananaError, *, task_id: str | None = None) -> NanoBananaError:
    """Mark ``exc`` as the outcome of a task *read* and return it.

    A read concerns a task that exists (``billed="yes"``) and may be repeated without paying
    again: what would leave a *submission* ``billed="maybe"`` (a 5xx, an unreadable or too-large
    answer) leaves a read ``retryable``; errors the API answered with certainty (authentication,
    balance, permission, 400) stay final. ``task_id`` is recorded when the error has none yet.
    """
    if exc.billed == "maybe":
        exc.retryable = True
    exc.billed = "yes"
    if task_id and not exc.task_id:
        exc.task_id = task_id
    return exc


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
