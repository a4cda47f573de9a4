"""The ``nanobanana batch`` run: every valid row submitted once, polled, downloaded, reported.

Threads: the main thread, one bounded ``concurrent.futures.ThreadPoolExecutor`` of
``--concurrency`` workers, and the client's poller thread -- ``--concurrency`` + 2 in all, whatever
the number of rows (the progress bar is drawn by the main thread while it waits).

* The main thread reads the rows a second time (validation read them first) and hands each to
  the executor, at most ``2 x --concurrency`` queued at once. A row whose key another live worker
  holds (a fleet sharing one PostgreSQL journal) is deferred until the free rows are done.
* A worker submits a row with ``client.submit(wait=False, idempotency_key=key)`` -- the journal
  records the key before the POST and the task id after it, so at most ``--concurrency``
  submissions are in flight, hence at most that many can become uncertain -- and hands the task
  to the client's poller with ``client.watch(executor=...)`` (each task keeps its own
  ``--max-wait`` deadline; its outcome is journaled and handed on by the executor, so the
  poller's thread only reads). A row the journal records as finished (by an earlier run or by
  another worker) is reported without any request.
* Each outcome goes back to the executor: a worker downloads the images under ``--out``, records
  the files in the journal and appends the row's line to ``manifest.jsonl`` (and stdout with
  ``--json``).

A worker's unexpected failure (the manifest or stdout cannot be written: a full disk, ``| head
-1``) ends the run like Ctrl-C: no new submission, every row in flight recorded as the journal has
it, exit 1 with the reason -- never a hang. On Ctrl-C the run stops submitting, gives the
submissions in flight up to 3 s to answer, closes the journal (a reservation still without an
answer becomes *uncertain*), and writes a line for every row in flight: ``uncertain`` (maybe
billed), ``pending`` (task known: a re-run polls or downloads it), ``succeeded``, ``failed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.journal import Entry, JournalError, KeyStore, request_identity
from langchain_nanobanana.journal.errors import IdempotencyKeyBusyError
from langchain_nanobanana.results import ImageResult

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    Output,
    download_result,
    files_present,
    worst,
)
from .ledger import BatchOptions, Flight, Ledger
from .report import manifest_fields
from .rows import Defaults, Row, RowError
from .settle import record_interrupted
from .source import Plan, Source, iter_rows

__all__ = ["Batch"]

logger = logging.getLogger(__name__)

#: Seconds the submissions in flight get to answer after Ctrl-C before the journal is closed.
GRACE_S = 3.0


class Batch(Ledger):
    """One ``nanobanana batch`` run over validated rows (see the module docstring).

    Args:
        source: Where the rows are (read a second time, row by row).
        defaults: Row defaults (as used when validating).
        plans: The valid rows, in file order (``rows.plan_rows``).
        known: Keys of ``plans`` the journal recorded when the run started (only those are
            looked up before submitting: for the others the journal's ``begin`` decides).
        skipped: Lines of rows not to run (invalid; reported before).
        client: The client (its journal is ``journal``).
        journal: The run's journal (closed by :meth:`run` when the run is cut short).
        out: The output folder (images).
        manifest: The manifest, opened for appending.
        output: The command's streams.
        options: :class:`BatchOptions`.

    """

    def __init__(
        self,
        *,
        source: Source,
        defaults: Defaults,
        plans: list[Plan],
        known: set[str],
        skipped: set[int],
        client: NanoBananaClient,
        journal: KeyStore,
        out: Path,
        manifest: IO[str],
        output: Output,
        options: BatchOptions,
    ) -> None:
        self.source = source
        self.defaults = defaults
        self.plans = plans
        self.known = known
        self.skipped = skipped
        self.client = client
        self.journal = journal
        self.scope = client.base_url
        self.out = out
        super().__init__(manifest, output, options)
        self._queued = 0  # rows handed to the executor and not started
        self._deferred: list[tuple[Flight, Row]] = []
        self._started = time.monotonic()
        self._rounds = 0
        self._last_draw = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._watches: dict[str, Any] = {}  # task_id -> its watch, until its outcome
        self._draining = False  # the deferred rows' turn: wait for their owners, do not defer

    # -- work on the executor ---------------------------------------------------------------

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` here; a failure that escapes it ends the run."""
        try:
            fn(*args)
        except BaseException as exc:
            with self._lock:
                if self.fatal is None:
                    self.fatal = exc
                self._stop.set()
                self._lock.notify_all()

    def _spawn(self, fn: Callable[..., None], *args: Any) -> bool:
        """Run ``fn(*args)`` on the executor; a failure that escapes it ends the run."""
        pool = self._pool
        if pool is None:
            return False
        try:
            pool.submit(self._guarded, fn, *args)
        except RuntimeError:  # shut down: the run is ending
            return False
        return True

    def _submit_row(self, flight: Flight, row: Row) -> None:
        try:
            self._submit_or_defer(flight, row)
        finally:  # counted until done: a deferral is on the list before the feed sees 0
            with self._lock:
                self._queued -= 1
                self._lock.notify_all()

    def _submit_or_defer(self, flight: Flight, row: Row) -> None:
        if self._stop.is_set():
            with self._lock:
                self.counts["not started"] += 1
                self._inflight.pop(flight.plan.key, None)
                self._open -= 1
                self._lock.notify_all()
            return
        try:
            self._submit(flight, row)
        except (_BusyError, IdempotencyKeyBusyError):
            with self._lock:
                self._deferred.append((flight, row))
                flight.phase = "queued"
        except CLIError:  # a line could not be written (stdout, the manifest): the run ends
            raise
        except Exception as exc:
            self._fail(flight, exc)

    def _submit(self, flight: Flight, row: Row) -> None:
        plan = flight.plan
        # a key recorded before the run (or deferred: another worker held it) is looked up; a
        # new one goes straight to the client, whose journal reserves it or answers from it
        if plan.key in self.known or self._draining:
            entry = self.journal.get(self.scope, plan.key)
            if entry is not None and self._reuse(flight, entry):
                return
        flight.phase = "submitting"
        try:
            request = row.build()
        except RowError as exc:
            self._finish(flight, "invalid", error=exc, code=EXIT_USAGE)
            return
        if request_identity(request.to_payload()) != plan.identity:
            changed = RowError(row.line, "row", "the row changed since it was validated")
            self._finish(flight, "invalid", error=changed, code=EXIT_USAGE)
            return
        result = self.client.submit(
            request,
            wait=False,
            idempotency_key=plan.key,
            resubmit_uncertain=self.options.resubmit_uncertain,
            retry_failed=self.options.retry_failed,
            busy_wait=600.0 if self._draining else 0.0,  # another worker's row: defer it
        )
        flight.task_id, flight.trace_id = result.task_id, result.trace_id
        if result.status == "succeeded":
            self._succeeded(flight, result)
            return
        assert result.task_id is not None
        if not self.options.wait or request.callback_url is not None:
            self._finish(flight, "pending", result=result)
            return
        flight.phase = "waiting"
        self._watch(flight, result.task_id)

    def _watch(self, flight: Flight, task_id: str) -> None:
        """Hand ``task_id`` to the client's poller; its outcome comes back on the executor."""

        def on_outcome(done_id: str, outcome: Any) -> None:  # on the executor (journaled first)
            with self._lock:
                self._watches.pop(done_id, None)
            if not self._closing:
                self._guarded(self._on_outcome, flight, outcome)

        # the journal write runs on the executor too: the poller's thread only reads, so a
        # round that ends thousands of tasks is handed on at once
        watch = self.client.watch(
            [task_id], on_outcome, max_wait=self.options.max_wait, executor=self._pool
        )
        with self._lock:
            if not watch.done:  # (an outcome may already have come)
                self._watches[task_id] = watch

    def _reuse(self, flight: Flight, entry: Entry) -> bool:
        """A row the journal records as finished is reported without any request (its images
        downloaded when missing); a key another live worker holds is deferred
        (``IdempotencyKeyBusyError``). ``False``: the row needs the client.
        """
        if entry.identity != flight.plan.identity:
            return False
        if entry.state == "reserved" and self.journal.status(entry) == "in_flight":
            if not self._draining:
                raise _BusyError(entry.key)
            return False
        if entry.state != "succeeded" or not entry.result:
            return False
        result = ImageResult.model_validate(entry.result)
        flight.task_id, flight.trace_id = entry.task_id, entry.trace_id
        if not self.options.download or files_present(entry.files):
            self._finish(flight, "succeeded", result=result, files=entry.files)
        else:
            self._succeeded(flight, result)
        return True

    def _succeeded(self, flight: Flight, result: ImageResult) -> None:
        if not self.options.download:
            self._finish(flight, "succeeded", result=result)
            return
        flight.phase = "downloading"
        try:
            files = download_result(self.client, self.journal, flight.plan.key, result, self.out)
        except JournalError as exc:
            self._fail(flight, exc)
        except Exception as exc:  # the result is paid and recorded: a re-run downloads again
            logger.warning("row %s: download failed: %s", flight.plan.key, exc)
            self._finish(flight, "pending", result=result, error=exc, code=EXIT_FAILED)
        else:
            self._finish(flight, "succeeded", result=result, files=files)

    def _on_outcome(self, flight: Flight, outcome: Any) -> None:
        if isinstance(outcome, ImageResult):
            self._succeeded(flight, outcome)
        else:
            self._fail(flight, outcome)

    # -- the main thread --------------------------------------------------------------------

    def _draw(self, force: bool = False) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        every = 0.2 if self._bar.uses_tqdm else 1.0
        if not force and now - self._last_draw < every:
            return
        self._last_draw = now
        from langchain_nanobanana._core.progress import progress_event

        with self._lock:
            delta, self._delta = self._delta, {}
            self._rounds += 1
        self._bar.update(progress_event(self._rounds, now - self._started, delta))

    def _wait(self, until: Callable[[], bool]) -> None:
        """Wait (drawing the bar) until ``until()`` holds or the run must stop."""
        while True:
            with self._lock:
                if until() or self.fatal is not None:
                    return
                self._lock.wait(0.2)
            self._draw()

    def _hand(self, flight: Flight, row: Row) -> None:
        limit = self.options.concurrency * 2
        self._wait(lambda: self._queued < limit or self._stop.is_set())
        with self._lock:
            self._queued += 1
        if not self._spawn(self._submit_row, flight, row):
            with self._lock:
                self._queued -= 1

    def _feed(self) -> None:
        plans = iter(self.plans)
        plan = next(plans, None)
        for item in iter_rows(self.source, self.defaults):
            if self._stop.is_set() or plan is None:
                break
            if item.line in self.skipped:
                continue
            if isinstance(item, RowError) or item.line != plan.line:
                self.output.error(
                    f"nanobanana: error: {self.source.name} changed while the batch ran (line "
                    f"{item.line}); stopping: re-run to go on"
                )
                with self._lock:
                    self.exit_code = worst(self.exit_code, EXIT_USAGE)
                self._stop.set()
                break
            flight = Flight(plan, manifest_fields(item))
            with self._lock:
                self._open += 1
                self._inflight[plan.key] = flight
            self._hand(flight, item)
            plan = next(plans, None)
        # rows another worker held: after the free ones (their owner has finished them by now,
        # or the journal's wait for a live owner takes over)
        self._wait(lambda: self._queued == 0 or self._stop.is_set())
        self.client.poll_now()  # every row is submitted: read what is pending at once
        self._draining = True
        while not self._stop.is_set():
            with self._lock:
                deferred, self._deferred = self._deferred, []
            if not deferred:
                with self._lock:
                    if self._queued == 0 and not self._deferred:
                        return
                self._wait(lambda: self._queued == 0 or bool(self._deferred))
                continue
            for flight, row in deferred:
                self._hand(flight, row)

    def _start(self) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=self.options.concurrency, thread_name_prefix="nanobanana-cli"
        )
        if self.options.progress and self.plans and self.output.stderr is not None:
            from langchain_nanobanana.progress import ProgressBar, progress_event

            tty = self.output.stderr_isatty()
            self._bar = ProgressBar(
                file=self.output.stderr, desc="nanobanana", use_tqdm=None if tty else False
            )
            self._bar.update(
                progress_event(0, 0.0, dict.fromkeys((p.key for p in self.plans), "pending"))
            )

    def run(self) -> int:
        """Run every row; returns the exit code (130 after Ctrl-C; a worker's failure ends the
        run with exit 1 and :attr:`fatal` set).
        """
        self._start()
        interrupted = False
        try:
            self._feed()
            self._wait(lambda: self._open <= 0)
            if self.fatal is not None:
                self._cut_short(f"stopping: {_reason(self.fatal)}")
        except KeyboardInterrupt:
            interrupted = True
            self._cut_short(
                f"interrupted: recording what is in flight (up to {GRACE_S:.0f} s; Ctrl-C again "
                "to stop at once)"
            )
        finally:
            self._shutdown()
        if interrupted:
            return EXIT_INTERRUPTED
        if self.fatal is not None:
            return worst(self.exit_code, getattr(self.fatal, "exit_code", EXIT_FAILED))
        return self.exit_code

    def _shutdown(self) -> None:
        with self._lock:
            self._closing = True
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.cancel()
        if self._pool is not None:
            self._pool.shutdown(
                wait=self.fatal is None and not self._stop.is_set(), cancel_futures=True
            )
        self._draw(force=True)
        if self._bar is not None:
            self._bar.close()

    def _cut_short(self, why: str) -> None:
        """Stop submitting, let submissions in flight answer (up to ``GRACE_S``), close the
        journal, and write a line for every row in flight as the journal has it.
        """
        self._stop.set()
        self.output.note(f"nanobanana: {why}")
        deadline = time.monotonic() + GRACE_S
        try:
            while time.monotonic() < deadline:
                with self._lock:
                    busy = any(f.phase == "submitting" for f in self._inflight.values())
                if not busy:
                    break
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        with self._lock:
            self._closing = True
            flights = [f for f in self._inflight.values() if f.phase != "queued"]
        logging.getLogger("langchain_nanobanana").setLevel(logging.ERROR)  # no per-task noise
        self.journal.close()  # reservations still without an answer become uncertain
        record_interrupted(self, self.journal, self.scope, flights)


class _BusyError(Exception):
    """A row's key is held by another live worker: come back to it after the free rows."""


def _reason(exc: BaseException) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
