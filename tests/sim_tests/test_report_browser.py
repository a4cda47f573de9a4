"""``nanobanana batch --report`` against the simulator, and the page it writes opened in a real
headless Chromium (Debian's ``chromium``, driven by Playwright; no browser is downloaded).

The batch has succeeded, failed (a task the simulator fails), uncertain (an answer the simulator
drops) and invalid rows, a prompt that tries to inject HTML, and an output folder whose name has
spaces, quotes and ``#``. In the browser: no console error and no request but local files, one
table row per manifest line with the problem rows first, the status filter and the text search
hide rows, every thumbnail decodes (``naturalWidth > 0``), the injected HTML stays text. The test
saves a screenshot in its tmp dir; with ``UPDATE_SCREENSHOTS=1`` it also refreshes the README's
``docs/images/report.png``.

Without Chromium (or the ``playwright`` package) the browser test skips, loudly, saying how to
install it; under ``CI=true`` it fails instead. ``$CHROMIUM`` names another Chromium binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN

SUBMIT = "/nano-banana/images"
REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Resolves once every image has loaded or failed (page.evaluate runs outside the page's CSP).
LOADED = """async () => Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => {
        img.addEventListener("load", done);
        img.addEventListener("error", done);
    })
))"""
INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & "q"'


def _unavailable(reason: str) -> None:
    """Skip loudly (a warning in the summary too), or fail under ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    warnings.warn(f"browser test skipped: {reason}", UserWarning, stacklevel=2)
    pytest.skip(reason)


def _chromium() -> str:
    """Debian's ``chromium`` (``$CHROMIUM`` names another binary)."""
    path = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or "/usr/bin/chromium"
    )
    if not os.path.isfile(path):
        _unavailable(f"no Chromium at {path}: install Debian's with `apt-get install -y chromium`")
    return path


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": "dropped", "prompt": "a lighthouse at dusk"},  # answer dropped: uncertain
        {"id": "refused", "prompt": "a red fox in snow"},  # its task fails
        {"id": "wide", "prompt": "a wide desert panorama", "aspect_ratio": "16:9"},
        {"id": "tall", "prompt": "a tall glass of lemonade", "aspect_ratio": "9:16"},
        {"id": "pair", "prompt": "two teacups, watercolour", "count": 2},
        {"id": "bad", "prompt": "a bad row", "aspect_ratio": "5:1"},  # invalid
        {"id": "inject", "prompt": INJECTION},
        {"prompt": "an origami crane on a desk", "model": "nano-banana-pro"},
    ]
    return rows


OUT_NAME = "my \"out\" 'folder' #1"  # relative to tmp_path, where the batch runs


def _run_batch(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    sim.inject_fault("drop", path=SUBMIT)  # the first submission runs, its answer is lost
    sim.fail_next_tasks(2)  # the dropped one's task, then "refused"
    env = dict(os.environ, ACEDATACLOUD_API_TOKEN=SIM_TOKEN, ACEDATACLOUD_API_BASE_URL=sim.base_url)
    argv = [sys.executable, "-m", "langchain_nanobanana", "batch", "rows.jsonl", "--out", OUT_NAME]
    done = subprocess.run(
        [*argv, "--report", "--skip-invalid", "--concurrency", "1", "--poll-interval", "0.05"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    return tmp_path / OUT_NAME, done


def _manifest(out: Path) -> list[dict[str, Any]]:
    text = (out / "manifest.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_batch_report_writes_the_page_and_the_request_fields(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    out, done = _run_batch(sim, tmp_path)
    assert done.returncode == 4, done.stderr  # an uncertain row wins over failed and invalid
    manifest_path, report_path = done.stdout.splitlines()
    assert manifest_path.endswith("manifest.jsonl")
    assert report_path == os.path.join(OUT_NAME, "report.html")  # as the user gave --out
    lines = {line["id"]: line for line in _manifest(out)}
    assert lines["dropped"]["status"] == "uncertain"
    assert lines["refused"]["status"] == "failed"
    assert lines["bad"]["status"] == "invalid"
    # every row that ran carries its request beside the line_record keys
    assert lines["wide"]["prompt"] == "a wide desert panorama"
    assert lines["wide"]["aspect_ratio"] == "16:9" and lines["wide"]["line"] == 3
    assert lines["inject"]["prompt"] == INJECTION
    crane = next(v for k, v in lines.items() if k.startswith("auto-"))
    assert crane["model"] == "nano-banana-pro" and crane["action"] == "generate"
    assert lines["pair"]["count"] == 2 and len(lines["pair"]["files"]) == 2
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page


def test_report_page_in_headless_chromium(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: pip install -e '.[test]'")
    out, done = _run_batch(sim, tmp_path)
    assert done.returncode == 4, done.stderr
    lines = _manifest(out)
    images = sum(len(line["files"]) for line in lines)
    statuses = [line["status"] for line in lines]
    assert images >= 6 and {"failed", "uncertain", "invalid"} <= set(statuses)
    shot = tmp_path / "report.png"
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")

            rows = page.locator("#rows tbody tr")
            visible = page.locator("#rows tbody tr:not([hidden])")
            assert rows.count() == len(lines)
            assert visible.count() == len(lines)
            # problem rows first
            first = [rows.nth(i).get_attribute("data-status") for i in range(3)]
            assert set(first) == {"failed", "uncertain", "invalid"}
            box = rows.first.locator("td.prompt").bounding_box()
            assert box is not None and box["width"] > 200  # the layout leaves room for prompts
            counts = page.locator("p.counts").inner_text()
            assert f"{len(lines)} row(s)" in counts and "failed 1" in counts.replace("\n", " ")

            # every thumbnail decodes
            thumbs = page.locator("#rows img")
            assert thumbs.count() == images
            for i in range(images):
                thumbs.nth(i).scroll_into_view_if_needed()
            page.evaluate(LOADED)  # (wait_for_function would need eval: the page's CSP forbids it)
            widths = page.eval_on_selector_all("#rows img", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == images and all(w > 0 for w in widths), widths
            page.evaluate("window.scrollTo(0, 0)")

            # the status filter hides rows
            page.select_option("#status", "failed")
            assert visible.count() == statuses.count("failed") < len(lines)
            assert visible.first.get_attribute("data-status") == "failed"
            page.select_option("#status", "attention")
            assert visible.count() == sum(s != "succeeded" for s in statuses)
            page.select_option("#status", "")
            assert visible.count() == len(lines)

            # the text search hides rows (words in any order, any case)
            page.fill("#q", "LEMONADE glass")
            assert visible.count() == 1
            assert "a tall glass of lemonade" in visible.first.inner_text()
            page.fill("#q", "")
            assert visible.count() == len(lines)

            # a status badge at the top filters too
            page.locator("button[data-status=uncertain]").click()
            assert visible.count() == 1
            page.locator("button[data-status=uncertain]").click()
            assert visible.count() == len(lines)

            # the prompt's HTML is text, not markup
            assert page.evaluate("window.__pwned") is None
            assert INJECTION in page.locator("#rows").inner_text()

            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert problems == []
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "images" / "report.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
