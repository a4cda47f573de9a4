"""What the API gives back: :class:`GeneratedImage`, :class:`ImageResult`, :class:`TaskRecord`.

Shapes (the Nano Banana Images API Integration Guide, https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e,
and the Nano Banana Tasks API Integration Guide, https://platform.acedata.cloud/documents/e01ef840-3158-4eec-a6e7-337dada8d155):

* a synchronous answer and a callback body:
  ``{"success": true, "task_id", "trace_id", "data": [{"prompt", "image_url"}, ...]}``;
* a failure: ``{"success": false, "error": {"code", "message"}, "trace_id", ...}``;
* an ``async`` / ``callback_url`` acknowledgement: ``{"success": true, "task_id", "trace_id"}``
  without ``data``;
* a task record from ``/nano-banana/tasks``: ``{"id", "created_at", "request", "response"?,
  "trace_id", "type", ...}``; no ``response`` yet means still running.

Account fields (``user_id``, ``credential_id``, ``application_id``, ``api_id``) are stripped on
parse, so they never reach a model, a log or a trace.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from langchain_nanobanana._core.http import opt_str
from langchain_nanobanana.errors import NanoBananaError, TaskFailedError


class _Downloader(Protocol):
    """What ``ImageResult.download`` needs of a client (a ``NanoBananaClient``): downloads are
    the client's (or a transport's) job, so this module never imports the client.
    """

    def download(
        self,
        result: ImageResult,
        directory: str | os.PathLike[str] = ...,
        *,
        prefix: str | None = ...,
        max_bytes: int | None = ...,
    ) -> list[Path]:
        """Download ``result``'s images into ``directory``."""


__all__ = ["ACCOUNT_FIELDS", "GeneratedImage", "ImageResult", "ResultError", "TaskRecord"]

#: Keys of a task record that identify the account; removed before anything is exposed.
ACCOUNT_FIELDS = frozenset({"user_id", "credential_id", "application_id", "api_id"})

Status = Literal["succeeded", "pending", "failed"]


def _strip_account_fields(value: Any) -> Any:
    """A copy of ``value`` without :data:`ACCOUNT_FIELDS` at any depth (iterative: a deeply
    nested answer cannot exhaust the stack).
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, slot = stack.pop()
        if isinstance(item, dict):
            copy: Any = {}
            for k, v in item.items():
                if k not in ACCOUNT_FIELDS:
                    copy[k] = None
                    stack.append((v, copy, k))
        elif isinstance(item, list):
            copy = [None] * len(item)
            stack.extend((v, copy, n) for n, v in enumerate(item))
        else:
            copy = item
        parent[slot] = copy
    return root[0]


#: ``state`` / ``status`` words of a task record that mean done or failed. The API documents no
#: such field; the vendor's own clients read one (vendor SDK), so a record that signals its end
#: only that way ends at once instead of being polled until ``max_wait``.
DONE_WORDS = frozenset({"succeeded", "success", "successful", "completed", "complete", "done"})
FAILED_WORDS = frozenset(
    {
        "failed",
        "failure",
        "error",
        "errored",
        "cancelled",
        "canceled",
        "rejected",
        "timeout",
        "expired",
    }
)


class GeneratedImage(BaseModel):
    """One generated image: the prompt echoed by the API and the image's direct URL."""

    model_config = ConfigDict(frozen=True)

    prompt: str | None = None
    image_url: str


class ResultError(BaseModel):
    """The ``error`` object of a failed answer: ``code`` and ``message``.

    Source: the Nano Banana Images API Integration Guide, https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e.
    """

    model_config = ConfigDict(frozen=True)

    code: str | None = None
    message: str = "unknown error"


class ImageResult(BaseModel):
    """The outcome of one generation or edit.

    Attributes:
        status: ``"succeeded"`` (``images`` non-empty), ``"pending"`` (submitted with
            ``wait=False`` or a ``callback_url``; look it up by ``task_id``) or ``"failed"``.
        task_id: The API's task id (keep it: it finds the task again and helps support).
        trace_id: The API's trace id for support.
        images: The generated images, in the API's order.
        error: ``code`` and ``message`` when ``status == "failed"``.
        raw: The API's JSON (account fields stripped), for anything not modelled here.

    """

    model_config = ConfigDict(frozen=True)

    status: Status
    task_id: str | None = None
    trace_id: str | None = None
    images: list[GeneratedImage] = Field(default_factory=list)
    error: ResultError | None = None
    raw: dict[str, Any] | None = Field(default=None, repr=False)

    @classmethod
    def from_response(
        cls, data: dict[str, Any], *, task_id: str | None = None, trace_id: str | None = None
    ) -> ImageResult:
        """Parse a synchronous answer, a callback body or a task record's ``response``.

        Args:
            data: The decoded JSON object.
            task_id, trace_id: Fallbacks when ``data`` lacks them (e.g. from the task record).

        Returns:
            ``succeeded`` when ``success`` is true and ``data`` has images, ``pending`` when
            ``success`` is true without images (an acknowledgement), ``failed`` otherwise.

        """
        clean = _strip_account_fields(data) if isinstance(data, dict) else {}
        return cls._from_clean(clean, task_id=task_id, trace_id=trace_id)

    @classmethod
    def _from_clean(
        cls, clean: dict[str, Any], *, task_id: str | None, trace_id: str | None
    ) -> ImageResult:
        """:meth:`from_response` of a body already without :data:`ACCOUNT_FIELDS`."""
        task_id = opt_str(clean.get("task_id")) or task_id
        trace_id = opt_str(clean.get("trace_id")) or trace_id
        if clean.get("success") is False or clean.get("error"):
            err = clean.get("error")
            error = (
                ResultError(code=opt_str(err.get("code")), message=_text(err.get("message")))
                if isinstance(err, dict)
                else ResultError(message=_text(err) or "the API reported success=false")
            )
            return cls(status="failed", task_id=task_id, trace_id=trace_id, error=error, raw=clean)
        items = clean.get("data")
        images = [
            GeneratedImage(prompt=opt_str(item.get("prompt")), image_url=item["image_url"])
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and opt_str(item.get("image_url"))
        ]
        status: Status = "succeeded" if images else "pending"
        return cls(status=status, task_id=task_id, trace_id=trace_id, images=images, raw=clean)

    @classmethod
    def from_callback(cls, payload: dict[str, Any] | str | bytes) -> ImageResult:
        """Parse and check the body the API POSTs to a ``callback_url`` (same shape as a
        synchronous success, per the Nano Banana Images API Integration Guide,
        https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e).

        Args:
            payload: The decoded JSON object, or the raw body (``str``/``bytes``).

        Raises:
            ValueError: The body is not JSON, not an object, or has no ``task_id``, or claims
                success without any ``data[].image_url``.

        """
        import json

        data: Any = payload
        if isinstance(payload, (str, bytes)):
            try:
                data = json.loads(payload)
            except RecursionError:
                raise ValueError("callback payload is nested too deeply to read") from None
            except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
                snippet = (
                    payload[:80]
                    if isinstance(payload, str)
                    else payload[:80].decode(errors="replace")
                )
                raise ValueError(
                    f"callback payload is not JSON ({exc}); body starts with {snippet!r}"
                ) from exc
        if not isinstance(data, dict):
            raise ValueError(f"callback payload must be a JSON object, got {type(data).__name__}")
        if not opt_str(data.get("task_id")):
            raise ValueError("callback payload has no task_id; it is not a Nano Banana callback")
        try:
            result = cls.from_response(data)
        except RecursionError:
            raise ValueError(
                f"callback payload for task_id={data.get('task_id')} is nested too deeply"
            ) from None
        if result.status == "pending":
            raise ValueError(
                f"callback payload for task_id={result.task_id} reports success without images"
            )
        return result

    @property
    def urls(self) -> list[str]:
        """The image URLs, in order (``[]`` while pending or failed)."""
        return [image.image_url for image in self.images]

    def raise_for_status(self) -> ImageResult:
        """Return ``self`` unless failed; a failure raises :class:`TaskFailedError` (with ids)."""
        if self.status == "failed":
            error = self.error or ResultError()
            raise TaskFailedError(
                error.message, task_id=self.task_id, trace_id=self.trace_id, code=error.code
            )
        return self

    def download(
        self,
        directory: str | os.PathLike[str] = "out",
        *,
        client: _Downloader | None = None,
        prefix: str | None = None,
        max_bytes: int | None = None,
    ) -> list[Path]:
        """Download every image into ``directory`` (created if missing), streamed to disk.

        Args:
            directory: Target folder (default ``./out``).
            client: The client whose session and pools to use (default: a short-lived client
                without a token; downloads never send it).
            prefix: File name stem; default ``<task_id>-<n>``. Names are sanitised and never
                overwrite an existing file.
            max_bytes: Size cap per image in bytes (default 64 MiB); larger downloads are aborted.

        Returns:
            The written paths, in image order.

        Raises:
            NanoBananaError: The result has no images (pending / failed), or a download failed.
            InvalidImageError: A URL that is not http(s), or a body that is not an image.

        """
        if client is not None:
            return client.download(self, directory, prefix=prefix, max_bytes=max_bytes)
        from langchain_nanobanana.images import download_result

        return download_result(self, directory, prefix=prefix, max_bytes=max_bytes)

    def to_content_blocks(self) -> list[dict[str, Any]]:
        """LangChain standard image content blocks, one per image (``{"type": "image", "url"}``),
        built with ``langchain_core.messages.content.create_image_block``.
        """
        from langchain_nanobanana.images import image_content_block

        return [dict(image_content_block(url)) for url in self.urls]

    def to_text(self) -> str:
        """A short summary for a model or a log: status, ids and URLs (never base64 nor
        account fields).
        """
        ids = f"task_id={self.task_id}, trace_id={self.trace_id}"
        if self.status == "succeeded":
            lines = [f"Generated {len(self.images)} image(s) ({ids}):"]
            lines += [f"- {url}" for url in self.urls]
            return "\n".join(lines)
        if self.status == "pending":
            return (
                f"Image task submitted and still running ({ids}). "
                "Look it up later with the task tool and this task_id."
            )
        error = self.error or ResultError()
        return f"Image task failed ({ids}): {error.code}: {error.message}"

    def _repr_html_(self) -> str:
        """Notebook display: the images inline, with status and ids underneath."""
        caption = html.escape(f"{self.status} · task_id={self.task_id} · trace_id={self.trace_id}")
        imgs = "".join(
            f'<img src="{html.escape(url, quote=True)}" style="max-width:320px;margin:4px" '
            f'alt="{html.escape(img.prompt or "", quote=True)[:200]}"/>'
            for img, url in zip(self.images, self.urls, strict=True)
        )
        if self.error is not None:
            caption += html.escape(f" · {self.error.code}: {self.error.message}")
        return f"<div>{imgs}<div><small>{caption}</small></div></div>"


class TaskRecord(BaseModel):
    """A task as ``POST /nano-banana/tasks`` returns it (vendor Tasks API guide).

    Attributes:
        id: The task id.
        created_at: Unix time in seconds (float) when the task was created.
        finished_at: Unix time in seconds when it finished, ``None`` while running.
        request: The original request body (account fields stripped).
        status: ``"pending"`` while the record has no ``response``, else the result's status.
        result: The parsed ``response`` as :class:`ImageResult`, ``None`` while running.
        trace_id: The record's trace id.
        raw: The record as received, account fields stripped.

    """

    model_config = ConfigDict(frozen=True)

    id: str
    created_at: float | None = None
    finished_at: float | None = None
    request: dict[str, Any] | None = Field(default=None, repr=False)
    status: Status
    result: ImageResult | None = None
    trace_id: str | None = None
    raw: dict[str, Any] | None = Field(default=None, repr=False)

    @classmethod
    def from_api(cls, record: object, *, task_id: str | None = None) -> TaskRecord:
        """Parse one task record (vendor Tasks API guide).

        Done when the record has a ``response`` (``success`` true with images -> succeeded;
        ``success`` false -> failed), or when a ``state``/``status`` word says it failed
        (``FAILED_WORDS``; vendor SDK) even without a ``response``. Otherwise ``pending``.

        Args:
            record: The decoded record (any JSON value: answers are never trusted).
            task_id: The id asked for, used when the record names none.

        Raises:
            NanoBananaError: Not an object, or no id at all (the answer layer turns this into an
                ``APIResponseValidationError`` naming the task).

        """
        if not isinstance(record, dict):
            raise NanoBananaError(f"task record is a {type(record).__name__}, not an object")
        clean = _strip_account_fields(record)
        response = clean.get("response")
        if response is not None and not isinstance(response, dict):
            raise NanoBananaError(f"the record's response is a {type(response).__name__}")
        named = opt_str(response.get("task_id")) if isinstance(response, dict) else None
        found = opt_str(clean.get("id")) or opt_str(clean.get("task_id")) or named or task_id
        if found is None:
            raise NanoBananaError(f"task record without an id: keys {sorted(map(str, clean))[:20]}")
        if named is not None and named != found:  # never hand task B's images to A's waiter
            raise NanoBananaError(f"the record of task {found!r} holds the response of {named!r}")
        trace_id = opt_str(clean.get("trace_id"))
        result = (
            ImageResult._from_clean(response, task_id=found, trace_id=trace_id)
            if isinstance(response, dict)
            else None
        )
        if result is not None and result.status == "pending":
            problem = _unreadable_response(response, finished=clean.get("finished_at") is not None)
            if problem:
                raise NanoBananaError(problem)
            result = None  # a response without a verdict yet: still running
        word = next(
            (w.lower() for w in (opt_str(clean.get(k)) for k in ("state", "status")) if w), None
        )
        if result is None and word in FAILED_WORDS:
            error = ResultError(code=word, message=f"the task ended with state {word!r}")
            result = ImageResult(
                status="failed", task_id=found, trace_id=trace_id, error=error, raw=None
            )
        request = clean.get("request")
        return cls(
            id=found,
            created_at=_float(clean.get("created_at")),
            finished_at=_float(clean.get("finished_at")),
            request=request if isinstance(request, dict) else None,
            status=result.status if result else "pending",
            result=result,
            trace_id=trace_id,
            raw=clean,
        )

    def to_result(self) -> ImageResult:
        """The result, or a ``pending`` :class:`ImageResult` carrying this task's ids."""
        return self.result or ImageResult(status="pending", task_id=self.id, trace_id=self.trace_id)


def _unreadable_response(response: object, *, finished: bool) -> str | None:
    """Why a task record's ``response`` that holds no images and no error cannot be read, or
    ``None`` when it simply has no verdict yet (still running).

    ``data`` of the wrong shape is unreadable at once. ``success: true`` without any ``data`` is
    unreadable once the record says it ``finished``; before that it is the submission's
    acknowledgement echoed while the task runs (vendor Tasks API guide: a running task may carry
    a ``response`` without ``finished_at``), so reading it as an error would end every wait.
    """
    if not isinstance(response, dict):
        return None
    items = response.get("data")
    if items is not None and not isinstance(items, list):
        return f"the response's data is a {type(items).__name__}, not a list"
    if isinstance(items, list) and items:
        return "the response's data has no readable image_url"
    if response.get("success") is True and finished:
        return "the record is finished and says success but carries no images"
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)[:200]


def _float(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            return None
        return number if math.isfinite(number) else None
    return None
