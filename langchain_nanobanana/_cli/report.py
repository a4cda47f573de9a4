"""``nanobanana report OUT``: one self-contained HTML page of a batch's ``manifest.jsonl``.

The page (``OUT/report.html``) has one table row per readable manifest line — thumbnails, prompt,
status, ids, request, error — with the problem rows first (failed, uncertain, invalid, pending),
counts per status, a status filter and a text search. It needs no network: CSS and script are
inline (and pinned by hash in its Content-Security-Policy), thumbnails are the saved files by
relative, percent-encoded path, so the folder can be moved or zipped as a whole.

Pure parts: :func:`parse_manifest` (bytes in, readable lines and skipped line numbers out) and
``report_page.render`` (lines and file facts in, HTML text out). :func:`write_report` reads a
folder and writes the page; :func:`cmd_report` is the subcommand. Only the standard library is
imported at module level (the page's module when a page is built), so registering the
subcommand costs the command line's start-up nothing.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import argparse

    from .common import Output
    from .report_page import ImageFile, Line, Manifest
    from .rows import Row

__all__ = [
    "REPORT_NAME",
    "Report",
    "add_parser",
    "cmd_report",
    "describe_files",
    "image_size",
    "manifest_fields",
    "parse_manifest",
    "report_after_batch",
    "report_folder",
    "write_report",
]

#: The page's file name inside the output folder.
REPORT_NAME = "report.html"
_TEXT_KEYS = ("id", "task_id", "trace_id", "prompt", "action", "model", "aspect_ratio")


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` did: the page's ``path``, the number of ``rows`` shown and the
    ``skipped`` manifest lines (as :attr:`Manifest.skipped`).
    """

    path: Path
    rows: int
    skipped: list[tuple[int, str]]


def manifest_fields(row: Row) -> dict[str, Any]:
    """What a batch adds to a row's manifest line for the report (beside ``line_record``'s
    keys): ``prompt``, ``action``, ``model``, ``aspect_ratio``, ``resolution``, ``count`` (null:
    not sent, the API's default) and ``line`` (the row's 1-based line in the input file).
    """
    return {
        "prompt": row.prompt,
        "action": row.action,
        "model": row.model,
        "aspect_ratio": row.aspect_ratio,
        "resolution": row.resolution,
        "count": row.count,
        "line": row.line,
    }


# -- reading -----------------------------------------------------------------------------------


def _problem(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` is not a usable manifest line, or ``None``."""
    status = record.get("status")
    if not isinstance(status, str) or not status:
        return "status: expected text"
    for key in (*_TEXT_KEYS, "resolution"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key}: expected text or null"
    for key in ("files", "urls"):
        value = record.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{key}: expected a list of text"
    count, line = record.get("count"), record.get("line")
    for key, value in (("count", count), ("line", line)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"{key}: expected a whole number or null"
    error = record.get("error")
    if error is not None and not isinstance(error, (dict, str)):
        return "error: expected an object, text or null"
    return None


def parse_manifest(data: bytes) -> Manifest:
    """Parse ``manifest.jsonl`` bytes, keeping every line that can be shown.

    Blank lines are ignored. A line is skipped (with its reason) when it is not UTF-8, not a JSON
    object, or has a field of the wrong type (``status`` text; ``id``, ``task_id``, ``trace_id``,
    ``prompt``, ``model``... text or null; ``files``/``urls`` lists of text; ``count`` a whole
    number; ``error`` an object, text or null). Unknown keys are kept and ignored. Never raises.
    """
    from .report_page import Line, Manifest

    lines: list[Line] = []
    skipped: list[tuple[int, str]] = []
    raw_lines = data.split(b"\n")
    torn = bool(data) and not data.endswith(b"\n")
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        last = torn and number == len(raw_lines)
        try:
            record = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError:
            skipped.append((number, "not UTF-8 text"))
            continue
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            why = "incomplete last line (a run stopped mid-write?)" if last else "not JSON"
            skipped.append((number, why))
            continue
        if not isinstance(record, dict):
            skipped.append((number, f"a JSON {type(record).__name__}, not an object"))
            continue
        problem = _problem(record)
        if problem is not None:
            skipped.append((number, problem))
            continue
        lines.append(Line(number, record))
    return Manifest(lines, skipped)


def _href(path: str, out: Path) -> str:
    target = Path(path) if os.path.isabs(path) else out / path
    try:
        rel = os.path.relpath(target, out)
    except ValueError:  # another drive (Windows): an absolute file URL
        return target.absolute().as_uri()
    return quote(rel.replace(os.sep, "/"), safe="/")


def describe_files(lines: Sequence[Line], out: Path) -> dict[str, ImageFile]:
    """Look at every file the ``lines`` name: relative href from ``out`` (where the page is),
    existence, size in bytes and pixel size (from the first 64 KiB of the file). Relative paths
    in the manifest are taken as relative to ``out``; an absolute path that is gone while
    ``out`` holds a file of that name (the folder was moved or copied) is shown from ``out``.
    Never raises: an unreadable file is shown as missing or without its pixel size.
    """
    from .report_page import ImageFile

    files: dict[str, ImageFile] = {}
    for line in lines:
        for path in line.record.get("files", []):
            if path in files:
                continue
            target = Path(path) if os.path.isabs(path) else out / path
            if not target.exists() and (out / target.name).is_file():
                target = out / target.name  # the folder moved since the batch
            size: int | None = None
            dims: tuple[int, int] | None = None
            try:
                size = target.stat().st_size
                with target.open("rb") as fh:
                    dims = image_size(fh.read(65536))
            except OSError:
                pass
            files[path] = ImageFile(
                href=_href(str(target), out),
                name=target.name,
                exists=size is not None,
                size_bytes=size,
                width=dims[0] if dims else None,
                height=dims[1] if dims else None,
            )
    return files


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            i += 1
            continue
        marker = head[i + 1]
        if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", head[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def image_size(head: bytes) -> tuple[int, int] | None:
    """``(width, height)`` in pixels from the first bytes of a PNG, GIF, WEBP or JPEG file
    (64 KiB is plenty but for JPEGs with large metadata), or ``None`` when the header is not
    one of those or is cut short. Never raises.
    """
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return width, height
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return width, height
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8 ":
                width, height = struct.unpack("<HH", head[26:30])
                return width & 0x3FFF, height & 0x3FFF
            if kind == b"VP8L":
                b0, b1, b2, b3 = head[21:25]
                return 1 + (((b1 & 0x3F) << 8) | b0), 1 + (
                    ((b3 & 0xF) << 10) | (b2 << 2) | (b1 >> 6)
                )
            if kind == b"VP8X":
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(
                    head[27:30], "little"
                )
            return None
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(head)
    except (struct.error, ValueError):
        return None
    return None


# -- the folder and the command ----------------------------------------------------------------


def write_report(out: str | os.PathLike[str]) -> Report:
    """Read ``out/manifest.jsonl`` and write ``out/report.html`` (atomically: a browser that
    reloads never sees half a page).

    Raises:
        FileNotFoundError: ``out`` has no ``manifest.jsonl``.
        OSError: The manifest cannot be read or the page cannot be written.

    """
    from .report_page import render

    folder = Path(out)
    manifest_path = folder / "manifest.jsonl"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no manifest.jsonl in {os.fspath(out)}")
    manifest = parse_manifest(manifest_path.read_bytes())
    page = render(manifest, describe_files(manifest.lines, folder.absolute()), title=os.fspath(out))
    target = folder / REPORT_NAME
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".html.part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Report(target, len(manifest.lines), manifest.skipped)


def report_folder(out: str | os.PathLike[str], output: Output) -> Report:
    """Write ``out/report.html`` for the command line, telling skipped lines on stderr.

    Raises:
        CLIError: (exit 2) no manifest in ``out``, or it cannot be read or the page written.

    """
    from .common import CLIError

    try:
        report = write_report(out)
    except FileNotFoundError:
        raise CLIError(
            f"no manifest.jsonl in {os.fspath(out)!r}: give the --out folder of a "
            "`nanobanana batch` run"
        ) from None
    except OSError as exc:
        raise CLIError(f"cannot write the report in {os.fspath(out)!r}: {exc}") from None
    if report.skipped:
        numbers = ", ".join(str(n) for n, _ in report.skipped)
        output.error(
            f"nanobanana: warning: skipped unreadable manifest line(s) {numbers} "
            f"({report.skipped[0][1]}{'; ...' if len(report.skipped) > 1 else ''}); "
            "the page lists them"
        )
    return report


def report_after_batch(out: str, output: Output) -> int:
    """``batch --report``: write ``out/report.html`` once the run has ended and tell its path
    (stdout, after the manifest's; stderr with ``--json``).

    Returns:
        The exit code it adds: 0, or 1 when the page could not be written (said on stderr; the
        batch's own result stands).

    """
    from .common import EXIT_FAILED, EXIT_OK, CLIError

    try:
        report_folder(out, output)
    except CLIError as exc:
        output.error(f"nanobanana: error: {exc.message}")
        return EXIT_FAILED
    path = os.path.join(out, REPORT_NAME)
    if output.json_lines:
        output.note(f"nanobanana: report: {path}")
    else:
        output.result(path)
    return EXIT_OK


_EPILOG = """\
examples:
  nanobanana report out/                           # write out/report.html, print its path
  nanobanana batch rows.jsonl --out out/ --report  # the same at the end of a batch
  xdg-open "$(nanobanana report out/)"             # and open it (macOS: open)

The page is one self-contained file: no network, thumbnails by relative path (keep it in the
folder, or move the folder as a whole). Problem rows come first (failed, uncertain, invalid,
pending); the counts, a status filter and a text search are at the top.

exit codes: 0 the page was written (unreadable manifest lines are skipped, named on stderr and on
the page); 2 no manifest.jsonl in the folder, or the page cannot be written."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nanobanana report`` on the subcommands ``sub`` (only its own options)."""
    import argparse

    parser = sub.add_parser(
        "report",
        help="write OUT/report.html: every manifest row, with thumbnails, to look at",
        description="Write OUT/report.html, one page with every line of OUT/manifest.jsonl:\n"
        "thumbnails, prompt, status, task and trace ids, model, size and error.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "folder",
        nargs="?",
        metavar="OUT",
        help="the --out folder of a batch, holding manifest.jsonl (default ./out)",
    )
    parser.add_argument(
        "-o", "--out", dest="out_option", metavar="DIR", help="the same folder, as an option"
    )


def cmd_report(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana report [OUT]``: write ``OUT/report.html`` and print its path (as given).

    Returns 0 once the page is written, skipped manifest lines included (they are named on stderr
    and on the page).

    Raises:
        CLIError: (exit 2) ``OUT`` and ``--out`` name different folders, or as
            :func:`report_folder`.

    """
    from .common import CLIError

    if args.folder and args.out_option and args.folder != args.out_option:
        raise CLIError(f"two folders: {args.folder!r} and --out {args.out_option!r}; give one")
    folder = args.folder or args.out_option or "out"
    report_folder(folder, output)
    output.result(os.path.join(folder, REPORT_NAME))
    return 0
