"""What the journal stores for one key (:class:`Entry`), what :meth:`begin` decides
(:class:`Decision`), and the checks and encodings both stores share.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_nanobanana.journal._common import _STATES, DecisionKind, State
from langchain_nanobanana.journal.errors import JournalError

__all__ = ["COLUMNS", "Decision", "Entry", "entry_values"]

#: The stored columns, in the order :func:`entry_from_row` reads them (both stores).
COLUMNS = (
    "scope",
    "key",
    "identity",
    "state",
    "task_id",
    "trace_id",
    "result",
    "files",
    "error_code",
    "error_message",
    "owner_pid",
    "owner_start",
    "owner_host",
    "created_at",
    "updated_at",
    "owner_id",
    "lease_until",
)


@dataclass(frozen=True)
class Entry:
    """One key's record, as stored.

    Attributes:
        scope: The key's scope (the client's normalised base URL).
        key: The idempotency key.
        identity: :func:`request_identity` of the request the key names (64 hex).
        state: ``"reserved"`` (submission in flight or uncertain), ``"submitted"`` (``task_id``
            known), ``"succeeded"`` or ``"failed"`` (the task ran and failed).
        task_id, trace_id: The API's ids, once known.
        result: The JSON of the ``ImageResult`` (dict) when succeeded, else ``None``.
        files: Paths (str) of the images downloaded for the result.
        error_code, error_message: The task's error when failed.
        owner_pid: Pid that holds (or held) the reservation; 0 once interrupted; ``None`` when
            settled by hand.
        owner_start: Start marker of that process (Linux: ``"<boot id>:<start ticks>"``), or
            ``None`` where unknown.
        owner_host: Host name of that process.
        created_at, updated_at: Unix time in seconds (float).
        owner_id: The owner's lease id (one per journal object and process; ``None`` when
            interrupted or settled by hand).
        lease_until: Unix time (s) until which the owner's lease holds; the owner renews it
            while its submission is in flight. ``None`` when there is no lease.

    """

    scope: str
    key: str
    identity: str
    state: State
    task_id: str | None
    trace_id: str | None
    result: dict[str, Any] | None
    files: list[str]
    error_code: str | None
    error_message: str | None
    owner_pid: int | None
    owner_start: str | None
    owner_host: str | None
    created_at: float
    updated_at: float
    owner_id: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True)
class Decision:
    """What the caller of ``begin`` must do next.

    Attributes:
        kind: ``"submit"`` — the key is reserved for this caller: send the request, then record
            exactly one outcome (see the package docstring); ``"poll"`` — a task exists: poll
            ``entry.task_id``; ``"done"`` — the task succeeded: ``entry.result`` and
            ``entry.files`` are the answer, send nothing.
        entry: The key's record after the decision.

    """

    kind: DecisionKind
    entry: Entry

    @property
    def task_id(self) -> str | None:
        """The recorded task id (``None`` for a fresh reservation)."""
        return self.entry.task_id

    @property
    def result(self) -> dict[str, Any] | None:
        """The recorded result JSON (only for ``"done"``)."""
        return self.entry.result


def check_text(name: str, value: object) -> str:
    """``value`` if it is a non-empty str that every store can hold (no NUL, no lone
    surrogate), else :class:`JournalError`.
    """
    if not isinstance(value, str) or not value:
        raise JournalError(f"{name} must be a non-empty str, got {value!r}")
    if "\x00" in value:
        raise JournalError(f"{name} must not contain a NUL character, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise JournalError(
            f"{name} must be valid Unicode (no lone surrogate), got {value!r}"
        ) from None
    return value


def entry_values(entry: Entry, columns: Sequence[str]) -> list[Any]:
    """The values of ``entry`` for ``columns`` (names of :data:`COLUMNS`), in that order, as a
    store writes them: ``result`` and ``files`` as JSON text (:func:`encode_json`).
    """
    values: list[Any] = []
    for column in columns:
        value = getattr(entry, column)
        if column == "files" or (column == "result" and value is not None):
            value = encode_json(value, column)
        values.append(value)
    return values


def changed_columns(entry: Entry, old: Entry | None, columns: Sequence[str]) -> list[str]:
    """The names in ``columns`` whose value in ``entry`` differs from ``old`` (all of them when
    ``old`` is ``None``): an update writes only those (a result's JSON is not encoded again for
    a row whose result did not change).
    """
    if old is None:
        return list(columns)
    return [c for c in columns if getattr(entry, c) != getattr(old, c)]


def encode_json(value: Any, what: str) -> str:
    r"""JSON text safe for any store: ASCII only (a lone surrogate such as ``"\\ud800"`` in a
    result becomes the escape ``\\ud800`` and reads back as the same str), no NaN.

    Raises:
        JournalError: ``value`` is not JSON-serialisable.

    """
    try:
        return json.dumps(value, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"{what} needs JSON values: {exc}") from None


def encode_outcome(
    result: Mapping[str, Any], files: Sequence[str | os.PathLike[str]]
) -> tuple[str, str]:
    """The stored texts of a result and its files (see :func:`encode_json`)."""
    return (
        encode_json(dict(result), "succeeded()"),
        encode_json([os.fspath(f) for f in files], "succeeded()"),
    )


def entry_from_row(row: Sequence[Any], where: str) -> Entry:
    """Read a stored row (columns in :data:`COLUMNS` order) into an :class:`Entry`.

    Raises:
        JournalError: The row does not hold what the journal writes (a corrupted store).

    """
    try:
        result = json.loads(row[6]) if row[6] is not None else None
        files = json.loads(row[7]) if row[7] else []
        if result is not None and not isinstance(result, dict):
            raise ValueError("result is not a JSON object")
        if not isinstance(files, list):
            raise ValueError("files is not a JSON list")
        state = row[3]
        if state not in _STATES:
            raise ValueError(f"unknown state {state!r}")
    except ValueError as exc:
        raise JournalError(
            f"journal {where} holds an unreadable entry for key {row[1]!r}: {exc}. "
            f"The store may be corrupted; nothing was sent",
            path=where,
        ) from None
    return Entry(
        scope=row[0],
        key=row[1],
        identity=row[2],
        state=cast(State, state),
        task_id=row[4],
        trace_id=row[5],
        result=result,
        files=[str(f) for f in files],
        error_code=row[8],
        error_message=row[9],
        owner_pid=row[10],
        owner_start=row[11],
        owner_host=row[12],
        created_at=float(row[13]),
        updated_at=float(row[14]),
        owner_id=row[15] if len(row) > 15 else None,
        lease_until=float(row[16]) if len(row) > 16 and row[16] is not None else None,
    )
