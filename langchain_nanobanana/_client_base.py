"""The plumbing of :class:`~langchain_nanobanana.client.NanoBananaClient`: its settings, its one
transport and poller, and the I/O steps its sync and async methods share (send a submission with
the journal's protocol around it, read tasks in rounds, run a blocking step in a thread).

Split from ``client.py`` by job: this module holds what every public method stands on; the public
sync methods are in ``client.py`` and their async twins in ``_client_async.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import requests
from pydantic import SecretStr

from langchain_nanobanana._core import answers
from langchain_nanobanana._core.polling import BATCH_CHUNK, Outcome, chunked
from langchain_nanobanana._env import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from langchain_nanobanana._inputs import MAX_IMAGE_BYTES
from langchain_nanobanana._poller import Poller
from langchain_nanobanana._ratelimit import check_rate_limit
from langchain_nanobanana._transport import RedactedHeader, Transport
from langchain_nanobanana._transport import normalize_base_url as _normalize
from langchain_nanobanana.errors import (
    AuthenticationError,
    ConfigurationError,
    NanoBananaError,
    ResponseTooLargeError,
    SubmissionUncertainError,
    add_note,
    attach_task_ids,
    on_read,
)
from langchain_nanobanana.journal import Decision, KeyStore, open_journal, request_identity
from langchain_nanobanana.journal.protocol import record_outcome, submit_once
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult, TaskRecord

__all__ = ["ClientBase"]

logger = logging.getLogger(__name__)

#: Bytes read at most from a submission answer (a sync answer is a few KiB).
SUBMIT_ANSWER_CAP = 8 * 2**20
#: Images an edit record may echo as data URIs: a size budget for record answers chosen by this
#: package (the vendor's documents give no limit on the number of ``image_urls``).
MAX_ECHOED_IMAGES = 14
#: Bytes read at most for one task record: every echoed image as base64, plus 1 MiB.
RECORD_CAP = MAX_ECHOED_IMAGES * MAX_IMAGE_BYTES * 4 // 3 + 2**20
#: Bytes read at most for one ``retrieve_batch`` answer; a larger one is re-read in halves.
BATCH_ANSWER_CAP = 64 * 2**20

T = TypeVar("T")
_Client = TypeVar("_Client", bound="ClientBase")


def _number(name: str, value: object, *, integer: bool = False, positive: bool = False) -> Any:
    """``value`` when it is a finite number (a whole one with ``integer``) ``>= 0`` (``> 0``
    with ``positive``); else :class:`ConfigurationError` naming the field and what is allowed.
    """
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if (
        not ok
        or isinstance(value, bool)
        or not math.isfinite(value)  # type: ignore[arg-type]
        or value < 0  # type: ignore[operator]
        or (positive and value == 0)
    ):
        kind = "a whole number" if integer else "a finite number of seconds"
        bound = "> 0" if positive else ">= 0"
        raise ConfigurationError(f"{name}={value!r} is not allowed; use {kind} {bound}")
    return value


class ClientBase:
    """Settings, transport, poller and shared I/O steps of ``NanoBananaClient`` (see there)."""

    if TYPE_CHECKING:  # a public read, defined by NanoBananaClient

        def get_task(self, task_id: str) -> TaskRecord:
            """See ``NanoBananaClient.get_task``."""

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
        journal: str | os.PathLike[str] | KeyStore | None = None,
        api_key: str | SecretStr | None = None,
        rate_limit: float | None = None,
    ) -> None:
        if api_key is not None:
            if api_token is not None:
                raise ConfigurationError("pass api_token=... or api_key=..., not both")
            api_token = api_key
        token = api_token if api_token is not None else os.environ.get(ENV_TOKEN)
        self._token: SecretStr | None = (
            token if isinstance(token, SecretStr) else SecretStr(token) if token else None
        )
        self.base_url = _normalize(base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)
        if mode not in ("poll", "sync"):
            raise ConfigurationError(f"mode={mode!r} is not allowed; use 'poll' or 'sync'")
        self.mode: Literal["poll", "sync"] = mode
        self.timeout = _number("timeout", timeout, positive=True)
        self.sync_timeout = _number("sync_timeout", sync_timeout, positive=True)
        self.max_retries = _number("max_retries", max_retries, integer=True)
        self.backoff_factor = _number("backoff_factor", backoff_factor)
        self.poll_interval = _number("poll_interval", poll_interval, positive=True)
        self.max_poll_interval = _number("max_poll_interval", max_poll_interval, positive=True)
        if self.max_poll_interval < self.poll_interval:
            raise ConfigurationError(
                f"max_poll_interval={max_poll_interval!r} is below poll_interval="
                f"{poll_interval!r}; use a cap >= the first interval"
            )
        self.max_wait = _number("max_wait", max_wait)
        _number("pool_maxsize", pool_maxsize, integer=True, positive=True)
        self._transport = Transport(
            self.base_url,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            pool_maxsize=pool_maxsize,
            session=session,
            rate_limit=check_rate_limit(rate_limit),
        )
        self.rate_limit: float | None = self._transport.gate.rate_limit
        self._poller = Poller(
            self._read_round, interval=poll_interval, max_interval=max_poll_interval
        )
        self._owns_journal = journal is not None and not isinstance(journal, KeyStore)
        self.journal: KeyStore | None = None
        if journal is not None:
            opened = journal if isinstance(journal, KeyStore) else open_journal(journal)
            try:
                opened.bind(self.base_url)  # a journal of another host: refused before any request
            except BaseException:
                if self._owns_journal:
                    opened.close()
                self._poller.close()
                self._transport.close()
                raise
            self.journal = opened

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """The pooled ``requests.Session`` (with the client's retry adapters)."""
        return self._transport.session

    @property
    def pool_maxsize(self) -> int:
        """Connections kept per host."""
        return self._transport.pool_maxsize

    def __repr__(self) -> str:
        token = "set" if self._token else "missing"
        return f"NanoBananaClient(base_url={self.base_url!r}, mode={self.mode!r}, token={token})"

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self: _Client) -> _Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the poller (every remaining wait ends with an error naming its task_ids; the
        tasks keep running) and close the session when the client created it.
        """
        self._poller.close()
        self._transport.close()
        if self.journal is not None and self._owns_journal:
            self.journal.close()

    def ensure_pool_size(self, size: int) -> None:
        """Keep at least ``size`` connections per host (never shrinks), so ``size`` concurrent
        requests all return their connection to the pool instead of being discarded.
        """
        self._transport.grow(size)

    def _authorization(self) -> RedactedHeader:
        if self._token is None or not self._token.get_secret_value():
            raise AuthenticationError(
                f"No API token: pass api_token=... or set the {ENV_TOKEN} environment variable",
                status_code=401,
                code="no_token",
            )
        return RedactedHeader("Bearer " + self._token.get_secret_value())

    # -- I/O steps shared by the sync and async drivers ---------------------------------------

    def _send(self, request: ImageRequest, wait: bool) -> ImageResult:
        """POST one submission and read its answer (a sync-mode 5xx that names its task is
        read back once: a read, never billed). Returns the acknowledgement or final result.
        """
        if self._poller.closed:
            raise ConfigurationError("The client is closed; nothing was sent (build a new one)")
        in_line = self.mode == "sync" and wait and request.callback_url is None
        payload = request.to_payload(async_=not in_line and request.callback_url is None)
        authorization = self._authorization()
        try:
            answer = self._transport.post(
                self._transport.submit_url,
                payload,
                authorization=authorization,
                read_timeout=self.sync_timeout if in_line else self.timeout,
                billable=True,
                max_bytes=SUBMIT_ANSWER_CAP,
            )
            result = answers.read_acknowledgement(answer, in_line=in_line)
        except SubmissionUncertainError as exc:
            if exc.task_id is None:
                logger.warning("Submission may have been billed without a result: %s", exc)
                raise
            result = self._recover(exc)
        except ResponseTooLargeError as exc:
            logger.warning("Submission answer too large; it may have been billed: %s", exc)
            raise SubmissionUncertainError(
                f"The submission's answer was too large ({exc})"
            ) from None
        logger.info(
            "Submitted %s (model=%s): task_id=%s trace_id=%s status=%s",
            request.action,
            request.model or "default",
            result.task_id,
            result.trace_id,
            result.status,
        )
        return result

    def _recover(self, uncertain: SubmissionUncertainError) -> ImageResult:
        assert uncertain.task_id is not None
        try:
            record = self.get_task(uncertain.task_id)
        except NanoBananaError:
            logger.warning("Submission may have been billed without a result: %s", uncertain)
            raise uncertain from None
        return record.to_result()

    def _start(
        self, request: ImageRequest, wait: bool, key: str | None, **options: Any
    ) -> ImageResult:
        """The I/O step of one submission; with ``key`` the journal's protocol
        (:func:`~langchain_nanobanana.journal.protocol.submit_once`) runs around it: a recorded
        result, a recorded task to poll, or the POST with the key settled from its outcome.
        """
        if key is None:
            return self._send(request, wait)
        journal = self._require_journal(key)
        identity = request_identity(request.to_payload())
        outcome = submit_once(
            journal, self.base_url, key, identity, lambda: self._send(request, wait), **options
        )
        if not isinstance(outcome, Decision):
            return outcome
        if outcome.kind == "done" and outcome.result is not None:
            logger.info("Idempotency key %r: recorded result reused, nothing sent", key)
            return ImageResult.model_validate(outcome.result)
        logger.info("Idempotency key %r: polling recorded task_id=%s", key, outcome.task_id)
        return ImageResult(
            status="pending", task_id=outcome.task_id, trace_id=outcome.entry.trace_id
        )

    def _require_journal(self, key: str) -> KeyStore:
        if self.journal is None:
            raise ConfigurationError(
                f"idempotency_key={key!r} needs a journal: NanoBananaClient(journal='runs.sqlite')"
            )
        return self.journal

    def _record(self, task_id: str | None, outcome: Outcome) -> None:
        """Record a keyed task's outcome (the journal finds the key by its task_id: the client
        keeps no map that could grow; tasks without a key record nothing).
        """
        if self.journal is not None and task_id:
            record_outcome(self.journal, self.base_url, task_id, outcome)

    def _post_read(
        self, payload: dict[str, Any], *, task_id: str | None, cap: int
    ) -> answers.Answer:
        return self._transport.post(
            self._transport.tasks_url,
            payload,
            authorization=self._authorization(),
            read_timeout=self.timeout,
            billable=False,
            max_bytes=cap,
            task_id=task_id,
        )

    def _read_chunk(self, ids: list[str]) -> dict[str, TaskRecord | BaseException]:
        """Read ``ids`` (one ``retrieve``, or one ``retrieve_batch``); an answer too big to hold
        is re-read in halves, down to single records (too big is not malformed).
        """
        if len(ids) == 1:
            payload = {"action": "retrieve", "id": ids[0]}
            answer = self._post_read(payload, task_id=ids[0], cap=RECORD_CAP)
            return {ids[0]: answers.read_record(answer, task_id=ids[0])}
        try:
            answer = self._post_read(
                {"action": "retrieve_batch", "ids": ids}, task_id=None, cap=BATCH_ANSWER_CAP
            )
        except ResponseTooLargeError:
            half = len(ids) // 2
            return {**self._read_chunk(ids[:half]), **self._read_chunk(ids[half:])}
        return dict(answers.read_batch(answer, task_ids=ids))

    def _read_round(self, ids: list[str]) -> dict[str, TaskRecord | BaseException]:
        """One poll round: every chunk of 50 ids; a chunk that fails gives its error to its ids
        only. Every error is a read's (:func:`on_read`): its facts tell the poller whether to
        read again.
        """
        found: dict[str, TaskRecord | BaseException] = {}
        for chunk in chunked(ids, BATCH_CHUNK):
            try:
                found.update(self._read_chunk(chunk))
            except NanoBananaError as exc:
                found.update(dict.fromkeys(chunk, on_read(exc)))
        for task_id, item in found.items():
            if isinstance(item, NanoBananaError):
                on_read(item, task_id=task_id)
        return found

    def _outcome(self, outcome: Outcome) -> ImageResult:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` in the default executor. On cancellation the call still finishes
        in its thread: an answer that arrives then is logged at WARNING (with its task_id), never
        silently dropped.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        future = loop.run_in_executor(None, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError as exc:
            future.add_done_callback(_log_late_answer)
            add_note(
                exc,
                "langchain_nanobanana: a request was in flight when this call was cancelled; a "
                "submission may be billed: its task_id is logged at WARNING when it answers",
            )
            raise


class _Gather:
    """Outcomes of ``poll_tasks`` in input order; with ``return_exceptions=False`` the first
    failure raises at once, naming the other task_ids (still running, billed).
    """

    def __init__(self, task_ids: Sequence[str], return_exceptions: bool) -> None:
        self.ids = list(task_ids)
        self.return_exceptions = return_exceptions
        self.outcomes: dict[str, Outcome] = {}

    def add(self, task_id: str, outcome: Outcome) -> None:
        if isinstance(outcome, BaseException) and not self.return_exceptions:
            raise attach_task_ids(outcome, [t for t in self.ids if t not in self.outcomes])
        self.outcomes[task_id] = outcome

    def results(self) -> list[Any]:
        return [self.outcomes[t] for t in self.ids]


def _log_late_answer(future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    task_id = getattr(result, "task_id", None)
    if task_id:
        logger.warning(
            "An answer arrived after its caller was cancelled: task_id=%s is billed and runs on "
            "(poll_task(%r) reads it)",
            task_id,
            task_id,
        )
