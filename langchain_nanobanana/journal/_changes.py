"""What each recorded outcome writes: the columns of ``submitted``, ``succeeded`` and ``failed``,
and which of them a task's outcome (an ``ImageResult`` or the error a wait ended with) means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from langchain_nanobanana.errors import TaskFailedError
from langchain_nanobanana.journal._records import check_text, encode_outcome
from langchain_nanobanana.journal.errors import JournalError

__all__ = ["Change", "change_of", "failed_change", "submitted_change", "succeeded_change"]


class Change(NamedTuple):
    """An outcome to record under a key: ``what`` (for log lines: ``"submission"``,
    ``"result"``, ``"failure"``), the task it names (``found``) and the columns to set.
    """

    what: str
    found: str | None
    values: Mapping[str, Any]


def change_of(task_id: str, outcome: object) -> Change | None:
    """What ``outcome`` of task ``task_id`` records: ``pending`` -> ``submitted``,
    ``succeeded`` -> its JSON without ``raw``, ``failed`` or ``TaskFailedError`` -> ``failed``;
    ``None`` for anything else (a timeout or a read error: the key stays ``submitted``).
    """
    if isinstance(outcome, TaskFailedError):
        return failed_change(outcome.code, outcome.message, task_id, outcome.trace_id)
    if isinstance(outcome, BaseException):
        return None
    status = getattr(outcome, "status", None)
    trace_id = getattr(outcome, "trace_id", None)
    if status == "pending":
        return submitted_change(task_id, trace_id)
    if status == "succeeded":
        return succeeded_change(
            outcome.model_dump(mode="json", exclude={"raw"}),  # type: ignore[attr-defined]
            (),
        )
    if status == "failed":
        error = getattr(outcome, "error", None)
        return failed_change(
            getattr(error, "code", None), getattr(error, "message", None), task_id, trace_id
        )
    return None


def submitted_change(task_id: str, trace_id: str | None) -> Change:
    """State ``submitted`` with ``task_id`` (a later state is kept when recorded)."""
    check_text("task_id", task_id)
    values = {"state": "submitted", "task_id": task_id, "trace_id": trace_id}
    return Change("submission", task_id, values)


def succeeded_change(
    result: Mapping[str, Any], files: Sequence[str | os.PathLike[str]], where: str | None = None
) -> Change:
    """State ``succeeded`` with the result JSON and the downloaded files.

    Raises:
        JournalError: ``result`` is not a JSON mapping (``where``: the journal, for the message).

    """
    if not isinstance(result, Mapping):
        raise JournalError(f"succeeded() needs a JSON result mapping, got {result!r}", path=where)
    encode_outcome(result, files)  # refuses what no store can hold, before any write
    task_id = result.get("task_id") if isinstance(result.get("task_id"), str) else None
    trace_id = result.get("trace_id") if isinstance(result.get("trace_id"), str) else None
    values = {
        "state": "succeeded",
        "task_id": task_id or None,
        "trace_id": trace_id or None,
        "result": dict(result),
        "files": [os.fspath(f) for f in files],
        "error_code": None,
        "error_message": None,
    }
    return Change("result", task_id or None, values)


def failed_change(
    code: str | None, message: str | None, task_id: str | None, trace_id: str | None
) -> Change:
    """State ``failed`` with the task's error code and message."""
    values = {
        "state": "failed",
        "task_id": task_id or None,
        "trace_id": trace_id,
        "result": None,
        "error_code": code,
        "error_message": message,
    }
    return Change("failure", task_id or None, values)
