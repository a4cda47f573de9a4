"""The ``nanobanana batch`` run: every valid row submitted once, polled, downloaded, reported.

Threads (all daemons; the main thread only feeds rows and waits, so Ctrl-C lands there):

* ``--concurrency`` *submitters* take rows from a bounded queue: a row whose key the journal
  records as succeeded (its files present) is reported without any request; otherwise the request
  is built (local images read now) and sent with ``client.submit(wait=False, idempotency_key=key)``
  — the journal records the key before the POST and the task id after it, so at most
  ``--concurrency`` submissions are ever in flight, hence at most that many can become uncertain.
* a *dispatcher* gathers the returned task ids for up to 0.2 s (at most 200) and hands each group to
  ``client.iter_outcomes`` in its own thread (at most 64 groups): one shared poller reads every
  pending task in ``retrieve_batch`` rounds; the client records each outcome in the journal.
* ``--concurrency`` *downloaders* save the images under ``--out`` and record the files in the
  journal, so a re-run does not download them again.
* a *ticker* draws the progress bar on stderr (``ProgressBar``; one entry per row).

Each row ends with one line appended to ``manifest.jsonl`` (and printed with ``--json``), written
as soon as the row ends: memory stays flat in the number of rows (per row in flight a few hundred
bytes; per valid row a key and an identity). On Ctrl-C the run stops submitting, gives the
submissions in flight up to 3 s to answer, closes the journal (a reservation still without an
answer becomes *uncertain*), and writes a line for every row in flight as the journal has it:
``uncertain`` (maybe billed), ``pending`` (task known: a re-run polls or downloads it),
``succeeded``, ``failed``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.journal import Entry, JournalError, KeyStore, request_identity
from langchain_nanobanana.progress import ProgressBar, progress_event
from langchain_nanobanana.results import ImageResult

from .common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Output,
    RowStatus,
    classify,
    download_result,
    error_info,
    files_present,
    line_record,
    worst,
)
from .report import manifest_fields
from .rows import Defaults, Plan, Row, RowError, iter_rows
from .waiters import Waiters

__all__ = ["Batch", "BatchOptions", "summary"]

logger = logging.getLogger(__name__)

#: Seconds the submissions in flight get to answer after Ctrl-C before the journal is closed.
GRACE_S = 3.0
_BAR_STATUS = {"succeeded": "succeeded", "pending": "pending"}  # anything else ends as "failed"


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (from the command line).

    Attributes:
        concurrency: Submissions in flight at most (and downloads in parallel).
        download: Save the images under the output folder (``--no-download``: only URLs).
        resubmit_uncertain: Submit again a row whose earlier submission is uncertain (may pay
            twice).
        retry_failed: Submit again a row whose task failed before.
        max_wait: Seconds each wait for tasks lasts at most before the row is reported pending.
        progress: Draw the progress bar on stderr.

    """

    concurrency: int = 8
    download: bool = True
    resubmit_uncertain: bool = False
    retry_failed: bool = False
    max_wait: float = 600.0
    progress: bool = True


class _Flight:
    """One row between the queue and its line. ``phase``: ``queued``, ``submitting``,
    ``waiting``, ``downloading``.
    """

    __slots__ = ("about", "phase", "plan", "task_id", "trace_id")

    def __init__(self, plan: Plan, about: dict[str, Any] | None = None) -> None:
        self.plan = plan
        self.about = about or {}  # the request's fields, added to its manifest line
        self.phase = "queued"
        self.task_id: str | None = None
        self.trace_id: str | None = None


class Batch:
    """One ``nanobanana batch`` run over validated rows (see the module docstring).

    Args:
        path: The input file (read a second time, row by row).
        defaults: Row defaults (as used when validating).
        plans: The valid rows, in file order (``rows.plan_rows``).
        skipped: Lines of rows not to run (invalid; reported before).
        known: Keys the journal had an entry for when the run started (only those are looked up
            before their submission: a finished one is reported without any request).
        client: The client (its journal is ``journal``).
        journal: The run's journal (closed by :meth:`run` on Ctrl-C).
        out: The output folder (images and ``manifest.jsonl``).
        manifest: The manifest, opened for appending.
        output: The command's streams.
        options: :class:`BatchOptions`.

    """

    def __init__(
        self,
        *,
        path: Path,
        defaults: Defaults,
        plans: list[Plan],
        skipped: set[int],
        known: set[str],
        client: NanoBananaClient,
        journal: KeyStore,
        out: Path,
        manifest: IO[str],
        output: Output,
        options: BatchOptions,
    ) -> None:
        self.path = path
        self.defaults = defaults
        self.plans = plans
        self.skipped = skipped
        self.known = known
        self.client = client
        self.journal = journal
        self.scope = client.base_url
        self.out = out
        self.manifest = manifest
        self.output = output
        self.options = options
        self.counts: Counter[str] = Counter()
        self.exit_code = EXIT_OK
        self._lock = threading.Condition()
        self._open = 0
        self._inflight: dict[str, _Flight] = {}
        self._by_task: dict[str, _Flight] = {}
        self._closing = False
        self._stop = threading.Event()
        self._rows: queue.Queue[tuple[_Flight, Row] | None] = queue.Queue(options.concurrency)
        self._downloads: queue.Queue[tuple[_Flight, ImageResult] | None] = queue.Queue(
            options.concurrency * 4
        )
        self._delta: dict[str, str] = {}
        self._bar: ProgressBar | None = None
        self._started = time.monotonic()
        self._threads: list[threading.Thread] = []
        self._waiters: Waiters | None = None
        self._stop_ticker = threading.Event()
        self._rounds = 0

    # -- lines ------------------------------------------------------------------------------

    def write_line(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the manifest (and stdout with ``--json``)."""
        import json

        text = json.dumps(record, ensure_ascii=False)
        self.manifest.write(text + "\n")
        self.manifest.flush()
        if self.output.json_lines:
            self.output.result(text)

    def _finish(
        self,
        flight: _Flight,
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
            self.write_line(record)
            self._end(flight, status, code)

    def _end(self, flight: _Flight, status: str, code: int) -> None:
        """Count a row as ended (caller holds the lock)."""
        self.counts[status] += 1
        self.exit_code = worst(self.exit_code, code)
        if code == EXIT_CONFIG and not self._stop.is_set():
            self._stop.set()
            logger.debug("stopping the batch: authentication, configuration or balance error")
        self._inflight.pop(flight.plan.key, None)
        if flight.task_id:
            self._by_task.pop(flight.task_id, None)
        if self._bar is not None:
            self._delta[flight.plan.key] = _BAR_STATUS.get(status, "failed")
        self._open -= 1
        self._lock.notify_all()

    def _fail(self, flight: _Flight, exc: BaseException) -> None:
        status, code = classify(exc)
        if flight.task_id is None:
            flight.task_id = getattr(exc, "task_id", None)
        if code == EXIT_FAILED and type(exc).__module__.split(".")[0] != "langchain_nanobanana":
            logger.error("row %s: unexpected %s", flight.plan.key, type(exc).__name__, exc_info=exc)
        self._finish(flight, status, error=exc, code=code)

    # -- workers ----------------------------------------------------------------------------

    def _submitter(self) -> None:
        while True:
            item = self._rows.get()
            if item is None:
                return
            flight, row = item
            if self._stop.is_set():
                with self._lock:
                    self.counts["not started"] += 1
                    self._inflight.pop(flight.plan.key, None)
                    self._open -= 1
                    self._lock.notify_all()
                continue
            try:
                self._submit(flight, row)
            except Exception as exc:
                self._fail(flight, exc)

    def _submit(self, flight: _Flight, row: Row) -> None:
        plan = flight.plan
        entry = self.journal.get(self.scope, plan.key) if plan.key in self.known else None
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
        )
        flight.task_id, flight.trace_id = result.task_id, result.trace_id
        if result.status == "succeeded":
            self._succeeded(flight, result)
            return
        assert result.task_id is not None
        with self._lock:
            flight.phase = "waiting"
            self._by_task[result.task_id] = flight
        assert self._waiters is not None
        self._waiters.add(result.task_id)

    def _reuse(self, flight: _Flight, entry: Entry) -> bool:
        """Report a row the journal records as succeeded without any request (download its
        images when they are missing). ``False``: the row needs the client.
        """
        if entry.state != "succeeded" or entry.identity != flight.plan.identity:
            return False
        if not entry.result:
            return False
        result = ImageResult.model_validate(entry.result)
        flight.task_id, flight.trace_id = entry.task_id, entry.trace_id
        if not self.options.download or files_present(entry.files):
            self._finish(flight, "succeeded", result=result, files=entry.files)
        else:
            self._succeeded(flight, result)
        return True

    def _succeeded(self, flight: _Flight, result: ImageResult) -> None:
        if not self.options.download:
            self._finish(flight, "succeeded", result=result)
            return
        flight.phase = "downloading"
        self._downloads.put((flight, result))

    def _on_outcome(self, task_id: str, outcome: Any) -> None:
        with self._lock:
            flight = self._by_task.get(task_id)
        if flight is None:
            return
        if isinstance(outcome, ImageResult):
            self._succeeded(flight, outcome)
        else:
            self._fail(flight, outcome)

    def _downloader(self) -> None:
        while True:
            item = self._downloads.get()
            if item is None:
                return
            flight, result = item
            try:
                files = download_result(
                    self.client, self.journal, flight.plan.key, result, self.out
                )
            except JournalError as exc:
                self._fail(flight, exc)
            except Exception as exc:  # the result is paid and recorded: a re-run downloads again
                logger.warning("row %s: download failed: %s", flight.plan.key, exc)
                self._finish(flight, "pending", result=result, error=exc, code=EXIT_FAILED)
            else:
                self._finish(flight, "succeeded", result=result, files=files)

    def _ticker(self, every: float) -> None:
        while not self._stop_ticker.wait(every):
            self._draw()

    def _draw(self) -> None:
        if self._bar is None:
            return
        with self._lock:
            delta, self._delta = self._delta, {}
            self._rounds += 1
        elapsed = time.monotonic() - self._started
        self._bar.update(progress_event(self._rounds, elapsed, delta))

    # -- the run ----------------------------------------------------------------------------

    def _start_threads(self) -> None:
        def spawn(target: Callable[..., None], name: str, *args: Any) -> None:
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

        self._waiters = Waiters(self.client, self._on_outcome, max_wait=self.options.max_wait)
        for n in range(self.options.concurrency):
            spawn(self._submitter, f"nanobanana-cli-submit-{n}")
            if self.options.download:
                spawn(self._downloader, f"nanobanana-cli-download-{n}")
        if self.options.progress and self.plans:
            tty = self.output.stderr.isatty()
            self._bar = ProgressBar(
                file=self.output.stderr, desc="nanobanana", use_tqdm=None if tty else False
            )
            self._bar.update(
                progress_event(0, 0.0, dict.fromkeys((p.key for p in self.plans), "pending"))
            )
            spawn(self._ticker, "nanobanana-cli-progress", 0.2 if self._bar.uses_tqdm else 1.0)

    def _feed(self) -> None:
        plans = iter(self.plans)
        plan = next(plans, None)
        for item in iter_rows(self.path, self.defaults):
            if self._stop.is_set() or plan is None:
                break
            if item.line in self.skipped:
                continue
            if isinstance(item, RowError) or item.line != plan.line:
                self.output.error(
                    f"nanobanana: error: {self.path} changed while the batch ran (line "
                    f"{item.line}); stopping: re-run to go on"
                )
                with self._lock:
                    self.exit_code = worst(self.exit_code, EXIT_USAGE)
                self._stop.set()
                break
            flight = _Flight(plan, manifest_fields(item))
            with self._lock:
                self._open += 1
                self._inflight[plan.key] = flight
            while True:
                try:
                    self._rows.put((flight, item), timeout=0.2)
                    break
                except queue.Full:
                    continue
            plan = next(plans, None)

    def run(self) -> int:
        """Run every row; returns the exit code (130 after Ctrl-C)."""
        self._start_threads()
        interrupted = False
        try:
            self._feed()
            with self._lock:
                while self._open > 0:
                    self._lock.wait(0.25)
        except KeyboardInterrupt:
            interrupted = True
            self._interrupt()
        finally:
            self._shutdown(interrupted)
        return EXIT_INTERRUPTED if interrupted else self.exit_code

    def _shutdown(self, interrupted: bool) -> None:
        self._stop_ticker.set()
        if not interrupted:
            for _ in range(self.options.concurrency):
                self._rows.put(None)
                if self.options.download:
                    self._downloads.put(None)
            for thread in self._threads:
                thread.join(5.0)
        if self._waiters is not None:
            self._waiters.close()
        self._draw()
        if self._bar is not None:
            self._bar.close()

    def _interrupt(self) -> None:
        """Ctrl-C: stop submitting, let submissions in flight answer (up to ``GRACE_S``), close
        the journal, and write a line for every row in flight as the journal has it.
        """
        self._stop.set()
        self.output.note(
            f"nanobanana: interrupted: recording what is in flight (up to {GRACE_S:.0f} s; "
            f"Ctrl-C again to stop at once)"
        )
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
        try:
            reader = self.journal.reopen()
        except JournalError as exc:
            self.output.error(f"nanobanana: error: cannot read back the journal: {exc}")
            return
        with reader:
            for flight in flights:
                self._record_interrupted(reader, flight)

    def _record_interrupted(self, reader: KeyStore, flight: _Flight) -> None:
        key = flight.plan.key
        try:
            entry = reader.get(self.scope, key)
        except JournalError:
            entry = None
        if entry is None:
            return  # never reserved: nothing was sent
        status: RowStatus
        note: str | None
        files: list[str] = []
        if entry.state == "reserved":
            status = "uncertain"
            note = (
                "interrupted while the submission was in flight: it may have been billed; "
                f"settle it with `nanobanana journal resolve {key} --task-id ID` or "
                f"`nanobanana journal forget {key}`, or re-run with --resubmit-uncertain"
            )
        elif entry.state == "submitted":
            status, note = "pending", "interrupted while waiting: a re-run polls the task"
        elif entry.state == "failed":
            status, note = "failed", entry.error_message or "the task failed"
        elif self.options.download and not files_present(entry.files):
            status = "pending"
            note = "interrupted before the images were saved: a re-run downloads them (no charge)"
        else:
            status, note, files = "succeeded", None, entry.files
        result = ImageResult.model_validate(entry.result) if entry.result else None
        record = line_record(
            id=key,
            status=status,
            task_id=entry.task_id,
            trace_id=entry.trace_id,
            files=files,
            urls=result.urls if result else (),
            error={"type": "Interrupted", "code": None, "message": note} if note else None,
        )
        record.update(flight.about)
        self.write_line(record)
        self.counts[status] += 1


def summary(counts: Counter[str], total: int) -> str:
    """``N rows: a succeeded, b failed, ...`` (statuses in a fixed order)."""
    order = ("succeeded", "failed", "uncertain", "invalid", "pending", "not started")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    return f"{total} row(s): " + (", ".join(parts) if parts else "nothing to do")
