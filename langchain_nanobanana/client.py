"""``NanoBananaClient``: the one HTTP core that the tools and the Runnable share.

Endpoints (SPEC Part 1): ``POST /nano-banana/images`` (billable submission, seeds 000/001) and
``POST /nano-banana/tasks`` (``retrieve`` / ``retrieve_batch``, vendor Tasks API guide, seed 004).
Async methods run each HTTP exchange in the default thread pool (``asyncio.to_thread``: a bounded
number of threads) and wait between polls with ``asyncio.sleep``, never blocking the event loop.

Why over 400 lines: one public class with six sync methods and their six async twins, each with
the docstring (shapes, units, errors) users read in their editor; the HTTP, polling and parsing
work already lives in ``_http``, ``_polling`` and ``results``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import requests
from pydantic import SecretStr

from langchain_nanobanana import _http
from langchain_nanobanana._polling import PollSchedule, PollState, chunked, parse_batch
from langchain_nanobanana.errors import (
    APIConnectionError,
    AuthenticationError,
    NanoBananaAPIError,
    NanoBananaError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
)
from langchain_nanobanana.images import ImageInput, to_image_urls
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult, TaskRecord

__all__ = ["DEFAULT_BASE_URL", "ENV_BASE_URL", "ENV_TOKEN", "NanoBananaClient"]

DEFAULT_BASE_URL = "https://api.acedata.cloud"
ENV_TOKEN = "ACEDATACLOUD_API_TOKEN"  # noqa: S105 - [vendor SDK] env var name, not a secret
ENV_BASE_URL = "ACEDATACLOUD_API_BASE_URL"  # [vendor SDK] name
#: ``retrieve_batch`` chunk size: ids per poll request.
BATCH_CHUNK = 50
_CONNECT_TIMEOUT = 10.0

#: Errors while polling that do not lose the task: polling goes on until ``max_wait``.
_TRANSIENT = (APIConnectionError, ServerError, RateLimitError)


def _transient(exc: NanoBananaError) -> bool:
    """Whether a failed task read is worth another round: ``_TRANSIENT``, or a 2xx answer that
    could not be read (malformed or truncated body): the read is idempotent, the task runs on.
    """
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, NanoBananaAPIError) and 200 <= exc.status_code < 300


PollObserver = Callable[[list[TaskRecord], float], None]


class NanoBananaClient:
    """Client of the Nano Banana Images API with validation, retries and task polling.

    Setup:
        ``export ACEDATACLOUD_API_TOKEN=...`` (and optionally ``ACEDATACLOUD_API_BASE_URL``, e.g.
        the mirror ``https://api.xhuoapi.ai/v1``; seed 003).

    Instantiate:
        .. code-block:: python

            from langchain_nanobanana import NanoBananaClient

            client = NanoBananaClient()  # token and base URL from the environment

    Invoke:
        .. code-block:: python

            result = client.generate("a white siamese cat", aspect_ratio="2:3")
            result.urls  # ['https://platform.cdn.acedata.cloud/nanobanana/....png']

    Args:
        api_token: The API token (``str`` or ``SecretStr``); default ``$ACEDATACLOUD_API_TOKEN``.
            Missing everywhere -> :class:`AuthenticationError` (``code="no_token"``) on the first
            call. Kept as ``SecretStr``: never in a repr, log or error.
        base_url: Default ``$ACEDATACLOUD_API_BASE_URL``, else ``https://api.acedata.cloud``. May
            carry a path prefix (``…/v1``). Plain ``http://`` only for loopback hosts.
        mode: ``"poll"`` (default): submit with ``"async": true`` and poll ``/nano-banana/tasks``;
            ``"sync"``: one blocking POST that returns the images (30-120+ s).
        timeout: Read timeout in seconds per HTTP request (default 60.0).
        sync_timeout: Read timeout in seconds of a sync-mode submission (default 1800.0).
        max_retries: Retry bound for both retry policies (default 2); see ``_http``.
        backoff_factor: Seconds; the n-th consecutive retry waits ``backoff_factor * 2**(n-1)``
            plus up to ``backoff_factor / 2`` of random jitter (default 0.5), unless the answer
            carries a ``Retry-After`` (seconds or HTTP-date, honoured up to 60 s).
        poll_interval: First wait between polls in seconds (default 1.0), growing x1.5 per poll.
        max_poll_interval: Cap of that wait in seconds (default 10.0).
        max_wait: Seconds a poll may wait before :class:`TaskTimeoutError` (default 600.0).
        session: A ``requests.Session`` to use; the client mounts its retry adapters on it.
            Default: a new pooled session, closed by :meth:`close`.
        pool_maxsize: Connections kept per host (default 10); size to your concurrency.

    Raises:
        ValueError: ``base_url`` not absolute http(s), plain http to a non-loopback host, an
            unknown ``mode``, or a negative number.

    """

    def __init__(
        self,
        api_token: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        mode: Literal["poll", "sync"] = "poll",
        timeout: float = 60.0,
        sync_timeout: float = 1800.0,
        max_retries: int = 2,
        backoff_factor: float = 0.5,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        max_wait: float = 600.0,
        session: requests.Session | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        token = api_token if api_token is not None else os.environ.get(ENV_TOKEN)
        self._token: SecretStr | None = (
            token if isinstance(token, SecretStr) else SecretStr(token) if token else None
        )
        self.base_url = _http.check_base_url(
            base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        )
        if mode not in ("poll", "sync"):
            raise ValueError(f"mode={mode!r} is not allowed; use 'poll' or 'sync'")
        for name, value in (
            ("timeout", timeout),
            ("sync_timeout", sync_timeout),
            ("poll_interval", poll_interval),
            ("max_poll_interval", max_poll_interval),
            ("max_wait", max_wait),
            ("max_retries", max_retries),
            ("backoff_factor", backoff_factor),
        ):
            if value < 0:
                raise ValueError(f"{name}={value!r} is not allowed; use a number >= 0")
        self.mode: Literal["poll", "sync"] = mode
        self.timeout = timeout
        self.sync_timeout = sync_timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.max_wait = max_wait
        self.pool_maxsize = pool_maxsize
        self._owns_session = session is None
        self.session = _http.mount_policies(
            session or requests.Session(),
            self.base_url,
            max_retries=max_retries,
            pool_maxsize=pool_maxsize,
            backoff_factor=backoff_factor,
        )
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        token = "set" if self._token else "missing"
        return f"NanoBananaClient(base_url={self.base_url!r}, mode={self.mode!r}, token={token})"

    def __enter__(self) -> NanoBananaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> NanoBananaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled session (only when the client created it)."""
        if self._owns_session:
            self.session.close()

    def ensure_pool_size(self, size: int) -> None:
        """Keep at least ``size`` connections per host in the session's pools (never shrinks).

        Called by ``NanoBananaImageGenerator.batch`` / ``abatch`` with the concurrency they use, so
        every concurrent request hands its connection back for reuse (keep-alive) instead of
        urllib3 discarding the ones over ``pool_maxsize`` with a "pool is full" warning.
        """
        with self._lock:
            if size > self.pool_maxsize:
                self.pool_maxsize = size
                _http.resize_pools(self.session, size)

    def _headers(self) -> dict[str, str]:
        if self._token is None or not self._token.get_secret_value():
            raise AuthenticationError(
                f"No API token: pass api_token=... or set the {ENV_TOKEN} environment variable",
                status_code=401,
                code="no_token",
            )
        return {
            "authorization": f"Bearer {self._token.get_secret_value()}",
            "accept": "application/json",
            "content-type": "application/json",
        }

    def _post(
        self,
        path: str,
        payload: dict[str, Any],
        *,
        read_timeout: float,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        return _http.post_json(
            self.session,
            self.base_url + path,
            payload,
            headers=self._headers(),
            timeout=(min(_CONNECT_TIMEOUT, read_timeout or _CONNECT_TIMEOUT), read_timeout),
            billable=path == _http.SUBMIT_PATH,
            task_id=task_id,
        )

    # -- building requests ------------------------------------------------------------------

    @staticmethod
    def _generate_request(prompt: str, **fields: Any) -> ImageRequest:
        return ImageRequest(
            action="generate", prompt=prompt, **{k: v for k, v in fields.items() if v is not None}
        )

    @staticmethod
    def _edit_request(
        prompt: str,
        images: Sequence[ImageInput] | ImageInput,
        allowed_image_dir: str | os.PathLike[str] | None,
        **fields: Any,
    ) -> ImageRequest:
        urls = to_image_urls(images, allowed_image_dir=allowed_image_dir)
        return ImageRequest(
            action="edit",
            prompt=prompt,
            image_urls=urls,
            **{k: v for k, v in fields.items() if v is not None},
        )

    def _submission(self, request: ImageRequest, wait: bool) -> tuple[dict[str, Any], float]:
        """The body and read timeout of a submission: async unless sync mode waits in line."""
        in_line = self.mode == "sync" and wait and request.callback_url is None
        if in_line:
            return request.to_payload(), self.sync_timeout
        return request.to_payload(async_=request.callback_url is None), self.timeout

    @staticmethod
    def _acknowledged(data: dict[str, Any]) -> ImageResult:
        result = ImageResult.from_response(data)
        if result.status == "pending":
            _http.raise_for_missing(result.task_id, "task_id", data, 200)
        return result

    # -- sync API -----------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
    ) -> ImageResult:
        """Generate images from ``prompt`` (``action="generate"``).

        Args:
            prompt: Non-blank text.
            model, aspect_ratio, resolution, count, callback_url: See :class:`ImageRequest`;
                ``None`` leaves the API default (``nano-banana``, ``1:1``, ``1K``, 1 image).
            wait: ``False`` returns at once with ``status="pending"`` and the ``task_id``.

        Returns:
            ImageResult: ``succeeded`` with ``images``; ``pending`` when ``wait=False`` or a
            ``callback_url`` is given.

        Raises:
            pydantic.ValidationError: A bad argument, before any request.
            TaskFailedError, TaskTimeoutError, SubmissionUncertainError, NanoBananaAPIError:
                see :meth:`submit`.

        """
        request = self._generate_request(
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            callback_url=callback_url,
        )
        return self.submit(request, wait=wait)

    def edit(
        self,
        prompt: str,
        images: Sequence[ImageInput] | ImageInput,
        *,
        model: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
        allowed_image_dir: str | os.PathLike[str] | None = None,
    ) -> ImageResult:
        """Edit ``images`` as ``prompt`` says (``action="edit"``; the first image sets the size).

        Args:
            prompt: Non-blank text.
            images: One or more of: http(s) URL, ``data:image/...;base64`` URI, a local path
                (``pathlib.Path`` or ``str``) or raw ``bytes``; paths and bytes become data URIs
                (MIME type sniffed from magic bytes). Each at most 10 MiB (seed 001).
            model, count, callback_url, wait: As in :meth:`generate`.
            allowed_image_dir: When set, local paths must resolve inside this folder.

        Raises:
            InvalidImageError: An image that cannot be sent, before any request.
            pydantic.ValidationError, TaskFailedError, ...: as :meth:`generate`.

        """
        request = self._edit_request(
            prompt, images, allowed_image_dir, model=model, count=count, callback_url=callback_url
        )
        return self.submit(request, wait=wait)

    def submit(self, request: ImageRequest, *, wait: bool = True) -> ImageResult:
        """Send one validated request and, unless told not to, wait for its images.

        Poll mode sends ``"async": true`` and polls the task; sync mode makes one blocking POST
        (``sync_timeout``). ``wait=False`` or a ``callback_url`` returns the pending task at once.

        Raises:
            TaskFailedError: The task finished with ``success: false`` (code, task_id, trace_id).
            TaskTimeoutError: Polling ran past ``max_wait``; resume with :meth:`poll_task`.
            SubmissionUncertainError: No answer to the billable POST (read timeout, dropped
                connection, or a 5xx); it may have run: look it up, don't resubmit blindly. A 5xx
                whose body names a ``task_id`` is first resolved by reading that task (a read,
                never billed): its result is returned, or its failure raised as TaskFailedError.
            RateLimitError: Still 429 after ``max_retries`` (``retry_after`` seconds known).
            AuthenticationError, BadRequestError, NanoBananaAPIError: other API answers.
            APIConnectionError: The API could not be reached; nothing was sent.

        """
        payload, read_timeout = self._submission(request, wait)
        data = self._post_submission(payload, read_timeout)
        result = self._acknowledged(data)
        if result.status != "pending" or not wait or request.callback_url is not None:
            return result.raise_for_status()
        assert result.task_id is not None  # checked by _acknowledged
        return self.poll_task(result.task_id)

    def _post_submission(self, payload: dict[str, Any], read_timeout: float) -> dict[str, Any]:
        try:
            return self._post(_http.SUBMIT_PATH, payload, read_timeout=read_timeout)
        except ServerError as exc:
            uncertain = SubmissionUncertainError(
                f"The API answered HTTP {exc.status_code} (code={exc.code}) to the submission: "
                f"{exc.message}",
                task_id=exc.task_id,
                trace_id=exc.trace_id,
            )
            if exc.task_id is None:
                raise uncertain from exc
            return self._recover_task(uncertain, exc)

    def _recover_task(
        self, uncertain: SubmissionUncertainError, cause: ServerError
    ) -> dict[str, Any]:
        """A 5xx answer that names a task: read the task (a read, never billed) instead of
        losing it. Returns the answer the submission would have had: the task's response when it
        is done (a failure then raises ``TaskFailedError`` like in poll mode), else an
        acknowledgement that the caller polls. Raises ``uncertain`` when the task cannot be read.
        """
        assert uncertain.task_id is not None
        try:
            record = self.get_task(uncertain.task_id)
        except NanoBananaError:
            raise uncertain from cause
        data: dict[str, Any] = dict(record.result.raw or {}) if record.result else {"success": True}
        data.setdefault("task_id", record.id)
        data.setdefault("trace_id", record.trace_id or uncertain.trace_id)
        return data

    def get_task(self, task_id: str) -> TaskRecord:
        """Read one task (``{"action": "retrieve", "id": task_id}``); a read, retried broadly.

        Returns:
            TaskRecord: ``status`` ``pending`` until the record has a ``response``.

        Raises:
            NanoBananaAPIError: A non-2xx answer after retries (``task_id`` attached).
            APIConnectionError: Transport failure after retries.

        """
        data = self._post(
            _http.TASKS_PATH,
            {"action": "retrieve", "id": task_id},
            read_timeout=self.timeout,
            task_id=task_id,
        )
        return TaskRecord.from_api(data)

    def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Read many tasks with ``retrieve_batch``, ``BATCH_CHUNK`` (50) ids per request.

        Returns:
            The records found, in the order of ``task_ids`` (unknown ids are left out).

        """
        records: dict[str, TaskRecord] = {}
        for chunk in chunked(list(dict.fromkeys(task_ids)), BATCH_CHUNK):
            records.update(self._retrieve_batch(chunk))
        return [records[t] for t in task_ids if t in records]

    def _retrieve_batch(self, ids: list[str]) -> dict[str, TaskRecord]:
        data = self._post(
            _http.TASKS_PATH, {"action": "retrieve_batch", "ids": ids}, read_timeout=self.timeout
        )
        return parse_batch(data)

    def poll_task(self, task_id: str, *, max_wait: float | None = None) -> ImageResult:
        """Poll ``POST /nano-banana/tasks`` (``action="retrieve"``) until the task is done.

        The wait starts at ``poll_interval`` seconds and grows x1.5 up to ``max_poll_interval``.
        Transient errors (connection, 5xx, 429 after the read retries, an unreadable 2xx body)
        never drop the task: polling goes on until the budget runs out. Never resubmits the
        generation.

        Args:
            task_id: The ``task_id`` returned by a submission.
            max_wait: Total budget in seconds (default: the client's ``max_wait``).

        Returns:
            ImageResult with ``status="succeeded"``.

        Raises:
            TaskFailedError: The task failed (code, message, task_id, trace_id).
            TaskTimeoutError: The budget ran out; the task may still finish: poll again.
            AuthenticationError, BadRequestError: Not transient; raised at once.

        """
        result: ImageResult = self.poll_tasks(
            [task_id], max_wait=max_wait, return_exceptions=False
        )[0]
        return result

    def poll_tasks(
        self,
        task_ids: Sequence[str],
        *,
        max_wait: float | None = None,
        return_exceptions: bool = True,
        on_round: PollObserver | None = None,
    ) -> list[Any]:
        """Poll many tasks together: one ``retrieve`` (single id) or one ``retrieve_batch`` per
        50 ids per round, until every task is done or ``max_wait`` seconds pass.

        Args:
            task_ids: Task ids to wait for.
            max_wait: Budget in seconds (default: the client's ``max_wait``).
            return_exceptions: ``True``: a failed task yields its ``TaskFailedError`` and a task
                still running at the deadline its ``TaskTimeoutError`` in the list; ``False``:
                the first of them is raised.
            on_round: Called after each round with the records read and elapsed seconds.

        Returns:
            One ``ImageResult`` (or exception) per id, in input order.

        """
        schedule = PollSchedule(
            self.poll_interval,
            self.max_poll_interval,
            self.max_wait if max_wait is None else max_wait,
        )
        state = PollState(task_ids)
        while True:
            try:
                records = self._read_round(state.pending())
            except NanoBananaError as exc:
                if not _transient(exc):
                    raise
                state.last_error = exc
                records = []
            if state.update(records, schedule.elapsed(), return_exceptions):
                schedule.restart()
            if on_round is not None:
                on_round(records, schedule.elapsed())
            delay = schedule.next_delay()
            if state.done() or delay is None:
                return state.finish(schedule.elapsed(), return_exceptions)
            time.sleep(delay)

    def _read_round(self, pending: list[str]) -> list[TaskRecord]:
        if len(pending) == 1:
            return [self.get_task(pending[0])]
        return self.get_tasks(pending)

    # -- async API ----------------------------------------------------------------------------

    async def agenerate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
    ) -> ImageResult:
        """Async :meth:`generate`: HTTP in the default thread pool, waits with ``asyncio.sleep``."""
        request = self._generate_request(
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            callback_url=callback_url,
        )
        return await self.asubmit(request, wait=wait)

    async def aedit(
        self,
        prompt: str,
        images: Sequence[ImageInput] | ImageInput,
        *,
        model: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
        allowed_image_dir: str | os.PathLike[str] | None = None,
    ) -> ImageResult:
        """Async :meth:`edit` (local files are read in a worker thread)."""
        request = await asyncio.to_thread(
            self._edit_request,
            prompt,
            images,
            allowed_image_dir,
            model=model,
            count=count,
            callback_url=callback_url,
        )
        return await self.asubmit(request, wait=wait)

    async def asubmit(self, request: ImageRequest, *, wait: bool = True) -> ImageResult:
        """Async :meth:`submit`; same errors."""
        payload, read_timeout = self._submission(request, wait)
        data = await asyncio.to_thread(self._post_submission, payload, read_timeout)
        result = self._acknowledged(data)
        if result.status != "pending" or not wait or request.callback_url is not None:
            return result.raise_for_status()
        assert result.task_id is not None
        return await self.apoll_task(result.task_id)

    async def aget_task(self, task_id: str) -> TaskRecord:
        """Async :meth:`get_task`."""
        return await asyncio.to_thread(self.get_task, task_id)

    async def aget_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Async :meth:`get_tasks`."""
        return await asyncio.to_thread(self.get_tasks, task_ids)

    async def apoll_task(self, task_id: str, *, max_wait: float | None = None) -> ImageResult:
        """Async :meth:`poll_task`: waits with ``asyncio.sleep``, never blocks the event loop."""
        results = await self.apoll_tasks([task_id], max_wait=max_wait, return_exceptions=False)
        return results[0]  # type: ignore[no-any-return]

    async def apoll_tasks(
        self,
        task_ids: Sequence[str],
        *,
        max_wait: float | None = None,
        return_exceptions: bool = True,
        on_round: Callable[[list[TaskRecord], float], Any] | None = None,
    ) -> list[Any]:
        """Async :meth:`poll_tasks`; ``on_round`` may be a coroutine function."""
        schedule = PollSchedule(
            self.poll_interval,
            self.max_poll_interval,
            self.max_wait if max_wait is None else max_wait,
        )
        state = PollState(task_ids)
        while True:
            try:
                records = await asyncio.to_thread(self._read_round, state.pending())
            except NanoBananaError as exc:
                if not _transient(exc):
                    raise
                state.last_error = exc
                records = []
            if state.update(records, schedule.elapsed(), return_exceptions):
                schedule.restart()
            if on_round is not None:
                maybe = on_round(records, schedule.elapsed())
                if asyncio.iscoroutine(maybe):
                    await maybe
            delay = schedule.next_delay()
            if state.done() or delay is None:
                return state.finish(schedule.elapsed(), return_exceptions)
            await asyncio.sleep(delay)
