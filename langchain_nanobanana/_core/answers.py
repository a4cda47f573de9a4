"""Answer classification: one HTTP answer (status, headers, body) becomes a result or a typed
error, for every driver (sync, async, tools, Runnable, CLI). No I/O here.

Rules and sources:

* the error body ``{"success": false, "error": {"code", "message"}, "trace_id"}`` and the
  status/code table: the Nano Banana Images API Integration Guide ("错误处理", error handling),
  https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e,
  and the Nano Banana Images API reference,
  https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d;
* ``token_expired`` / ``no_token`` (authentication), ``used_up`` and HTTP 402 (balance),
  ``disabled`` (permission), a 403 without a known code (content moderation), and ``error``
  given as a bare string, ``null`` or missing: the error map of the vendor's Python SDK, package
  ``acedatacloud`` (https://github.com/AceDataCloud/SDK/tree/main/python);
* classification is by ``error.code`` first, then by HTTP status; a 2xx whose body says
  ``success: false`` is classified the same way (a 200 carrying ``invalid_token`` is an
  :class:`AuthenticationError`, not something to poll again);
* an answer that cannot be read (not JSON, too deep, wrong types, missing ids, a redirect) is an
  :class:`APIResponseValidationError` carrying the ``task_id`` when known: nothing else escapes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langchain_nanobanana._core.classify import KNOWN_CODES, classify_error, read_retry_statuses
from langchain_nanobanana._core.http import Answer, opt_str, parse_retry_after
from langchain_nanobanana.errors import (
    APIResponseValidationError,
    NanoBananaAPIError,
    NanoBananaError,
    ServerError,
    SubmissionUncertainError,
)
from langchain_nanobanana.results import ImageResult, TaskRecord

__all__ = [
    "Answer",
    "classify_error",
    "decode_object",
    "parse_retry_after",
    "read_acknowledgement",
    "read_batch",
    "read_record",
    "read_retry_statuses",
]

logger = logging.getLogger(__name__)


def decode_object(answer: Answer, *, task_id: str | None = None, billable: bool = False) -> Any:
    """Decode the body as JSON (any value).

    Raises:
        APIResponseValidationError: Not UTF-8 JSON, or nested too deeply to parse.

    """
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError) as exc:
        what = "too deeply nested" if isinstance(exc, RecursionError) else "not JSON"
        raise unreadable(answer, f"answer is {what}", task_id=task_id, billable=billable) from None


def unreadable(
    answer: Answer,
    problem: str,
    *,
    task_id: str | None,
    billable: bool,
    trace_id: str | None = None,
) -> APIResponseValidationError:
    """The error for an answer we cannot read; on a submission it says the generation may have
    run (the server took the request) and to look the task up before resubmitting.
    """
    hint = "; the generation may have run: look the task up before resubmitting" * billable
    return APIResponseValidationError(
        f"Unreadable answer from the API ({problem}): {answer.snippet()!r}{hint}",
        status_code=answer.status,
        task_id=task_id,
        trace_id=trace_id,
        body=answer.snippet(),
    )


def _successful_object(answer: Answer, *, task_id: str | None, billable: bool) -> dict[str, Any]:
    """The decoded JSON object of a 2xx answer that does not report an error; else raise."""
    if 300 <= answer.status < 400:
        location = answer.header("location") or "?"
        raise unreadable(
            answer,
            f"redirect to {location[:120]!r} not followed: API requests never follow "
            "redirects and the body is never re-sent",
            task_id=task_id,
            billable=billable,
        )
    data = None if answer.status >= 300 and not answer.body else _lenient(answer)
    if not 200 <= answer.status < 300:
        raise classify_error(answer, data, task_id=task_id)
    if not isinstance(data, dict):
        data = decode_object(answer, task_id=task_id, billable=billable)
        if not isinstance(data, dict):
            raise unreadable(answer, "not a JSON object", task_id=task_id, billable=billable)
    if data.get("success") is False or (data.get("error") and data.get("success") is not True):
        raise classify_error(answer, data, task_id=task_id)
    return data


def _lenient(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):
        return None


def read_acknowledgement(answer: Answer, *, in_line: bool) -> ImageResult:
    """Read the answer to ``POST /nano-banana/images``.

    Args:
        answer: The HTTP answer.
        in_line: True for a sync-mode submission that waited for the images (``data`` expected).

    Returns:
        ``pending`` with a ``task_id`` (async / callback acknowledgement), ``succeeded`` with
        images, or ``failed`` (a sync generation that failed, ``success: false`` with a
        ``task_id``: it ran).

    Raises:
        SubmissionUncertainError: A 5xx (``__cause__`` the ServerError, ``task_id`` kept when the
            body names one): it may have run. Resolve by reading the task when the id is known.
        APIResponseValidationError: Unreadable 2xx, or a redirect (it may have run).
        NanoBananaAPIError: Any other error answer (by code, then status).

    """
    try:
        data = _successful_object(answer, task_id=None, billable=True)
    except ServerError as exc:
        raise _uncertain(exc) from exc
    except NanoBananaAPIError as exc:
        ran = 200 <= exc.status_code < 300 and exc.task_id and exc.code not in KNOWN_CODES
        if ran and isinstance(exc.body, dict):
            # success: false naming its task, with a code of the task's own: it ran and failed.
            return ImageResult.from_response(exc.body)
        raise
    result = ImageResult.from_response(data)
    if result.status == "pending" and not result.task_id:
        raise unreadable(
            answer,
            "no task_id in the acknowledgement",
            task_id=None,
            billable=True,
            trace_id=result.trace_id,
        )
    if result.status == "pending" and in_line and _has_unreadable_images(data):
        raise unreadable(
            answer,
            "images without a readable image_url",
            task_id=result.task_id,
            billable=True,
            trace_id=result.trace_id,
        )
    return result


def _uncertain(exc: ServerError) -> SubmissionUncertainError:
    return SubmissionUncertainError(
        f"The API answered HTTP {exc.status_code} (code={exc.code}) to the submission: "
        f"{exc.message}",
        task_id=exc.task_id,
        trace_id=exc.trace_id,
    )


def _has_unreadable_images(data: dict[str, Any]) -> bool:
    items = data.get("data")
    return isinstance(items, list) and bool(items)


def _why(exc: BaseException) -> str:
    """What made a record unreadable, in a few words (no library internals)."""
    if isinstance(exc, NanoBananaError):
        return exc.message
    if isinstance(exc, RecursionError):
        return "the record is nested too deeply"
    return f"the record has fields of the wrong type ({type(exc).__name__})"


def read_record(answer: Answer, *, task_id: str) -> TaskRecord:
    """Read the answer to ``{"action": "retrieve", "id": task_id}``.

    Raises:
        APIResponseValidationError: Unreadable answer or record (``task_id`` attached).
        NanoBananaAPIError: An error answer (by code, then status), ``task_id`` attached.

    """
    data = _successful_object(answer, task_id=task_id, billable=False)
    try:
        record = TaskRecord.from_api(data, task_id=task_id)
    except Exception as exc:  # any failure to parse an untrusted record is "unreadable"
        raise unreadable(answer, _why(exc), task_id=task_id, billable=False) from None
    if record.id != task_id:  # never take another task's record (and images) for this one
        raise unreadable(
            answer, f"the record is of task {record.id!r}", task_id=task_id, billable=False
        )
    return record


def read_batch(
    answer: Answer, *, task_ids: list[str]
) -> dict[str, TaskRecord | APIResponseValidationError]:
    """Read the answer to ``{"action": "retrieve_batch", "ids": task_ids}``.

    Returns:
        task_id -> its record, for every readable item (unknown ids are simply absent); an item
        that names one of ``task_ids`` but cannot be read maps to its error. Items without an id
        are skipped (logged at DEBUG): one bad item never spoils the others.

    Raises:
        APIResponseValidationError: The answer is not an object with an ``items`` list.
        NanoBananaAPIError: An error answer (by code, then status).

    """
    data = _successful_object(answer, task_id=None, billable=False)
    items = data.get("items")
    if not isinstance(items, list):
        raise unreadable(
            answer, "retrieve_batch answer without an items list", task_id=None, billable=False
        )
    out: dict[str, TaskRecord | APIResponseValidationError] = {}
    wanted = set(task_ids)
    for item in items:
        item_id = opt_str(item.get("id")) if isinstance(item, dict) else None
        if item_id is None:
            logger.debug("retrieve_batch item without an id skipped")
            continue
        try:
            out[item_id] = TaskRecord.from_api(item)
        except Exception as exc:
            if item_id in wanted:
                out[item_id] = unreadable(answer, _why(exc), task_id=item_id, billable=False)
    return out
