"""Reading a ``nanobanana batch`` file: one request per row, JSONL or CSV (by extension or
``--format``; ``-`` is standard input, kept in a temporary file so it can be read twice).

CSV: the header's names in any case (``ID,Prompt``); the delimiter (``,`` ``;`` or tab) is the one
the header line uses most; quotes are strict (an unclosed quote is bad input, exit 2, nothing
sent, instead of swallowing the rest of the file into one prompt).

Columns / keys (all but ``prompt`` optional; empty CSV cells and JSON ``null`` are absent):

=================  ===============================================================================
``prompt``         the text (required)
``id``             the row's idempotency key; rows without one get ``auto-<20 hex>-<n>``: the
                   start of the request identity (``journal.request_identity``) and the row's
                   occurrence number among identical rows (1, 2, ...), so a re-run finds them again
``action``         ``generate`` or ``edit``; default: ``edit`` when ``images`` is given
``images``         CSV: URLs, data URIs or local paths separated by whitespace; JSONL: a list of
                   them (or one string = one image). Relative paths are relative to the input file
``model``, ``aspect_ratio``, ``resolution``, ``count``  as ``ImageRequest``; default: the command's
                   ``--model`` ... options, else the API's defaults
=================  ===============================================================================

Validation reads the whole file once (:func:`plan_rows`) and keeps per row only its line, key and
identity (about 200 bytes), so memory stays flat in the number and size of rows; the run reads the
file a second time (:func:`iter_rows`) and builds each request just before sending it.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_nanobanana._request import build_request
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.journal import request_identity
from langchain_nanobanana.models import ImageRequest

from .common import CLIError

__all__ = [
    "FIELDS",
    "Defaults",
    "Plan",
    "Row",
    "RowError",
    "Source",
    "iter_rows",
    "plan_rows",
    "sniff_delimiter",
]

#: The columns a row may have.
FIELDS = ("id", "prompt", "action", "images", "model", "aspect_ratio", "resolution", "count")
_SCHEMES = ("http://", "https://", "data:")
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


@dataclass(frozen=True)
class Defaults:
    """Values for rows that leave a field out (``--model``, ``--aspect-ratio``, ...)."""

    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class Row:
    """One parsed row (images not read yet).

    Attributes:
        line: 1-based line of the file where the row starts.
        id: The explicit idempotency key, or ``None``.
        action: ``"generate"`` or ``"edit"``.
        prompt: The text.
        images: URLs, data URIs and absolute local paths, in order.
        model, aspect_ratio, resolution, count: The row's values, defaults applied.
        callback_url: ``--callback-url`` (the same for every row), or ``None``.

    """

    line: int
    id: str | None
    action: str
    prompt: str
    images: tuple[str, ...]
    model: str | None
    aspect_ratio: str | None
    resolution: str | None
    count: int | None
    callback_url: str | None = None

    def build(self) -> ImageRequest:
        """The validated request (local images read and sniffed now).

        Raises:
            RowError: Any rule of ``ImageRequest`` or of the images, naming the field.

        """
        fields: dict[str, Any] = {
            "model": self.model,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "count": self.count,
            "callback_url": self.callback_url,
        }
        if self.action != "edit" and self.images:
            raise RowError(
                self.line,
                "images",
                "images are only used with action 'edit' (or leave 'action' out)",
            )
        try:
            return build_request(
                self.action,
                self.prompt,
                list(self.images) if self.action == "edit" else None,
                images_field="images",
                **{k: v for k, v in fields.items() if v is not None},
            )
        except InvalidRequestError as exc:
            named = exc.field if exc.field not in (None, "input") else None  # "input": a rule
            field = named or _field_in(exc.message, default="images")  # across fields
            field = field.split("[")[0] if field.startswith("images") else field
            message = exc.message.removeprefix(f"{exc.field}: ") if exc.field else exc.message
            raise RowError(self.line, _column(field), message) from None


class RowError(Exception):
    """A row that cannot be sent: its line, the field and why (``str``: ``line N: field: why``).

    Attributes:
        line: 1-based line number.
        field: The column (``prompt``, ``images[1]``, ``count``, ...), or ``"row"``.
        message: What is wrong and what is allowed.
        id: The row's explicit id when it could be read (for the manifest), else ``None``.

    """

    def __init__(self, line: int, field: str, message: str, id: str | None = None) -> None:
        super().__init__(f"line {line}: {field}: {message}")
        self.line = line
        self.field = field
        self.message = message
        self.id = id

    def key(self) -> str:
        """The manifest id of an invalid row: its ``id``, else ``line-<N>``."""
        return self.id or f"line-{self.line}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What validation keeps of a valid row: ``line``, ``key`` (idempotency key), ``identity``
    (``request_identity`` of its body, 64 hex characters).
    """

    line: int
    key: str
    identity: str


def _field_in(message: str, default: str = "row") -> str:
    head = message.split(":", 1)[0].split("=", 1)[0].split(" ", 1)[0].strip()
    return (
        _column(head)
        if head.replace("_", "").replace("[", "").replace("]", "").isalnum()
        else default
    )


def _column(field: str) -> str:
    return "images" + field[len("image_urls") :] if field.startswith("image_urls") else field


def _unknown(line: int, names: list[str]) -> RowError:
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return RowError(line, "row", f"unknown column(s) {', '.join(hints)}; use: {', '.join(FIELDS)}")


def _text(line: int, name: str, value: object, row_id: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RowError(line, name, f"expected text, got {json.dumps(value)[:60]}", row_id)
    return value


def _resolve_image(item: str, base: Path) -> str:
    if item[:8].lower().startswith(_SCHEMES):
        return item
    path = Path(item).expanduser()
    return str(path if path.is_absolute() else base / path)


def _row(line: int, raw: Mapping[str, Any], base: Path, defaults: Defaults, csv_row: bool) -> Row:
    unknown = [str(k) for k in raw if k not in FIELDS]
    row_id: str | None = None
    ident = raw.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if isinstance(ident, str) and ident.strip():
        row_id = ident.strip()
    if unknown:
        raise _unknown(line, unknown)
    if ident not in (None, "") and row_id is None:
        raise RowError(line, "id", f"expected text, got {json.dumps(ident)[:60]}")
    prompt = _text(line, "prompt", raw.get("prompt"), row_id)
    if prompt is None:
        raise RowError(line, "prompt", "missing: every row needs a prompt", row_id)
    if prompt.strip() == "-":
        raise RowError(line, "prompt", "is just '-' (a placeholder, never sent)", row_id)
    images_raw = raw.get("images")
    images: list[str]
    if images_raw is None or images_raw == "":
        images = []
    elif isinstance(images_raw, str):
        images = images_raw.split() if csv_row else [images_raw]
    elif isinstance(images_raw, list) and all(isinstance(i, str) and i for i in images_raw):
        images = list(images_raw)
    else:
        raise RowError(line, "images", "expected a list of URLs or paths", row_id)
    action = _text(line, "action", raw.get("action"), row_id) or ("edit" if images else "generate")
    count_raw = raw.get("count")
    count: int | None
    if count_raw is None or count_raw == "":
        count = defaults.count
    elif isinstance(count_raw, int) and not isinstance(count_raw, bool):
        count = count_raw
    elif csv_row and isinstance(count_raw, str) and count_raw.strip().isdigit():
        count = int(count_raw.strip())
    else:
        raise RowError(
            line, "count", f"count={json.dumps(count_raw)[:40]} is not a whole number", row_id
        )
    return Row(
        line=line,
        id=row_id,
        action=action,
        prompt=prompt,
        images=tuple(_resolve_image(i, base) for i in images),
        model=_text(line, "model", raw.get("model"), row_id) or defaults.model,
        aspect_ratio=_text(line, "aspect_ratio", raw.get("aspect_ratio"), row_id)
        or defaults.aspect_ratio,
        resolution=_text(line, "resolution", raw.get("resolution"), row_id) or defaults.resolution,
        count=count,
        callback_url=defaults.callback_url,
    )


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
                yield _row(number, data, base, defaults, csv_row=False)
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
            raise CLIError(f"{path}: {_unknown(1, unknown)}")
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
                yield _row(start, data, base, defaults, csv_row=True)
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
