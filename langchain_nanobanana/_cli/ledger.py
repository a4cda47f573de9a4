"""The record of a ``nanobanana batch`` run: one line per row in ``manifest.jsonl`` (and on
stdout with ``--json``), the counts by status and the exit code, shared by the executor's workers
(see ``_cli.batch``) under one lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from langchain_nanobanana.results import ImageResult

from .common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    CLIError,
    Output,
    RowStatus,
    classify,
    error_info,
    line_record,
    worst,
)
from .source import Plan

__all__ = ["BatchOptions", "Flight", "Ledger", "summary"]

logger = logging.getLogger(__name__)

_BAR_STATUS = {"succeeded": "succeeded", "pending": "pending"}  # anything else ends as "failed"


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (from the command line).

    Attributes:
        concurrency: Executor workers: submissions in flight at most (and downloads at once).
        download: Save the images under the output folder (``--no-download``: only URLs).
        wait: Wait for the tasks (``--no-wait``: record them ``pending`` and stop).
        resubmit_uncertain: Submit again a row whose earlier submission is uncertain (may pay
            twice).
        retry_failed: Submit again a row whose task failed before.
        max_wait: Seconds each task is waited for at most before the row is reported pending.
        progress: Draw the progress bar on stderr.

    """

    concurrency: int = 8
    download: bool = True
    wait: bool = True
    resubmit_uncertain: bool = False
    retry_failed: bool = False
    max_wait: float = 600.0
    progress: bool = True


class Flight:
    """One row between the feed and its line. ``phase``: ``queued``, ``submitting``,
    ``waiting``, ``downloading``.
    """

    __slots__ = ("about", "phase", "plan", "task_id", "trace_id")

    def __init__(self, plan: Plan, about: dict[str, Any] | None = None) -> None:
        self.plan = plan
        self.about = about or {}  # the request's fields, added to its manifest line (report)
        self.phase = "queued"
        self.task_id: str | None = None
        self.trace_id: str | None = None


class Ledger:
    """Rows in flight, their lines and counts (the base of :class:`~._cli.batch.Batch`).

    Args:
        manifest: The manifest, opened for appending.
        output: The command's streams.
        options: :class:`BatchOptions`.

    Attributes:
        counts: Rows by final status (``"not started"`` too).
        exit_code: The worst exit code of the rows so far.
        fatal: The failure that ended the run early (a line could not be written), or ``None``.

    """

    def __init__(self, manifest: IO[str], output: Output, options: BatchOptions) -> None:
        self.manifest = manifest
        self.output = output
        self.options = options
        self.counts: Counter[str] = Counter()
        self.exit_code = EXIT_OK
        self.fatal: BaseException | None = None
        self._lock = threading.Condition()
        self._open = 0  # rows handed out and not ended
        self._inflight: dict[str, Flight] = {}
        self._closing = False  # the run is being cut short: late lines are dropped
        self._stop = threading.Event()  # no new submission
        self._delta: dict[str, str] = {}  # the progress bar's news since its last draw
        self._bar: Any = None

    # -- lines ------------------------------------------------------------------------------

    def write_line(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the manifest (and stdout with ``--json``).

        Raises:
            CLIError: (exit 1) the manifest cannot be written (a full disk...).
            OutputClosedError: stdout is closed (after the manifest line was written).

        """
        text = json.dumps(record, ensure_ascii=False)
        try:
            self.manifest.write(text + "\n")
            self.manifest.flush()
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise CLIError(f"cannot write the manifest: {reason}", EXIT_FAILED) from None
        if self.output.json_lines and self.output.closed is None:  # (once closed: manifest only)
            self.output.result(text)

    def _finish(
        self,
        flight: Flight,
        status: RowStatus,
        *,
        result: ImageResult | None = None,
        files: Iterable[str] = (),
        error: BaseException | None = None,
        code: int = EXIT_OK,
    ) -> None:
        record = line_record(
            id=flight.plan.key,
            status=status,
            task_id=(result.task_id if result else None) or flight.task_id,
            trace_id=(result.trace_id if result else None) or flight.trace_id,
            files=list(files),
            urls=result.urls if result else (),
            error=error_info(error) if error is not None else None,
        )
        record.update(flight.about)
        with self._lock:
            if self._closing:
                return
            try:
                self.write_line(record)
            finally:
                self._end(flight, status, code)

    def _end(self, flight: Flight, status: str, code: int) -> None:
        """Count a row as ended (caller holds the lock)."""
        self.counts[status] += 1
        self.exit_code = worst(self.exit_code, code)
        if code == EXIT_CONFIG and not self._stop.is_set():
            self._stop.set()
            logger.debug("stopping the batch: authentication, configuration or balance error")
        self._inflight.pop(flight.plan.key, None)
        if self._bar is not None:
            self._delta[flight.plan.key] = _BAR_STATUS.get(status, "failed")
        self._open -= 1
        self._lock.notify_all()

    def _fail(self, flight: Flight, exc: BaseException) -> None:
        status, code = classify(exc)
        if flight.task_id is None:
            flight.task_id = getattr(exc, "task_id", None)
        if code == EXIT_FAILED and type(exc).__module__.split(".")[0] != "langchain_nanobanana":
            logger.error("row %s: unexpected %s", flight.plan.key, type(exc).__name__, exc_info=exc)
        self._finish(flight, status, error=exc, code=code)


def summary(counts: Counter[str], total: int) -> str:
    """``N rows: a succeeded, b failed, ...`` (statuses in a fixed order)."""
    order = ("succeeded", "failed", "uncertain", "invalid", "pending", "not started")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    return f"{total} row(s): " + (", ".join(parts) if parts else "nothing to do")
