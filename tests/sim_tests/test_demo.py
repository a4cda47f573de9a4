"""``examples/demo.py`` (what ``make demo`` runs), end to end in a subprocess.

No mocks: the demo starts its own simulator when no token is set, and with a token it talks to
whatever ``ACEDATACLOUD_API_BASE_URL`` names, here this test's simulator on loopback, so the
real-API path is exercised too and every request it makes can be inspected.
"""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from langchain_nanobanana.testing import FakeNanoBananaServer, make_png, png_size
from tests.helpers import SIZES_1K
from tests.helpers import image_size as helpers_image_size

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"
#: Seed 000's example prompt, verbatim (the chain must send exactly this).
VENDOR_PROMPT = (
    "A photorealistic close-up portrait of an elderly Japanese ceramicist with deep, sun-etched "
    "wrinkles and a warm, knowing smile. He is carefully inspecting a freshly glazed tea bowl. "
    "The setting is his rustic, sun-drenched workshop. The scene is illuminated by soft, golden "
    "hour light streaming through a window, highlighting the fine texture of the clay. Captured "
    "with an 85mm portrait lens, resulting in a soft, blurred background (bokeh). The overall "
    "mood is serene and masterful. Vertical portrait orientation."
)
STEPS = ("chain", "agent generate", "agent edit")


def run_demo(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ACEDATACLOUD_") and k != "NANOBANANA_DEMO_CHAT_MODEL"
    }
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def table(stdout: str) -> dict[str, list[str]]:
    """The rows of the printed table, by step: [step, task_id, trace_id, file, size, asked, ok]."""
    after = stdout.split("(c) Saved images", 1)[1]
    rows = [re.split(r"\s{2,}", line.strip()) for line in after.splitlines()]
    return {row[0]: row for row in rows if row and row[0] in STEPS}


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nanobanana_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_token_runs_on_builtin_simulator_into_out(tmp_path: Path) -> None:
    proc = run_demo(tmp_path, "--task-duration", "0.6")

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    backend = proc.stdout.splitlines()[0]
    assert re.fullmatch(
        r"Backend: built-in simulator at http://127\.0\.0\.1:\d+ "
        r"\(no ACEDATACLOUD_API_TOKEN set\)",
        backend,
    )
    assert f"prompt (the vendor's example): {VENDOR_PROMPT}\n" in proc.stdout
    # progress events shown while the chain's task runs, and the round that saw it finish
    for done in ("0/1 done, 1 pending", "1/1 done, 0 pending"):  # the package's ProgressBar
        line = rf"^    polling: {done}, [0-9.]+ s$"
        assert re.search(line, proc.stdout, re.MULTILINE), done
    assert "model -> nano_banana_generate({'prompt': 'a white siamese cat'})" in proc.stdout
    assert "model -> nano_banana_edit({'prompt': 'give the cat a small red bow tie'" in proc.stdout

    pngs = sorted((tmp_path / "out").glob("*.png"))  # the default ./out, relative to cwd
    assert len(pngs) == 3
    rows = table(proc.stdout)
    assert set(rows) == set(STEPS)
    expected = {"chain": (832, 1248), "agent generate": (1024, 1024), "agent edit": (1024, 1024)}
    for step, (width, height) in expected.items():
        _, task_id, trace_id, file, size, _asked, ok = rows[step]
        path = tmp_path / file
        assert path in pngs
        assert task_id in path.name and trace_id and trace_id != "-"
        assert png_size(path.read_bytes()) == (width, height)
        assert size == f"{width} x {height}" and ok == "yes"
    assert rows["chain"][5] == "2:3" and rows["agent edit"][5] == "1:1"
    assert len({rows[s][1] for s in STEPS}) == 3


def test_with_token_uses_the_configured_api_and_sends_the_documented_requests(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    # A provider whose package is not installed: the demo must fall back to the scripted fake.
    spec = "openai:gpt-4.1-mini"
    if importlib.util.find_spec("langchain_openai") is not None:
        spec = "no-such-provider:some-model"
    token = sim.token or ""
    env = {
        "ACEDATACLOUD_API_TOKEN": token,
        "ACEDATACLOUD_API_BASE_URL": sim.base_url,
        "NANOBANANA_DEMO_CHAT_MODEL": spec,
    }
    out = tmp_path / "images"

    proc = run_demo(tmp_path, "--out", str(out), env=env)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"Backend: Nano Banana API at {sim.base_url}"
    assert f"chat model: cannot load {spec!r}" in proc.stdout
    assert "using the scripted tool-calling fake instead" in proc.stdout
    assert token not in proc.stdout + proc.stderr
    assert len(list(out.glob("*.png"))) == 3

    submissions = sim.requests_to("/nano-banana/images")
    assert all(r.headers["authorization"] == f"Bearer {token}" for r in submissions)
    bodies = [r.json for r in submissions]
    assert len(bodies) == 3 and all(isinstance(b, dict) for b in bodies)
    chain, generate, edit = (b for b in bodies if isinstance(b, dict))
    assert chain == {
        "action": "generate",
        "prompt": VENDOR_PROMPT,
        "aspect_ratio": "2:3",
        "async": True,
    }
    assert generate == {"action": "generate", "prompt": "a white siamese cat", "async": True}
    rows = table(proc.stdout)
    generated = sim.tasks[rows["agent generate"][1]]["response"]["data"][0]["image_url"]
    assert edit == {
        "action": "edit",
        "prompt": "give the cat a small red bow tie",
        "image_urls": [generated],
        "async": True,
    }
    assert {rows[s][1] for s in STEPS} == set(sim.tasks)


def test_api_error_exits_1_with_one_line_and_no_token(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    bad_token = "wrong-token-3b1e0d"
    env = {"ACEDATACLOUD_API_TOKEN": bad_token, "ACEDATACLOUD_API_BASE_URL": sim.base_url}

    proc = run_demo(tmp_path, env=env)

    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: AuthenticationError"), proc.stderr
    assert "invalid_token" in lines[0]
    assert bad_token not in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("out/*.png"))


def test_report_rejects_a_misshapen_or_missing_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = load_demo()
    good = [
        demo.Row("chain", "t1", "r1", tmp_path / "a.png", (832, 1248), "2:3"),
        demo.Row("agent generate", "t2", "r2", tmp_path / "b.png", (1024, 1024), "1:1"),
        demo.Row("agent edit", "t3", "r3", tmp_path / "c.png", (1024, 1024), "1:1"),
    ]
    assert demo.report(good) == 0
    assert capsys.readouterr().err == ""

    square_chain = [good[0]._replace(size=(1024, 1024)), *good[1:]]
    assert demo.report(square_chain) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'a.png'} is 1024x1024, expected aspect ratio 2:3" in err

    assert demo.report(good[:2]) == 2
    assert "error: no image from the agent edit" in capsys.readouterr().err


def test_nearest_ratio_and_tolerance_cover_the_documented_sizes() -> None:
    demo = load_demo()
    for ratio, size in SIZES_1K.items():
        assert demo.nearest_ratio(size) == ratio
        row = demo.Row("s", "t", "r", Path("x.png"), size, ratio)
        assert demo.shape_ok(row)
        others = [r for r in SIZES_1K if r != ratio]
        assert not any(demo.shape_ok(row._replace(asked=o)) for o in others)


def _jpeg_header(width: int, height: int) -> bytes:
    """The start of a baseline JPEG: SOI, an APP0 (JFIF) segment, then SOF0 with the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xda"


def test_image_size_reads_png_and_jpeg_headers() -> None:
    demo = load_demo()
    for width, height in [*SIZES_1K.values(), (1, 1), (4096, 4096)]:
        png = make_png(width, height)
        assert demo.image_size(png) == helpers_image_size(png) == (width, height)
        jpeg = _jpeg_header(width, height)
        assert demo.image_size(jpeg) == helpers_image_size(jpeg) == (width, height)
    for junk in (b"", b"GIF89a", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\x00\x00"):
        assert demo.image_size(junk) is None
