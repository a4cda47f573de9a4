"""One row of a ``nanobanana batch`` file: its columns, defaults, validation and request.

Columns / keys (all but ``prompt`` optional; empty CSV cells and JSON ``null`` are absent):

=================  ===============================================================================
``prompt``         the text (required; a prompt that is just ``-`` is refused, never sent)
``id``             the row's idempotency key; rows without one get ``auto-<20 hex>-<n>``: the
                   start of the request identity (``journal.request_identity``) and the row's
                   occurrence number among identical rows (1, 2, ...), so a re-run finds them again
``action``         ``generate`` or ``edit``; default: ``edit`` when ``images`` is given
``images``         CSV: URLs, data URIs or local paths separated by whitespace; JSONL: a list of
                   them (or one string = one image). Relative paths are relative to the input file
``model``, ``aspect_ratio``, ``resolution``, ``count``  as ``ImageRequest``; default: the command's
                   ``--model`` ... options, else the API's defaults
=================  ===============================================================================

Reading a whole file (JSONL, CSV, standard input) is :mod:`._cli.source`'s job.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_nanobanana._request import build_request
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.models import ImageRequest

__all__ = ["FIELDS", "Defaults", "Row", "RowError", "parse_row", "unknown_columns"]

#: The columns a row may have.
FIELDS = ("id", "prompt", "action", "images", "model", "aspect_ratio", "resolution", "count")
_SCHEMES = ("http://", "https://", "data:")


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


def _field_in(message: str, default: str = "row") -> str:
    head = message.split(":", 1)[0].split("=", 1)[0].split(" ", 1)[0].strip()
    return (
        _column(head)
        if head.replace("_", "").replace("[", "").replace("]", "").isalnum()
        else default
    )


def _column(field: str) -> str:
    return "images" + field[len("image_urls") :] if field.startswith("image_urls") else field


def unknown_columns(line: int, names: list[str]) -> RowError:
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


def parse_row(
    line: int, raw: Mapping[str, Any], base: Path, defaults: Defaults, csv_row: bool
) -> Row:
    """The :class:`Row` of one parsed record (``raw``: column -> value) at ``line``; relative
    image paths start from ``base``; ``csv_row``: values are CSV text (``count`` from digits,
    ``images`` split on whitespace).

    Raises:
        RowError: An unknown column, a missing or ``-`` prompt, a value of the wrong type.

    """
    unknown = [str(k) for k in raw if k not in FIELDS]
    row_id: str | None = None
    ident = raw.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if isinstance(ident, str) and ident.strip():
        row_id = ident.strip()
    if unknown:
        raise unknown_columns(line, unknown)
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
