"""The ``report.html`` page, pure: manifest lines and file facts in, one HTML document out.

The page needs no network: its style and script are inline and pinned by hash in its
Content-Security-Policy (no other script runs, nothing is fetched but local images), every
manifest value is HTML-escaped, thumbnails are the saved files by relative, percent-encoded URL.
Reading the folder and writing the file is ``report``'s job.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["CSP", "SCRIPT", "STATUS_ORDER", "STYLE", "ImageFile", "Line", "Manifest", "render"]

#: Statuses in the order the page lists them: the ones that need a look first.
STATUS_ORDER = ("failed", "uncertain", "invalid", "pending", "unknown", "succeeded")
_UNKNOWN = '<i class="none">(not in the manifest)</i>'
_API_DEFAULTS = {"model": "nano-banana", "aspect_ratio": "1:1", "resolution": "1K"}


@dataclass(frozen=True)
class Line:
    """One readable manifest line: its 1-based ``number`` and its JSON object ``record``."""

    number: int
    record: Mapping[str, Any]


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: readable ``lines`` in file order and ``skipped`` ``(line number,
    reason)`` pairs for lines that could not be used (torn, not JSON, wrong types).
    """

    lines: list[Line]
    skipped: list[tuple[int, str]]


@dataclass(frozen=True)
class ImageFile:
    """What the page shows of one saved image.

    Attributes:
        href: URL of the file relative to the page, percent-encoded (spaces, quotes, ``#``).
        name: The file's name (for the ``alt`` text).
        exists: Whether the file was there when the page was written.
        size_bytes: The file's size in bytes (``None`` when missing).
        width, height: Pixel size read from the file's header (``None`` when unknown).

    """

    href: str
    name: str
    exists: bool
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None


STYLE = """
:root{--fg:#1d2330;--mute:#5d6677;--line:#dfe3ea;--bg:#f6f7f9;
--failed:#c62828;--uncertain:#d35400;--invalid:#6a1b9a;--pending:#9a7400;--ok:#2e7d32}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid var(--line);
padding:10px 16px}
h1{font-size:18px;margin:0 0 6px}
.counts{margin:0 0 8px;display:flex;gap:6px;align-items:center;flex-wrap:wrap}
.controls{display:flex;gap:16px;align-items:center;flex-wrap:wrap}
.controls input[type=search]{width:22em;padding:3px 6px}
#shown{color:var(--mute)}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;color:#fff;
background:var(--mute);border:0;font-family:inherit}
button.badge{cursor:pointer}
.badge.st-failed{background:var(--failed)}.badge.st-uncertain{background:var(--uncertain)}
.badge.st-invalid{background:var(--invalid)}.badge.st-pending{background:var(--pending)}
.badge.st-succeeded{background:var(--ok)}
.skipped{margin:0 0 8px;padding:6px 10px;border-left:4px solid var(--uncertain);background:#fff4e5}
.skipped ul{margin:4px 0 0;padding-left:20px}
main{padding:8px 16px 32px}
table{border-collapse:collapse;width:100%;min-width:1150px;background:#fff;table-layout:fixed}
col.c-num{width:3em}col.c-imgs{width:150px}col.c-status{width:7em}col.c-ids{width:23.5em}
col.c-req{width:10em}col.c-err{width:21%}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top;
overflow:hidden}
th{font-size:12px;color:var(--mute);font-weight:600}
tr.st-failed td:first-child{border-left:5px solid var(--failed)}
tr.st-uncertain td:first-child{border-left:5px solid var(--uncertain)}
tr.st-invalid td:first-child{border-left:5px solid var(--invalid)}
tr.st-pending td:first-child{border-left:5px solid var(--pending)}
tr.st-failed,tr.st-uncertain{background:#fff6f4}
tr[data-superseded]{opacity:.55}
[hidden]{display:none!important}
td.num{color:var(--mute);font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:0 6px 4px 0;text-align:center}
figure img{display:block;max-width:128px;max-height:128px;border:1px solid var(--line);
background:#eee}
figcaption{font-size:11px;color:var(--mute)}
td.prompt{white-space:pre-wrap;overflow-wrap:anywhere}
dl{margin:0;display:grid;grid-template-columns:auto 1fr;gap:0 6px;font-size:12px}
td.ids dd{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
td.req{font-size:12px;overflow-wrap:anywhere}
.dflt{color:var(--mute);font-style:italic}
dt{color:var(--mute)}dd{margin:0;overflow-wrap:anywhere}
code{font-size:12px}
td.err{color:var(--failed);overflow-wrap:anywhere;white-space:pre-wrap}
.note,.none,.missing,.url{font-size:12px;color:var(--mute);overflow-wrap:anywhere}
.missing{color:var(--failed)}
"""

SCRIPT = """
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#rows tbody tr"));
  var status = document.getElementById("status");
  var q = document.getElementById("q");
  var old = document.getElementById("old");
  var shown = document.getElementById("shown");
  var texts = null;  // each row's text, lower-cased once: the rows never change
  function apply() {
    var want = status.value;
    var words = q.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    if (words.length && texts === null) {
      texts = rows.map(function (tr) { return tr.textContent.toLowerCase(); });
    }
    rows.forEach(function (tr, i) {
      var st = tr.getAttribute("data-status");
      var ok = want === "" || (want === "attention" ? st !== "succeeded" : st === want);
      if (ok && tr.hasAttribute("data-superseded") && !(old && old.checked)) { ok = false; }
      if (ok && words.length) {
        ok = words.every(function (w) { return texts[i].indexOf(w) >= 0; });
      }
      tr.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " line(s) shown";
  }
  document.querySelectorAll("button[data-status]").forEach(function (b) {
    b.addEventListener("click", function () {
      var st = b.getAttribute("data-status");
      status.value = status.value === st ? "" : st;
      apply();
    });
  });
  status.addEventListener("change", apply);
  q.addEventListener("input", apply);
  if (old) { old.addEventListener("change", apply); }
  document.querySelector("form.controls").addEventListener("submit", function (ev) {
    ev.preventDefault();
  });
  apply();
}());
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: Nothing but the page's own style and script and local images: no network, and no script
#: that was not written here runs even if a value escaped its escaping.
CSP = (
    f"default-src 'none'; img-src 'self' file: data:; style-src {_sha256(STYLE)}; "
    f"script-src {_sha256(SCRIPT)}; base-uri 'none'; form-action 'none'"
)

# -- the page ----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _latest(lines: Sequence[Line]) -> dict[int, int]:
    """Line number -> the later line number of the same ``id`` (lines a re-run superseded)."""
    last: dict[str, int] = {}
    for line in lines:
        if isinstance(line.record.get("id"), str):
            last[line.record["id"]] = line.number
    return {
        line.number: last[line.record["id"]]
        for line in lines
        if isinstance(line.record.get("id"), str) and last[line.record["id"]] != line.number
    }


def _images(record: Mapping[str, Any], files: Mapping[str, ImageFile]) -> str:
    cells = []
    for path in record.get("files", []):
        info = files.get(path) or ImageFile(href=quote(path), name=path, exists=False)
        if not info.exists:
            cells.append(f'<span class="missing">missing: {_e(info.name)}</span>')
            continue
        facts = [f"{info.width}\u00d7{info.height}"] if info.width and info.height else []
        if info.size_bytes is not None:
            facts.append(_bytes(info.size_bytes))
        cells.append(
            f'<figure><a href="{_e(info.href)}"><img src="{_e(info.href)}" alt="{_e(info.name)}"'
            f' loading="lazy"></a><figcaption>{_e(" · ".join(facts))}</figcaption></figure>'
        )
    if not cells:
        for url in record.get("urls", []):
            shown = _e(url if len(url) <= 60 else url[:57] + "...")
            if url.lower().startswith(("https://", "http://")):
                cells.append(f'<a class="url" href="{_e(url)}" rel="noreferrer">{shown}</a>')
            else:
                cells.append(f'<span class="url">{shown}</span>')
    return "".join(cells) or '<span class="none">no image</span>'


def _error(error: object) -> str:
    if error is None:
        return ""
    if isinstance(error, str):
        return _e(error)
    assert isinstance(error, Mapping)
    head = " · ".join(str(error[k]) for k in ("type", "code") if error.get(k) not in (None, ""))
    message = error.get("message")
    body = _e(message if message is not None else json.dumps(error, ensure_ascii=False))
    return (f"<b>{_e(head)}</b><br>" if head else "") + body


def _request(record: Mapping[str, Any]) -> str:
    """Model, then aspect ratio, resolution and count, then action and input line; a value the
    line leaves null (not sent) on a line that knows its request shows the API's default, marked.
    """
    values = []
    for key in ("model", "aspect_ratio", "resolution"):
        value = record.get(key)
        if value is not None:
            values.append(_e(value))
        elif "prompt" in record:
            values.append(
                f'<span class="dflt" title="not sent: the API\'s default">'
                f"{_API_DEFAULTS[key]}</span>"
            )
    if isinstance(record.get("count"), int):
        values.append(f"\u00d7{record['count']}")
    where = [_e(record["action"])] if record.get("action") is not None else []
    if record.get("line") is not None:
        where.append(f"input line {_e(record['line'])}")
    parts = ([f"<div>{values[0]}</div>"] if values else []) + (
        [f"<div>{' · '.join(values[1:])}</div>"] if values[1:] else []
    )
    if where:
        parts.append(f'<div class="note">{" · ".join(where)}</div>')
    return "".join(parts)


def _row(line: Line, files: Mapping[str, ImageFile], later: int | None) -> str:
    record = line.record
    status = str(record["status"])
    known = status if status in STATUS_ORDER else "other"
    prompt = record.get("prompt")
    ids = "".join(
        f"<dt>{label}</dt><dd><code>{_e(record.get(key))}</code></dd>"
        for key, label in (("id", "id"), ("task_id", "task"), ("trace_id", "trace"))
        if record.get(key) is not None
    )
    note = f'<div class="note">re-run: see manifest line {later}</div>' if later else ""
    attrs = f' data-superseded="{later}"' if later else ""
    return (
        f'<tr class="st-{known}" data-status="{_e(status)}" data-line="{line.number}"{attrs}>'
        f'<td class="num">{line.number}</td>'
        f'<td class="imgs">{_images(record, files)}</td>'
        f'<td class="prompt">{_e(prompt) if prompt is not None else _UNKNOWN}{note}</td>'
        f'<td><span class="badge st-{known}">{_e(status)}</span></td>'
        f'<td class="ids"><dl>{ids}</dl></td>'
        f'<td class="req">{_request(record)}</td>'
        f'<td class="err">{_error(record.get("error"))}</td></tr>'
    )


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else STATUS_ORDER.index("unknown")


def render(manifest: Manifest, files: Mapping[str, ImageFile], *, title: str = "out") -> str:
    """The report page for ``manifest`` (pure: no file is read).

    Args:
        manifest: The parsed manifest (:func:`parse_manifest`).
        files: What is known of each file path the lines name (:func:`describe_files`); a path
            missing here is shown as a missing file.
        title: The folder's name as the user gave it (shown in the title and heading).

    Returns:
        The whole HTML document. Every manifest value is HTML-escaped; rows are sorted by status
        (failed, uncertain, invalid, pending, other, succeeded) then by line; lines a later line
        of the same ``id`` supersedes are hidden unless "show earlier attempts" is ticked; the
        counts are of the latest line per ``id``.

    """
    later = _latest(manifest.lines)
    ordered = sorted(manifest.lines, key=lambda ln: (_rank(str(ln.record["status"])), ln.number))
    counts = Counter(str(ln.record["status"]) for ln in manifest.lines if ln.number not in later)
    statuses = sorted(counts, key=lambda s: (_rank(s), s))
    total = sum(counts.values())
    buttons = "".join(
        f'<button type="button" class="badge st-{s if s in STATUS_ORDER else "other"}" '
        f'data-status="{_e(s)}">{_e(s)} <b>{counts[s]}</b></button>'
        for s in statuses
    )
    options = "".join(f'<option value="{_e(s)}">{_e(s)} ({counts[s]})</option>' for s in statuses)
    attention = total - counts.get("succeeded", 0)
    older = (
        f'<label><input type="checkbox" id="old"> show earlier attempts ({len(later)})</label>'
        if later
        else ""
    )
    skipped = ""
    if manifest.skipped:
        items = "".join(f"<li>line {n}: {_e(why)}</li>" for n, why in manifest.skipped)
        numbers = ", ".join(str(n) for n, _ in manifest.skipped)
        skipped = (
            f'<section class="skipped" id="skipped"><b>Skipped manifest line(s) {numbers}</b> '
            f"(not readable; the other lines are shown)<ul>{items}</ul></section>"
        )
    body = "".join(_row(ln, files, later.get(ln.number)) for ln in ordered)
    empty = "" if manifest.lines else '<p class="none">The manifest has no readable line yet.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nanobanana report: {_e(title)}</title>
<style>{STYLE}</style></head>
<body><header>
<h1>nanobanana report: <code>{_e(title)}</code></h1>
<p class="counts"><span>{total} row(s)</span> {buttons}</p>
{skipped}
<form class="controls" role="search">
<label>Status <select id="status"><option value="">all ({total})</option>
<option value="attention">needs a look ({attention})</option>{options}</select></label>
<label>Search <input type="search" id="q" placeholder="prompt, id, task, error..."></label>
{older}<span id="shown" role="status"></span>
<span class="note"><span class="dflt">grey italic</span>: the API's default (not sent)</span></form>
</header>
<main>{empty}<table id="rows"><colgroup><col class="c-num"><col class="c-imgs">
<col class="c-prompt"><col class="c-status"><col class="c-ids"><col class="c-req">
<col class="c-err"></colgroup><thead><tr><th>line</th><th>images</th><th>prompt</th>
<th>status</th><th>ids</th><th>request</th><th>error</th></tr></thead>
<tbody>
{body}
</tbody></table></main>
<script>{SCRIPT}</script>
</body></html>
"""
