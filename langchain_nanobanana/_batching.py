"""The bookkeeping of ``NanoBananaImageGenerator.batch`` / ``abatch`` / ``batch_as_completed``
(no I/O): every input validated first, the task each input's submission got, what a batch that
ends early paid for (``task_ids`` and ``results`` on its error, a WARNING), and the per-input runs
of ``batch_as_completed``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.runnables import Runnable, RunnableConfig

from langchain_nanobanana._core.polling import Outcome
from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.errors import NanoBananaError, attach_task_ids
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult

__all__ = ["Batch", "RequestSource", "Runs", "batch_args", "concurrency", "key_of", "start_run"]

logger = logging.getLogger(__name__)


class RequestSource(Protocol):
    """What a batch needs of the Runnable: its client and its one way to build a request."""

    @property
    def client(self) -> NanoBananaClient:
        """The client that submits and polls."""

    def to_request(self, value: Any) -> ImageRequest:
        """The validated request for one input."""


class Batch:
    """The bookkeeping of one batch, shared by the sync and async drivers (no I/O).

    Inputs are validated when built; ``return_exceptions=False`` raises the first bad input
    before anything is sent.
    """

    def __init__(
        self,
        runnable: RequestSource,
        inputs: Sequence[Any],
        return_exceptions: bool,
    ) -> None:
        self.return_exceptions = return_exceptions
        self.requests: list[ImageRequest | Exception] = []
        self.keys: list[str | None] = [key_of(value) for value in inputs]
        for value in inputs:
            try:
                self.requests.append(runnable.to_request(value))
            except Exception as exc:
                if not return_exceptions:
                    raise
                self.requests.append(exc)
        self.wait_in_line = runnable.client.mode == "sync"
        self.ready: list[tuple[int, Outcome]] = [
            (i, r) for i, r in enumerate(self.requests) if isinstance(r, Exception)
        ]
        self.task_index: dict[str, list[int]] = {}  # one task may serve several inputs (a key)
        self.open: set[str] = set()
        self.stopped = threading.Event()
        self.first_error: BaseException | None = None
        self.paid: dict[str, None] = {}  # every task submitted (ordered): each was billed
        self.results: dict[int, ImageResult] = {}  # index -> finished result
        #: ``time.monotonic()`` of the first submission answered with a task (the wait's first
        #: round is due ``poll_interval`` after it: a long submission phase is read at once).
        self.since: float | None = None

    def to_submit(self) -> list[tuple[int, ImageRequest]]:
        """The valid requests, with their input index."""
        return [(i, r) for i, r in enumerate(self.requests) if isinstance(r, ImageRequest)]

    def submitted(self, index: int, outcome: Outcome) -> None:
        """Record a submission's answer (a pending ack, a final result, or its error)."""
        task_id = getattr(outcome, "task_id", None)
        if task_id:
            self.paid[task_id] = None
            if self.since is None:
                self.since = time.monotonic()
        if isinstance(outcome, ImageResult) and outcome.status == "succeeded":
            self.results[index] = outcome
        if isinstance(outcome, ImageResult) and outcome.status == "pending" and outcome.task_id:
            request = self.requests[index]
            if isinstance(request, ImageRequest) and request.callback_url is None:
                self.task_index.setdefault(outcome.task_id, []).append(index)
                self.open.add(outcome.task_id)
                return
        if isinstance(outcome, BaseException) and not self.return_exceptions:
            self.stopped.set()
            self.first_error = self.first_error or outcome
        self.ready.append((index, outcome))

    def skipped(self, index: int) -> None:
        """An input not submitted because the batch ended early."""
        self.ready.append((index, NanoBananaError("Not submitted: the batch ended early")))

    def check(self) -> None:
        """Raise the first submission error (``return_exceptions=False``) with every task_id
        already submitted attached.
        """
        if self.first_error is not None:
            raise self._paid_on(self.first_error)

    def take_ready(self) -> list[tuple[int, Outcome]]:
        """Outcomes known without waiting (bad inputs, final answers), once."""
        ready, self.ready = self.ready, []
        return ready

    def finished(self, task_id: str, outcome: Outcome) -> list[tuple[int, Outcome]]:
        """A polled task ended: ``(index, outcome)`` for every input it serves (inputs sharing an
        idempotency key share its task); a failure raises at once when
        ``return_exceptions`` is false, naming the siblings still running.
        """
        self.open.discard(task_id)
        if isinstance(outcome, BaseException) and not self.return_exceptions:
            raise self._paid_on(outcome)
        if isinstance(outcome, ImageResult):
            self.results.update(dict.fromkeys(self.task_index[task_id], outcome))
        return [(index, outcome) for index in self.task_index[task_id]]

    def _paid_on(self, exc: BaseException) -> BaseException:
        """``exc`` with every task this batch paid for (``task_ids``: finished, failed and
        still running) and the finished results (``results``: input index -> ImageResult), so
        that nothing paid is lost when the batch raises.
        """
        own = getattr(exc, "task_id", None)
        attach_task_ids(exc, [t for t in self.paid if t != own])
        exc.results = dict(self.results)  # type: ignore[attr-defined]
        return exc

    def ended_early(self, exc: BaseException) -> None:
        """Stop submitting; put every task_id paid for (finished ones too) and the finished
        results on ``exc``, and log them at WARNING.
        """
        self.stopped.set()
        if isinstance(exc, GeneratorExit) or not self.paid:
            return
        self._paid_on(exc)
        finished = [t for t in self.paid if t not in self.open]
        logger.warning(
            "Batch ended early (%s); %d task(s) were submitted and billed: still running: %s; "
            "finished: %s (results on the error's .results)",
            type(exc).__name__,
            len(self.paid),
            ", ".join(sorted(self.open)) or "none",
            ", ".join(finished) or "none",
        )


class Runs:
    """The per-input runs of ``batch_as_completed`` (sync or async run managers)."""

    def __init__(self, runs: list[Any]) -> None:
        self.open = dict(enumerate(runs))
        self.runs = runs

    def first(self) -> Any:
        return self.runs[0]

    def end(self, index: int, outcome: Outcome) -> Any:
        run = self.open.pop(index)
        if isinstance(outcome, BaseException):
            return run.on_chain_error(outcome)
        return run.on_chain_end(outcome)

    def fail_open(self, exc: BaseException) -> list[Any]:
        return [run.on_chain_error(exc) for run in self.open.values()]


def start_run(
    manager: Any, runnable: Runnable[Any, Any], value: Any, config: RunnableConfig
) -> Any:
    name = config.get("run_name") or runnable.get_name()
    return manager.on_chain_start(None, value, name=name, run_id=config.pop("run_id", None))


async def awaited(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


def batch_args(
    run_manager: list[Any], config: list[Any], kw: dict[str, Any]
) -> tuple[RunnableConfig | None, bool, Any]:
    """``(config, return_exceptions, first run manager)`` from ``_batch_with_config``'s call."""
    return (
        config[0] if config else None,
        bool(kw.get("collect_exceptions")),
        run_manager[0] if run_manager else None,
    )


def key_of(value: object) -> str | None:
    """The idempotency key of a dict input (its ``id``), else ``None``."""
    if isinstance(value, dict) and value.get("id") is not None:
        return str(value["id"])
    return None


def concurrency(config: RunnableConfig | None, n_inputs: int) -> int:
    """Submissions in flight: ``max_concurrency``, else the size of a default
    ``ThreadPoolExecutor`` (what ``batch`` and ``asyncio.to_thread`` use), at most one per input.
    """
    limit = config.get("max_concurrency") if config else None
    return max(1, min(n_inputs, limit or min(32, (os.cpu_count() or 1) + 4)))
