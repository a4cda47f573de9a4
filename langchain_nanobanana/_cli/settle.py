"""Recording a ``nanobanana batch`` run that was cut short (Ctrl-C, SIGTERM, a worker that could
not write): each row in flight gets one manifest line saying what the journal knows of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_nanobanana.journal import JournalError, KeyStore
from langchain_nanobanana.results import ImageResult

from .common import RowStatus, files_present, line_record

if TYPE_CHECKING:
    from .ledger import Flight, Ledger

__all__ = ["record_interrupted"]


def record_interrupted(batch: Ledger, journal: KeyStore, scope: str, flights: list[Flight]) -> None:
    """Write a manifest line for each of ``flights`` (rows in flight) as the journal records it
    (read back through ``journal.reopen()``: the run's own handle is closed by now).

    ``uncertain`` (reserved: the submission may have been billed), ``pending`` (task known: a
    re-run polls it; or succeeded with images not saved yet: a re-run downloads them, no charge),
    ``failed``, ``succeeded``. A key never reserved sent nothing and gets no line. Errors while
    writing are reported once on stderr: the journal keeps the truth.
    """
    try:
        reader = journal.reopen()
    except JournalError as exc:
        batch.output.error(f"nanobanana: error: cannot read back the journal: {exc}")
        return
    with reader:
        for flight in flights:
            try:
                _record(batch, reader, scope, flight)
            except Exception as exc:  # the manifest or stdout broke: the journal has it all
                key = flight.plan.key
                batch.output.error(f"nanobanana: error: cannot record row {key!r}: {exc}")
                return


def _record(batch: Ledger, reader: KeyStore, scope: str, flight: Flight) -> None:
    key = flight.plan.key
    try:
        entry = reader.get(scope, key)
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
    elif batch.options.download and not files_present(entry.files):
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
    batch.counts[status] += 1
    batch.write_line(record)
