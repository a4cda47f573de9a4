"""Reading a ``nanobanana batch`` file: one request per row, JSONL or CSV (by extension or
``--format``; ``-`` is standard input, kept in a temporary file so it can be read twice).

CSV: the header's names in any case (``ID,Prompt``); the delimiter (``,`` ``;`` or tab) is the one
the header line uses most; quotes are strict (an unclosed quote is bad input, exit 2, nothing
sent, instead of swallowing the rest of the file into one prompt).

Validation reads the whole file once (:func:`plan_rows`) and keeps per row only its line, key and
identity (about 200 bytes), so memory stays flat in the number and size of rows; the run reads the
file a second time (:func:`iter_rows`) and builds each request just before sending it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langchain_nanobanana.journal import request_identity

from .output import CLIError
from .rows import FIELDS, Defaults, Row, RowError, parse_row, unknown_columns

__all__ = ["Plan", "Source", "describe", "iter_rows", "plan_rows", "sniff_delimiter"]

_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class Source:
    """Where a batch's rows come from.

    Attributes:
        path: The file read (for ``-``, a temporary copy of standard input).
        name: How messages name it (``FILE`` as given, or ``<stdin>``).
        base: The folder relative image paths start from (FILE's folder; the current folder
            for standard input).
        format: ``"jsonl"`` or ``"csv"``.

    """

    path: Path
    name: str
    base: Path
    format: str

    @classmethod
    def from_file(cls, path: Path, format: str | None) -> Source:
        """A file; ``format`` ``None``: from its extension (``.csv``; ``.jsonl``, ``.ndjson``,
        ``.json``).

        Raises:
            CLIError: (exit 2) no such file, or an unknown extension without ``--format``.

        """
        if not path.is_file():
            raise CLIError(f"no such file: {path}")
        suffix = path.suffix.lower()
        if format is None:
            if suffix == ".csv":
                format = "csv"
            elif suffix in (".jsonl", ".ndjson", ".json"):
                format = "jsonl"
            else:
                raise CLIError(
                    f"{path}: unknown extension {suffix!r}; use .jsonl (JSON lines) or .csv, "
                    "or pass --format jsonl|csv"
                )
        return cls(path, os.fspath(path), path.parent, format)


@dataclass(frozen=True, slots=True)
class Plan:
    """What validation keeps of a valid row: ``line``, ``key`` (idempotency key), ``identity``
    (``request_identity`` of its body, 64 hex characters).
    """

    line: int
    key: str
    identity: str


def _jsonl(source: Source, defaults: Defaults) -> Iterator[Row | RowError]:
    base = source.base
    with source.path.open("rb") as fh:
        for number, raw_line in enumerate(fh, start=1):
            try:
                text = raw_line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield RowError(number, "row", f"not UTF-8 text ({exc.reason})")
                continue
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                yield RowError(number, "row", f"not a JSON object: {exc}")
                continue
            if not isinstance(data, dict):
                yield RowError(number, "row", f"expected a JSON object, got {type(data).__name__}")
                continue
            try:
                yield parse_row(number, data, base, defaults, csv_row=False)
            except RowError as exc:
                yield exc


def sniff_delimiter(header: str) -> str:
    """The delimiter of a CSV header line: whichever of ``,`` ``;`` and tab it has most of
    (outside double quotes); ``,`` when it has none (a one-column file).
    """
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv(source: Source, defaults: Defaults) -> Iterator[Row | RowError]:
    base, path = source.base, source.name
    try:
        fh = source.path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        try:
            first = fh.readline()
            fh.seek(0)
        except UnicodeDecodeError as exc:
            raise CLIError(f"{path}: line 1: not UTF-8 text ({exc.reason})") from None
        reader = csv.reader(fh, delimiter=sniff_delimiter(first), strict=True)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CLIError(f"{path}: line 1: cannot read the CSV header: {exc}") from None
        if header is None:
            return
        names = [h.strip().lower() for h in header]
        unknown = [n for n in names if n not in FIELDS]
        if unknown:
            raise CLIError(f"{path}: {unknown_columns(1, unknown)}")
        if "prompt" not in names:
            raise CLIError(
                f"{path}: line 1: the header has no 'prompt' column ({', '.join(names)})"
            )
        if len(set(names)) != len(names):
            raise CLIError(f"{path}: line 1: a column appears twice in the header")
        last = reader.line_num
        while True:
            start = last + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise CLIError(f"{path}: line {start}: not UTF-8 text ({exc.reason})") from None
            except csv.Error as exc:
                hint = " (a quote opened here is never closed)" if "end of data" in str(exc) else ""
                raise CLIError(
                    f"{path}: line {start}: malformed CSV ({exc}){hint}; nothing was sent"
                ) from None
            last = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(names):
                yield RowError(start, "row", f"{len(cells)} cells but {len(names)} columns")
                continue
            data = dict(zip(names, (c.strip() for c in cells), strict=False))
            try:
                yield parse_row(start, data, base, defaults, csv_row=True)
            except RowError as exc:
                yield exc


def iter_rows(source: Source, defaults: Defaults) -> Iterator[Row | RowError]:
    """Parse ``source`` row by row (streamed), as its ``format`` says.

    Yields:
        A :class:`Row`, or a :class:`RowError` for a row that cannot be parsed.

    Raises:
        CLIError: (exit 2) unreadable file, bad CSV header or framing (an unclosed quote).

    """
    if source.format == "csv":
        return _csv(source, defaults)
    return _jsonl(source, defaults)


def plan_rows(source: Source, defaults: Defaults) -> tuple[list[Plan], list[RowError]]:
    """Validate every row of ``source`` (local images are read) and give each its key.

    Returns:
        ``(plans, errors)``: one :class:`Plan` per valid row and one :class:`RowError` per invalid
        row (a repeated ``id`` is an error on its later line), both in file order.

    Raises:
        CLIError: As :func:`iter_rows`.

    """
    plans: list[Plan] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for item in iter_rows(source, defaults):
        if isinstance(item, RowError):
            errors.append(item)
            continue
        try:
            request = item.build()
        except RowError as exc:
            exc.id = item.id
            errors.append(exc)
            continue
        identity = request_identity(request.to_payload())
        if item.id is not None:
            if item.id in seen:
                errors.append(
                    RowError(
                        item.line, "id", f"{item.id!r} is already used on line {seen[item.id]}"
                    )
                )
                continue
            key = item.id
        else:
            n = occurrences[identity] = occurrences.get(identity, 0) + 1
            key = f"auto-{identity[:20]}-{n}"
        seen[key] = item.line
        plans.append(Plan(line=item.line, key=key, identity=identity))
    return plans, errors


def describe(source: Source, error: RowError) -> str:
    """``FILE:LINE: FIELD: why`` for an error message."""
    return f"{source.name}:{error.line}: {error.field}: {error.message}"
