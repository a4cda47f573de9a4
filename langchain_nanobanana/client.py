"""``NanoBananaClient``: thin sync and async drivers over the core (``_core``), the transport
(``_transport``) and the client's one poller (``_poller``).

Endpoints: ``POST /nano-banana/images`` (billable submission; the Nano Banana Images API reference,
https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d, and Integration
Guide, https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e) and
``POST /nano-banana/tasks`` (``retrieve``: the Nano Banana Tasks API Integration Guide,
https://platform.acedata.cloud/documents/e01ef840-3158-4eec-a6e7-337dada8d155; ``retrieve_batch``:
the vendor's MCP server ``mcp-nanobanana-pro`` and CLI ``nano-banana-pro-cli``). Every decision
(request validation, answer classification, retry policy, poll schedule) lives in those modules;
the sync and async methods differ only in how they wait: async methods run each HTTP exchange
in the default thread pool and wait on the poller with ``asyncio`` futures, never blocking the event
loop.

The class is built in three modules, one job each: ``_client_base.py`` (settings, transport,
poller, the I/O steps every method shares), this module (the public sync methods) and
``_client_async.py`` (their async twins).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from langchain_nanobanana._client_async import AsyncMethods
from langchain_nanobanana._client_base import BATCH_ANSWER_CAP, RECORD_CAP, _Gather, _number
from langchain_nanobanana._core import answers
from langchain_nanobanana._core.polling import BATCH_CHUNK, Outcome, chunked
from langchain_nanobanana._env import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from langchain_nanobanana._inputs import ImageInput
from langchain_nanobanana._request import build_request
from langchain_nanobanana._waits import Watch, iter_outcomes
from langchain_nanobanana.errors import NanoBananaError, on_read
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult, TaskRecord

logger = logging.getLogger(__name__)

__all__ = [
    "BATCH_ANSWER_CAP",
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_TOKEN",
    "RECORD_CAP",
    "NanoBananaClient",
]


class NanoBananaClient(AsyncMethods):
    """Client of the Nano Banana Images API with validation, retries and shared task polling.

    Setup:
        ``export ACEDATACLOUD_API_TOKEN=...`` (and optionally ``ACEDATACLOUD_API_BASE_URL``, e.g.
        the mirror ``https://api.xhuoapi.ai/v1`` of the XHuoAPI integration guide,
        https://docs.xhuoapi.ai).

    Instantiate:
        .. code-block:: python

            from langchain_nanobanana import NanoBananaClient

            client = NanoBananaClient()  # token and base URL from the environment

    Invoke:
        .. code-block:: python

            result = client.generate("a white siamese cat", aspect_ratio="2:3")
            result.urls  # ['https://platform.cdn.acedata.cloud/nanobanana/....png']

    Args:
        api_token: ``str`` or ``SecretStr`` (also accepted as ``api_key``, the name other
            LangChain partner packages use); default ``$ACEDATACLOUD_API_TOKEN``. Missing
            everywhere -> :class:`AuthenticationError` (``code="no_token"``) on the first call.
        base_url: Default ``$ACEDATACLOUD_API_BASE_URL``, else ``https://api.acedata.cloud``. May
            carry a path prefix (``…/v1``); normalised (dot segments, case, IDN, trailing ``?``).
            Plain ``http://`` only for loopback hosts; ``user:pass@`` refused.
        mode: ``"poll"`` (default): submit with ``"async": true`` and poll; ``"sync"``: one
            blocking POST that returns the images (30-120+ s).
        timeout: Seconds per HTTP request (default 60.0): bounds the connection, each socket
            read, and reading the body once the headers arrived. (A server that drips its status
            line byte by byte can stretch one request further; a wait for a task is bounded by
            ``max_wait`` all the same, because each waiter keeps its own deadline.)
        sync_timeout: The same for a sync-mode submission (default 1800.0).
        max_retries: Retry bound of both retry policies (default 2).
        backoff_factor: Seconds; the n-th consecutive retry waits ``backoff_factor * 2**(n-1)``
            plus up to half that of jitter (default 0.5), unless ``Retry-After`` says (<= 60 s).
        poll_interval: First wait between poll rounds in seconds (default 1.0), growing x1.5.
        max_poll_interval: Cap of that wait in seconds (default 10.0).
        max_wait: Seconds one wait for a task lasts at most, slow answers included, before
            :class:`TaskTimeoutError` (default 600.0).
        session: A ``requests.Session`` to use (the client mounts its adapters on it; you close
            it). Default: a new pooled session, closed by :meth:`close`.
        pool_maxsize: Connections kept per host (default 10); grows with ``batch`` concurrency.
        journal: A write-ahead journal that makes ``idempotency_key=`` submissions resumable:
            the same key never pays twice (see ``langchain_nanobanana.journal``). A SQLite file
            path, a ``postgresql://`` URL (extra ``postgres``), or a journal object
            (``Journal``, ``PostgresJournal``). Default: none. Opened (and checked) here.
        rate_limit: API requests per second the account allows (submissions and task reads
            together), when known: a token bucket paces every sender of this client 3 % below
            it. Default ``None``: no fixed pace; the client learns one from the first 429.
            Either way every sender of the client shares one gate: a 429 pauses all of them
            once (``Retry-After``) and halves the submissions in flight, which grow back by one
            per second without a 429; ``max_retries`` bounds the 429s one call tolerates, then
            :class:`RateLimitError`. See ``langchain_nanobanana._ratelimit``.

    Raises:
        ValueError: A bad ``base_url`` or ``mode``; a negative, NaN or infinite number; a
            ``rate_limit`` that is not a finite number > 0 (``0``, negative, NaN, inf, a bool).
        JournalError: The journal cannot be opened (not a journal, another schema version, an
            unreachable or unauthorised database); ``JournalHostMismatchError`` (a
            ``ConfigurationError``) when it holds keys for another API host. Before any request.

    Thread- and task-safe: one session, one poller thread shared by every waiter.

    """

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
        idempotency_key: str | None = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
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
            InvalidRequestError: A bad argument (field, value, what is allowed), before any
                request.
            TaskFailedError, TaskTimeoutError, SubmissionUncertainError, NanoBananaAPIError:
                see :meth:`submit`.

        """
        request = build_request(
            "generate",
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            callback_url=callback_url,
        )
        return self.submit(
            request,
            wait=wait,
            idempotency_key=idempotency_key,
            resubmit_uncertain=resubmit_uncertain,
            retry_failed=retry_failed,
        )

    def edit(
        self,
        prompt: str,
        images: Sequence[ImageInput] | ImageInput,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
        idempotency_key: str | None = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        allowed_image_dir: str | os.PathLike[str] | None = None,
    ) -> ImageResult:
        """Edit ``images`` as ``prompt`` says (``action="edit"``).

        Args:
            prompt: Non-blank text.
            images: One or more of: http(s) URL, ``data:image/...;base64`` URI, a local path
                (``pathlib.Path`` or ``str``) or raw ``bytes``; paths and bytes become data URIs
                (MIME type sniffed from magic bytes). Each at most 10 MiB ("10MB", Nano Banana
                Images API reference, https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d).
            model, aspect_ratio, resolution, count, callback_url, wait: As in :meth:`generate`
                (aspect ratio and resolution apply to edits too; older models keep the first
                image's shape).
            allowed_image_dir: When set, local paths must resolve inside this folder.

        Raises:
            InvalidImageError: An image that cannot be sent, before any request.
            InvalidRequestError, TaskFailedError, ...: as :meth:`generate`.

        """
        request = build_request(
            "edit",
            prompt,
            images,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            callback_url=callback_url,
            allowed_image_dir=allowed_image_dir,
        )
        return self.submit(
            request,
            wait=wait,
            idempotency_key=idempotency_key,
            resubmit_uncertain=resubmit_uncertain,
            retry_failed=retry_failed,
        )

    def submit(
        self,
        request: ImageRequest,
        *,
        wait: bool = True,
        idempotency_key: str | None = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
        busy_wait: float | None = None,
    ) -> ImageResult:
        """Send one validated request and, unless told not to, wait for its images: the one
        submit-and-wait path of ``generate``/``edit``, the tools and the Runnable.

        Poll mode sends ``"async": true`` and waits on the client's poller; sync mode makes one
        blocking POST (``sync_timeout``). ``wait=False`` or a ``callback_url`` returns the
        pending task at once.

        Raises:
            TaskFailedError: The task finished and failed (code, task_id, trace_id).
            TaskTimeoutError: ``max_wait`` passed; resume with :meth:`poll_task`.
            SubmissionUncertainError: No usable answer to the billable POST (read timeout,
                dropped connection, a 5xx, an unreadable answer); it may have run: look it up,
                don't resubmit blindly. A 5xx that names a ``task_id`` is first resolved by
                reading that task (a read, never billed).
            RateLimitError: Still 429 after ``max_retries`` (``retry_after`` seconds known).
            AuthenticationError, InsufficientBalanceError, PermissionDeniedError,
            BadRequestError, APIResponseValidationError: other answers.
            APIConnectionError: The API could not be reached; nothing was sent.

            UncertainKeyError: ``idempotency_key``'s earlier submission was in flight
                when its process died: maybe billed; nothing sent (``resubmit_uncertain=True``
                submits again).
            IdempotencyKeyMismatchError: The key names another request; nothing sent.
            ConfigurationError: ``idempotency_key`` without a journal (a ``ValueError``).

        Idempotency (client built with ``journal=``): the key is recorded before the request
        leaves and the task_id as soon as it is known; the same key again returns the recorded
        result (no request), polls the recorded task, or raises as above. A failed task raises
        ``TaskFailedError`` again unless ``retry_failed=True``.

        A ``KeyboardInterrupt`` while waiting carries the task_id (``task_ids`` and a note).
        ``on_progress`` gets the ``nano_banana_progress`` payload after each poll round.
        ``busy_wait``: seconds to wait while another live caller (another worker of a shared
        journal) holds ``idempotency_key`` (default 600.0); ``0`` raises
        ``IdempotencyKeyBusyError`` at once, nothing sent.

        """
        options = dict(
            resubmit_uncertain=resubmit_uncertain, retry_failed=retry_failed, busy_wait=busy_wait
        )
        result = self._start(request, wait, idempotency_key, **options)
        if result.status != "pending" or not wait or request.callback_url is not None:
            return result.raise_for_status()
        assert result.task_id is not None
        return self.poll_task(result.task_id, on_progress=on_progress)

    def get_task(self, task_id: str) -> TaskRecord:
        """Read one task (``{"action": "retrieve", "id": task_id}``); a read, retried broadly.

        Returns:
            TaskRecord: ``status`` ``pending`` until the record has a ``response``.

        Raises:
            NanoBananaAPIError: An error answer after retries (``task_id`` attached).
            APIResponseValidationError: An unreadable answer (``task_id`` attached).
            APIConnectionError: Transport failure after retries.

        """
        try:
            outcome = self._read_chunk([task_id])[task_id]
        except NanoBananaError as exc:
            raise on_read(exc, task_id=task_id) from None
        if isinstance(outcome, NanoBananaError):
            raise on_read(outcome, task_id=task_id)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Read many tasks with ``retrieve_batch``, 50 ids per request (smaller when an answer
        is too big to hold).

        Returns:
            The records found, in the order of ``task_ids`` (unknown ids are left out).

        Raises:
            As :meth:`get_task`, for the first chunk or record that could not be read.

        """
        ids = list(dict.fromkeys(task_ids))
        found: dict[str, TaskRecord | BaseException] = {}
        for chunk in chunked(ids, BATCH_CHUNK):
            found.update(self._read_chunk(chunk) if len(chunk) > 1 else self._read_list(chunk))
        for item in found.values():
            if isinstance(item, BaseException):
                raise item
        return [r for t in task_ids if isinstance(r := found.get(t), TaskRecord)]

    def _read_list(self, ids: list[str]) -> dict[str, TaskRecord | BaseException]:
        answer = self._post_read(
            {"action": "retrieve_batch", "ids": ids}, task_id=None, cap=RECORD_CAP
        )
        return dict(answers.read_batch(answer, task_ids=ids))

    def poll_task(
        self,
        task_id: str,
        *,
        max_wait: float | None = None,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
    ) -> ImageResult:
        """Wait for a task on the client's poller until it ends.

        Rounds are shared with every other waiter on this client (one ``retrieve_batch`` per 50
        pending ids). Transient read errors (connection, 5xx, 429 after retries, an unreadable
        answer) never drop the task. Never resubmits.

        Args:
            task_id: The ``task_id`` returned by a submission.
            max_wait: Budget in seconds for this wait, slow answers included (default: the
                client's ``max_wait``).
            on_progress: Called after each round with the ``nano_banana_progress`` payload.

        Returns:
            ImageResult with ``status="succeeded"``.

        Raises:
            TaskFailedError: The task failed (code, message, task_id, trace_id).
            TaskTimeoutError: The budget ran out (last read error as ``__cause__``); poll again.
            AuthenticationError, InsufficientBalanceError, BadRequestError: at once.

        """
        for _, outcome in self.iter_outcomes([task_id], max_wait=max_wait, on_progress=on_progress):
            return self._outcome(outcome)
        raise AssertionError("unreachable: a wait always ends with an outcome")

    def iter_outcomes(  # a generator: the journal records each outcome as it is yielded
        self,
        task_ids: Sequence[str],
        *,
        max_wait: float | None = None,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
        since: float | None = None,
    ) -> Iterator[tuple[str, Outcome]]:
        """Yield ``(task_id, outcome)`` as each task ends: an ``ImageResult``, or the error it
        ended with (``TaskFailedError``, ``TaskTimeoutError`` at the deadline, ...).

        Args:
            task_ids: Tasks to wait for (shared rounds with every other waiter).
            max_wait: Seconds, this wait's own budget (default: the client's).
            on_progress: Called in this thread after each round with the
                ``nano_banana_progress`` payload for these tasks.
            since: ``time.monotonic()`` of the earliest submission of ``task_ids`` (default:
                now). The first round is due ``poll_interval`` after it, so tasks submitted
                longer ago than that (a batch that took a while to submit) are read at once.

        Leaving early (``break``, an exception) logs the pending task_ids at WARNING; they keep
        running.

        """
        budget = self.max_wait if max_wait is None else _number("max_wait", max_wait)
        for task_id, outcome in iter_outcomes(
            self._poller, list(task_ids), max_wait=budget, on_progress=on_progress, since=since
        ):
            self._record(task_id, outcome)
            yield task_id, outcome

    def poll_now(self) -> None:
        """Read every task this client waits for at once, instead of at the next scheduled
        round (up to ``poll_interval`` later). A batch calls it after its last submission:
        nothing more will join, so tasks that already ended are seen without waiting out an
        interval. Costs one round (one read per 50 pending tasks); safe to call any time.
        """
        self._poller.poll_now()

    def watch(
        self,
        task_ids: Sequence[str],
        on_outcome: Callable[[str, Outcome], Any],
        *,
        max_wait: float | None = None,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
        executor: Executor | None = None,
    ) -> Watch:
        """Wait for ``task_ids`` with callbacks instead of a waiting thread (the command line's
        batch uses it: one executor plus the poller's thread, whatever the number of rows).

        Args:
            task_ids: Tasks to wait for (shared rounds with every other waiter).
            on_outcome: ``on_outcome(task_id, outcome)`` as each task ends (``ImageResult``, or
                the error: ``TaskFailedError``, an API error, ``TaskTimeoutError`` at the
                deadline), once per task, after the journal recorded it. Without ``executor``
                it runs on the poller's thread: keep it quick.
            max_wait: Seconds, this watch's own budget (default: the client's).
            on_progress: Called on the poller's thread after each round with the
                ``nano_banana_progress`` payload for these tasks.
            executor: Where the journal write and ``on_outcome`` run (e.g. a batch's thread
                pool), so the poller's thread only reads: a round that ends thousands of tasks
                is handed on at once instead of waiting on the journal. When the executor is
                shut down they run on the poller's thread (an outcome is never dropped).

        Returns:
            The :class:`~langchain_nanobanana._waits.Watch`: ``cancel()`` stops the callbacks
            (the tasks keep running), ``done`` says whether every task ended.

        Raises:
            NanoBananaError: The client is closed.

        """
        budget = self.max_wait if max_wait is None else _number("max_wait", max_wait)

        def record_then_call(task_id: str, outcome: Outcome) -> None:
            try:
                self._record(task_id, outcome)
            finally:
                on_outcome(task_id, outcome)

        deliver = record_then_call
        if executor is not None:

            def logged(task_id: str, outcome: Outcome) -> None:
                try:
                    record_then_call(task_id, outcome)
                except Exception:  # as on the poller's thread: logged, never silent
                    logger.exception("Recording or handing on task %s failed", task_id)

            def deliver(task_id: str, outcome: Outcome) -> None:
                try:
                    executor.submit(logged, task_id, outcome)
                except RuntimeError:  # shut down: record and call here, never drop it
                    record_then_call(task_id, outcome)

        return Watch(self._poller, list(task_ids), budget, deliver, on_progress).start()

    def poll_tasks(
        self,
        task_ids: Sequence[str],
        *,
        max_wait: float | None = None,
        return_exceptions: bool = True,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
    ) -> list[Any]:
        """Wait for many tasks together; one outcome per id, in input order.

        Args:
            task_ids: Task ids to wait for.
            max_wait: Budget in seconds (default: the client's ``max_wait``).
            return_exceptions: ``True``: failures and timeouts are returned in place;
                ``False``: the first one raises at once, naming the other task_ids.
            on_progress: As in :meth:`iter_outcomes`.

        """
        gather = _Gather(task_ids, return_exceptions)
        for task_id, outcome in self.iter_outcomes(
            gather.ids, max_wait=max_wait, on_progress=on_progress
        ):
            gather.add(task_id, outcome)
        return gather.results()

    def download(
        self,
        result: ImageResult,
        directory: str | os.PathLike[str] = "out",
        *,
        prefix: str | None = None,
        max_bytes: int | None = None,
    ) -> list[Path]:
        """Download every image of ``result`` into ``directory`` through this client's session
        (streamed, size-capped, http(s) only, never with the token). See ``ImageResult.download``.
        """
        from langchain_nanobanana.images import download_result

        return download_result(
            result,
            directory,
            prefix=prefix,
            max_bytes=max_bytes,
            transport=self._transport,
            timeout=(min(10.0, self.timeout), self.timeout),
        )
