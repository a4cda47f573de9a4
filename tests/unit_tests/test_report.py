"""The report page without a browser: manifest parsing (skipped lines and why), HTML escaping,
the Content-Security-Policy hashes, relative percent-encoded thumbnail paths, pixel sizes, sorting
and counts, and the ``nanobanana report`` command's errors (all sockets disabled).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana._cli.report import (
    describe_files,
    image_size,
    parse_manifest,
    write_report,
)
from langchain_nanobanana._cli.report_page import CSP, ImageFile, Line, Manifest, render
from langchain_nanobanana.cli import main
from tests.images import make_gif_header, make_jpeg, make_png, make_webp


def record(id: str, status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id,
        "task_id": f"task-{id}",
        "trace_id": f"trace-{id}",
        "status": status,
        "files": [],
        "urls": [],
        "error": None,
    }
    return base | extra


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def rows_of(page: str) -> list[str]:
    return re.findall(r"<tr class=\"st-[^\"]*\"[^>]*>", page)


# -- parse_manifest --------------------------------------------------------------------------


def test_parse_keeps_readable_lines_and_names_the_skipped_ones() -> None:
    data = (
        jsonl(record("a"))
        + b"\n"  # blank: ignored, still counted as a line
        + b"not json at all\n"
        + jsonl([1, 2])
        + jsonl(record("b", files="x.png"))
        + jsonl(record("c", count=True))
        + jsonl({"id": "d"})  # no status
        + b"\xff\xfe{}\n"
        + jsonl(record("e", prompt="ok", model="nano-banana", count=2, line=7))
        + b"[" * 100_000
        + b"\n"
        + b'{"id": "torn", "sta'
    )
    manifest = parse_manifest(data)
    assert [ln.number for ln in manifest.lines] == [1, 9]
    assert [ln.record["id"] for ln in manifest.lines] == ["a", "e"]
    skipped = dict(manifest.skipped)
    assert sorted(skipped) == [3, 4, 5, 6, 7, 8, 10, 11]
    assert skipped[3] == "not JSON"
    assert "not an object" in skipped[4]
    assert skipped[5] == "files: expected a list of text"
    assert skipped[6] == "count: expected a whole number or null"
    assert skipped[7] == "status: expected text"
    assert skipped[8] == "not UTF-8 text"
    assert skipped[10] == "not JSON"  # nested too deep for the parser
    assert skipped[11].startswith("incomplete last line")


def test_parse_accepts_a_bom_and_the_manifest_without_request_fields() -> None:
    manifest = parse_manifest(b"\xef\xbb\xbf" + jsonl(record("a"), record("b", "failed")))
    assert [ln.record["id"] for ln in manifest.lines] == ["a", "b"] and not manifest.skipped
    assert parse_manifest(b"") == Manifest([], [])


# -- render ----------------------------------------------------------------------------------

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)> \"quoted\" & 'single'"


PAGE_TAGS = [
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "code",
    "p",
    "span",
    "button",
    "section",
    "b",
    "ul",
    "li",
    "form",
    "label",
    "select",
    "option",
    "input",
    "main",
    "table",
    "thead",
    "tr",
    "th",
    "tbody",
    "td",
    "div",
    "br",
    "dl",
    "dt",
    "dd",
    "i",
    "a",
    "script",
    "colgroup",
    "col",
]


def test_every_value_is_escaped() -> None:
    evil = record(
        EVIL,
        status='fail"><script>alert(3)</script>',
        prompt=EVIL,
        model=EVIL,
        task_id=EVIL,
        urls=["javascript:alert(4)", 'https://cdn.example/a b"c.png'],
        error={"type": EVIL, "code": EVIL, "message": EVIL},
    )
    page = render(Manifest([Line(1, evil)], [(2, EVIL)]), {}, title=EVIL)
    assert page.count("<script") == 1  # the page's own
    assert "<img src=x" not in page  # the only tags are the page's own
    assert set(re.findall(r"<(\w+)", page)) <= set(PAGE_TAGS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert 'href="javascript:' not in page  # only http(s) URLs become links
    assert 'href="https://cdn.example/a b&quot;c.png"' in page
    assert 'data-status="fail&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"' in page
    assert 'class="st-other"' in page  # an unknown status gets no class of its own


def test_csp_pins_the_inline_style_and_script() -> None:
    page = render(Manifest([Line(1, record("a"))], []), {})
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        (body,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in CSP
    assert "default-src 'none'" in CSP and CSP in page
    assert "http://" not in page.split("<body>")[0] and "https://" not in page


def test_problem_rows_first_counts_of_latest_lines_and_superseded_lines() -> None:
    lines = [
        Line(1, record("a", "succeeded")),
        Line(2, record("b", "failed", error={"type": "TaskFailedError", "message": "boom"})),
        Line(3, record("c", "uncertain")),
        Line(4, record("d", "pending")),
        Line(5, record("b", "succeeded")),  # a re-run fixed b
        Line(6, record("e", "invalid")),
        Line(7, record("f", "weird")),
    ]
    page = render(Manifest(lines, []), {})
    order = [int(n) for n in re.findall(r'data-line="(\d+)"', page)]
    assert order == [2, 3, 6, 4, 7, 1, 5]  # failed, uncertain, invalid, pending, other, ok
    assert 'data-line="2" data-superseded="5"' in page and "see manifest line 5" in page
    assert "6 row(s)" in page  # ids a..f, b counted once (as succeeded)
    assert re.search(r'data-status="succeeded">succeeded <b>2</b>', page)
    assert re.search(r'data-status="failed">failed <b>1</b>', page) is None
    assert "show earlier attempts (1)" in page
    assert len(rows_of(page)) == 7  # one row per manifest line


def test_request_fields_and_defaults() -> None:
    with_request = record(
        "a", prompt="a cat", model=None, aspect_ratio="16:9", resolution=None, count=2, line=4
    )
    page = render(Manifest([Line(1, with_request), Line(2, record("b"))], []), {})
    assert ">nano-banana</span>" in page and "16:9 · " in page and "\u00d72" in page
    assert "input line 4" in page
    assert "(not in the manifest)" in page  # line 2 has no prompt


def test_thumbnails_missing_files_and_urls() -> None:
    files = {
        "/o/a.png": ImageFile("a.png", "a.png", True, 2048, 1024, 768),
        "/o/gone.png": ImageFile("gone.png", "gone.png", False),
    }
    lines = [
        Line(1, record("a", files=["/o/a.png", "/o/gone.png", "/o/unlisted.png"])),
        Line(2, record("u", urls=["https://cdn.example/u.png"])),
    ]
    page = render(Manifest(lines, []), files)
    assert page.count("<img ") == 1
    assert '<img src="a.png" alt="a.png" loading="lazy">' in page
    assert "1024\u00d7768 · 2.0 KB" in page
    assert "missing: gone.png" in page and "missing: /o/unlisted.png" in page
    assert '<a class="url" href="https://cdn.example/u.png" rel="noreferrer">' in page


def test_skipped_lines_are_listed_on_the_page() -> None:
    page = render(Manifest([], [(3, "not JSON"), (9, "incomplete last line")]), {})
    assert "Skipped manifest line(s) 3, 9" in page and "line 9: incomplete last line" in page
    assert "no readable line" in page


# -- files -----------------------------------------------------------------------------------


def test_relative_percent_encoded_paths_sizes_and_missing_files(tmp_path: Path) -> None:
    out = tmp_path / "my out"
    odd = out / "sub dir" / "a \"b\" 'c' #1%.png"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(make_png(5, 4))
    outside = tmp_path / "elsewhere" / "x.gif"
    outside.parent.mkdir()
    outside.write_bytes(make_gif_header(7, 3))
    (out / "rel.jpg").write_bytes(make_jpeg(9, 8))
    lines = [Line(1, record("a", files=[str(odd), str(outside), "rel.jpg", str(out / "no.png")]))]
    files = describe_files(lines, out)
    assert files[str(odd)] == ImageFile(
        "sub%20dir/a%20%22b%22%20%27c%27%20%231%25.png",
        odd.name,
        True,
        odd.stat().st_size,
        5,
        4,
    )
    assert files[str(outside)].href == "../elsewhere/x.gif"
    assert (files[str(outside)].width, files[str(outside)].height) == (7, 3)
    assert files["rel.jpg"].href == "rel.jpg" and files["rel.jpg"].width == 9
    assert not files[str(out / "no.png")].exists
    page = render(Manifest(lines, []), files)
    assert 'src="sub%20dir/a%20%22b%22%20%27c%27%20%231%25.png"' in page


def test_a_moved_folder_still_shows_its_images(tmp_path: Path) -> None:
    old = tmp_path / "old" / "cat.png"
    moved = tmp_path / "new"
    moved.mkdir()
    (moved / "cat.png").write_bytes(make_png(2, 2))
    files = describe_files([Line(1, record("a", files=[str(old)]))], moved)
    assert files[str(old)].exists and files[str(old)].href == "cat.png"


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (make_png(3, 2), (3, 2)),
        (make_gif_header(640, 480), (640, 480)),
        (make_jpeg(1344, 768), (1344, 768)),
        (make_jpeg(20, 10, sof=0xC2), (20, 10)),
        (make_webp(b"VP8 ", 300, 200), (300, 200)),
        (make_webp(b"VP8L", 301, 201), (301, 201)),
        (make_webp(b"VP8X", 4000, 3000), (4000, 3000)),
        (b"\x89PNG\r\n\x1a\n", None),
        (make_jpeg(5, 5)[:12], None),
        (b"BM not handled", None),
        (b"", None),
    ],
)
def test_image_size(data: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(data) == size


def test_write_report_replaces_the_page_atomically(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path)
    (tmp_path / "manifest.jsonl").write_bytes(jsonl(record("a")) + b"{torn")
    (tmp_path / "report.html").write_text("old")
    report = write_report(tmp_path)
    assert report.path == tmp_path / "report.html" and report.rows == 1
    assert report.skipped == [(2, "incomplete last line (a run stopped mid-write?)")]
    assert "<!DOCTYPE html>" in report.path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl", "report.html"]


# -- the command -----------------------------------------------------------------------------


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    captured = capsys.readouterr()
    assert "no manifest.jsonl in" in captured.err and str(empty) in captured.err
    assert not (empty / "report.html").exists() and captured.out == ""

    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_bytes(jsonl(record("a")) + b"nope\n" + jsonl(record("b")))
    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "report.html")
    assert "skipped unreadable manifest line(s) 2 (not JSON)" in captured.err
    assert "Skipped manifest line(s) 2" in (out / "report.html").read_text()

    assert main(["report", "--out", str(out)]) == 0
    assert main(["report", str(out), "--out", str(empty)]) == 2
    assert "two folders" in capsys.readouterr().err


def test_report_help_has_examples_and_help_on_every_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["report", "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "nanobanana report out/" in text and "--report" in text
    assert "OUT " in text and "--out DIR  the same folder" in text
    assert "--base-url" not in text  # only its own options
    assert main(["batch", "--help"]) == 0
    assert "--report" in capsys.readouterr().out
