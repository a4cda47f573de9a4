"""The ``nanobanana`` command line against the simulator: every subcommand and its output, the
exit codes 0/1/2/3/4/130, row validation before any request, resuming, and the journal commands.

Most tests call ``main([...])`` in-process (captured with ``capsys``); a few run
``python -m langchain_nanobanana`` as a subprocess (console entry, SIGINT).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana._cli.common import worst
from langchain_nanobanana.cli import main
from langchain_nanobanana.journal import Journal
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN, json_bodies

SUBMIT = "/nano-banana/images"
FAST = ["--poll-interval", "0.05"]


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG (RGB, one colour)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x10\x80\xf0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    return SIM_TOKEN


class Run:
    """``main(argv)`` with captured output."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], sim: FakeNanoBananaServer, token: str) -> Any:
    def run(*argv: str, base: bool = True) -> Run:
        args = [*argv, "--base-url", sim.base_url] if base else list(argv)
        code = main(args)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def manifest(out: Path) -> dict[str, dict[str, Any]]:
    """The manifest, last line per id."""
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return {line["id"]: line for line in lines}


def submissions(sim: FakeNanoBananaServer) -> int:
    return len(sim.requests_to(SUBMIT))


# -- exit codes ------------------------------------------------------------------------------


def test_exit_code_precedence() -> None:
    assert worst() == 0
    assert worst(0, 1) == 1
    assert worst(1, 4) == 4
    assert worst(4, 2) == 2
    assert worst(2, 3, 4, 1) == 3
    assert worst(3, 130) == 130


def test_help_of_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    for name in ("generate", "edit", "task", "batch", "simulate", "journal", "exit codes"):
        assert name in top
    expected = {
        "generate": ["--key", "--out", "--journal", "--json", "--aspect-ratio"],
        "edit": ["IMAGE", "--key"],
        "task": ["--wait", "ID"],
        "batch": ["--concurrency", "--skip-invalid", "--resubmit-uncertain", "--no-download"],
        "simulate": ["--port", "--path-prefix", "--token"],
        "journal": ["list", "resolve", "forget"],
    }
    for name, options in expected.items():
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        for option in options:
            assert option in text, (name, option)
    assert main(["journal", "resolve", "--help"]) == 0
    assert "--task-id" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["generate"]) == 2
    assert main(["generate", "x", "--aspect-ratio", "5:4"]) == 2
    assert main(["batch", "f.jsonl", "--concurrency", "0"]) == 2
    capsys.readouterr()
    # a token on the command line is not an option at all
    assert main(["generate", "x", "--token", "secret"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


# -- generate / edit -------------------------------------------------------------------------


def test_generate_prints_paths(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    run = cli("generate", "a red fox", "--out", str(tmp_path / "o"), "-vv", *FAST)
    assert run.code == 0, run.err
    assert "DEBUG: poll round" in run.err and SIM_TOKEN not in run.out + run.err
    paths = run.out.split()
    assert len(paths) == 1 and Path(paths[0]).is_file()
    assert Path(paths[0]).read_bytes().startswith(b"\x89PNG")
    assert "submitted; waiting" in run.err
    assert json_bodies(sim, SUBMIT)[0]["prompt"] == "a red fox"


def test_generate_json_with_key_resumes(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    args = ["generate", "a fox", "--key", "fox-1", "--out", str(out), "--json", "--count", "2"]
    first = cli(*args, *FAST)
    assert first.code == 0, first.err
    (line,) = first.lines
    assert set(line) == {"id", "task_id", "trace_id", "status", "files", "urls", "error"}
    assert line["id"] == "fox-1" and line["status"] == "succeeded" and line["error"] is None
    assert [Path(f).name for f in line["files"]] == ["fox-1-1.png", "fox-1-2.png"]
    assert len(line["urls"]) == 2
    second = cli(*args, *FAST)
    assert second.code == 0
    assert second.lines == [line]
    assert submissions(sim) == 1  # the journal answered
    assert "already succeeded" in second.err
    assert sorted(p.name for p in out.iterdir()) == [
        "fox-1-1.png",
        "fox-1-2.png",
        "journal.sqlite",
        "journal.sqlite-shm",
        "journal.sqlite-wal",
    ] or {"fox-1-1.png", "fox-1-2.png", "journal.sqlite"} <= {p.name for p in out.iterdir()}
    # the same key for another prompt: refused, nothing sent (exit 2)
    other = cli("generate", "a wolf", "--key", "fox-1", "--out", str(out), *FAST)
    assert other.code == 2
    assert "already names another request" in other.err
    assert submissions(sim) == 1


def test_generate_no_download_prints_urls(cli: Any, tmp_path: Path) -> None:
    run = cli("generate", "a fox", "--no-download", "--out", str(tmp_path / "o"), *FAST)
    assert run.code == 0
    assert run.out.strip().startswith("http://127.0.0.1")
    assert not (tmp_path / "o").exists()


def test_edit_local_file_and_url(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    local = tmp_path / "in.png"
    local.write_bytes(png())
    url = sim.image_url(64, 64)
    run = cli(
        "edit", "make it blue", str(local), url, "--out", str(tmp_path / "o"), "--json", *FAST
    )
    assert run.code == 0, run.err
    (line,) = run.lines
    assert line["status"] == "succeeded" and Path(line["files"][0]).is_file()
    body = json_bodies(sim, SUBMIT)[0]
    assert body["action"] == "edit"
    assert body["image_urls"][0].startswith("data:image/png;base64,")
    assert body["image_urls"][1] == url


def test_edit_missing_file_exit_2_nothing_sent(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    run = cli("edit", "x", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o"))
    assert run.code == 2
    assert "images" in run.err and "nothing was sent" in run.err
    assert sim.requests == []


def test_generate_failed_task_exit_1(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    sim.fail_next_tasks(1, code="generation_failed", message="no luck")
    run = cli("generate", "a fox", "--out", str(tmp_path / "o"), "--json", *FAST)
    assert run.code == 1
    (line,) = run.lines
    assert line["status"] == "failed"
    assert (
        line["error"]["type"] == "TaskFailedError" and line["error"]["code"] == "generation_failed"
    )
    assert line["task_id"]


def test_generate_uncertain_exit_4(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    sim.inject_fault("500", path=SUBMIT)
    run = cli("generate", "a fox", "--key", "k1", "--out", str(tmp_path / "o"), "--json", *FAST)
    assert run.code == 4, run.err
    assert run.lines[0]["status"] == "uncertain"


# -- authentication / configuration: exit 3 --------------------------------------------------


def test_no_token_exit_3(
    capsys: pytest.CaptureFixture[str], sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a"}])
    assert main(["batch", str(rows), "--base-url", sim.base_url, "--out", str(tmp_path)]) == 3
    assert "ACEDATACLOUD_API_TOKEN" in capsys.readouterr().err
    assert main(["generate", "a", "--base-url", sim.base_url]) == 3
    assert sim.requests == []


def test_wrong_token_exit_3(
    capsys: pytest.CaptureFixture[str],
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_TOKEN", "wrong-token")
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": f"p{i}"} for i in range(3)])
    argv = ["batch", str(rows), "--token-env", "MY_TOKEN", "--out", str(tmp_path / "o")]
    code = main([*argv, "--base-url", sim.base_url, *FAST])
    err = capsys.readouterr().err
    assert code == 3, err
    statuses = {line["status"] for line in manifest(tmp_path / "o").values()}
    assert statuses <= {"failed"}
    assert main(["task", "abc", "--token-env", "MY_TOKEN", "--base-url", sim.base_url]) == 3


def test_bad_base_url_exit_3(capsys: pytest.CaptureFixture[str], token: str) -> None:
    assert main(["generate", "x", "--base-url", "http://user:pw@example.com"]) == 3
    assert "configuration" in capsys.readouterr().err


# -- task ------------------------------------------------------------------------------------


def test_task_statuses_wait_and_unknown(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    sim.task_duration = 0.6
    submitted = cli("generate", "slow fox", "--no-download", "--max-wait", "0.05", *FAST)
    assert submitted.code == 1  # timed out: still pending
    task_id = next(iter(sim.tasks))
    pending = cli("task", task_id)
    assert pending.code == 0
    assert pending.out.split() == [task_id, "pending"]
    waited = cli("task", task_id, "--wait", "--json", "--out", str(tmp_path / "t"), *FAST)
    assert waited.code == 0, waited.err
    (line,) = waited.lines
    assert line["status"] == "succeeded" and Path(line["files"][0]).is_file()
    unknown = cli("task", task_id, "no-such-task", "--json")
    assert unknown.code == 1
    assert [x["status"] for x in unknown.lines] == ["succeeded", "unknown"]


def test_task_failed_exit_1(cli: Any, sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(1, code="generation_failed", message="nope")
    cli("generate", "x", "--no-download", *FAST)
    task_id = next(iter(sim.tasks))
    run = cli("task", task_id)
    assert run.code == 1
    assert "failed" in run.out and "generation_failed" in run.out


# -- batch -----------------------------------------------------------------------------------


def test_batch_jsonl_json_lines_match_manifest(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    rows = [{"prompt": f"fox {i}", "id": f"r{i}"} for i in range(5)]
    rows += [{"prompt": "same"}, {"prompt": "same"}, {"prompt": "wide", "aspect_ratio": "16:9"}]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out"
    run = cli("batch", str(path), "--out", str(out), "--json", "--concurrency", "3", *FAST)
    assert run.code == 0, run.err
    assert len(run.lines) == 8
    assert {line["id"]: line for line in run.lines} == manifest(out)
    assert all(line["status"] == "succeeded" and len(line["files"]) == 1 for line in run.lines)
    auto = [line["id"] for line in run.lines if line["id"].startswith("auto-")]
    assert len(auto) == 3 and len(set(auto)) == 3
    assert sum(a.endswith("-2") for a in auto) == 1  # the second identical row
    assert submissions(sim) == 8
    assert "8 row(s): 8 succeeded" in run.err
    bodies = json_bodies(sim, SUBMIT)
    assert sorted(b["prompt"] for b in bodies).count("same") == 2


def test_batch_defaults_and_plain_output(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a"}, {"prompt": "b", "model": None}])
    out = tmp_path / "o"
    run = cli("batch", str(path), "--out", str(out), "--aspect-ratio", "3:2", "--count", "2", *FAST)
    assert run.code == 0
    assert run.out.strip() == str((out / "manifest.jsonl").absolute())
    assert {b["aspect_ratio"] for b in json_bodies(sim, SUBMIT)} == {"3:2"}
    assert {b["count"] for b in json_bodies(sim, SUBMIT)} == {2}
    assert "nanobanana: 2/2 done" in run.err  # plain progress lines (stderr is not a tty)


def test_batch_resume_sends_nothing(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": f"p{i}"} for i in range(6)])
    out = tmp_path / "o"
    first = cli("batch", str(path), "--out", str(out), *FAST)
    assert first.code == 0
    files = sorted(p.name for p in out.glob("*.png"))
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(files) == 6
    before = len(sim.requests)
    second = cli("batch", str(path), "--out", str(out), "--json", *FAST)
    assert second.code == 0
    assert len(sim.requests) == before  # no submission, no poll, no download
    assert sorted(p.name for p in out.glob("*.png")) == files
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes
    assert {line["status"] for line in second.lines} == {"succeeded"}
    # a deleted image is downloaded again, still without a submission
    victim = next(iter(mtimes))
    victim.unlink()
    third = cli("batch", str(path), "--out", str(out), *FAST)
    assert third.code == 0
    assert submissions(sim) == 6
    assert len(list(out.glob("*.png"))) == 6


def test_batch_resume_polls_submitted_rows(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    sim.task_duration = 0.8
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"prompt": f"p{i}", "id": f"k{i}"} for i in range(3)]
    )
    out = tmp_path / "o"
    first = cli("batch", str(path), "--out", str(out), "--max-wait", "0.1", *FAST)
    assert first.code == 1  # timed out: pending
    assert {line["status"] for line in manifest(out).values()} == {"pending"}
    assert all(line["task_id"] for line in manifest(out).values())
    second = cli("batch", str(path), "--out", str(out), *FAST)
    assert second.code == 0, second.err
    assert submissions(sim) == 3
    assert {line["status"] for line in manifest(out).values()} == {"succeeded"}


def test_batch_csv_images_relative_to_input_file(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "imgs").mkdir(parents=True)
    (data / "imgs" / "a.png").write_bytes(png(5, 5))
    (data / "b.png").write_bytes(png(6, 6))
    url = sim.image_url(32, 32)
    path = data / "rows.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt", "images", "count"])
        writer.writerow(["e1", "make it blue", f"imgs/a.png  {url}", "1"])
        writer.writerow(["e2", "make it red", "b.png", ""])
        writer.writerow(["g1", "a new fox", "", "2"])
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the file, not to the working directory
    run = cli("batch", str(path), "--out", str(tmp_path / "o"), "--json", *FAST)
    assert run.code == 0, run.err
    bodies = {b["prompt"]: b for b in json_bodies(sim, SUBMIT)}
    assert bodies["make it blue"]["action"] == "edit"
    assert bodies["make it blue"]["image_urls"][0].startswith("data:image/png;base64,")
    assert bodies["make it blue"]["image_urls"][1] == url
    assert len(bodies["make it red"]["image_urls"]) == 1
    assert bodies["a new fox"]["action"] == "generate" and bodies["a new fox"]["count"] == 2
    assert {line["id"]: len(line["files"]) for line in run.lines} == {"e1": 1, "e2": 1, "g1": 2}


@pytest.mark.parametrize(
    ("name", "content", "line", "field"),
    [
        ("rows.csv", "prompt,aspect_ratio\na,1:1\nb,5:4\n", 3, "aspect_ratio"),
        ("rows.csv", "prompt,count\na,1\nb,two\n", 3, "count"),
        ("rows.csv", "prompt,model\na,nano-banana-pro2\n", 2, "model"),
        ("rows.csv", "prompt,images\na,missing.png\n", 2, "images"),
        ("rows.csv", "prompt,resolution\na,4K\n", 2, "resolution"),
        ("rows.jsonl", '{"prompt": "a"}\n{"prompt": "b", "count": 9}\n', 2, "count"),
        ("rows.jsonl", '{"prompt": "a"}\n\n{"prompt": ""}\n', 3, "prompt"),
        ("rows.jsonl", '{"prompt": "a"}\n{"promt": "b"}\n', 2, "row"),
        ("rows.jsonl", '{"prompt": "a"}\nnot json\n', 2, "row"),
        ("rows.jsonl", '{"prompt": "a", "id": "x"}\n{"prompt": "b", "id": "x"}\n', 2, "id"),
        (
            "rows.jsonl",
            '{"prompt": "a", "action": "generate", "images": ["http://h/x.png"]}\n',
            1,
            "images",
        ),
    ],
)
def test_batch_bad_rows_exit_2_nothing_sent(
    cli: Any,
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    name: str,
    content: str,
    line: int,
    field: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    run = cli("batch", str(path), "--out", str(tmp_path / "o"), *FAST)
    assert run.code == 2, run.err
    assert f"{path}:{line}: {field}" in run.err
    assert "nothing was sent" in run.err
    assert sim.requests == []
    assert not (tmp_path / "o").exists()


def test_batch_bad_files_exit_2(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    cases = {
        "rows.txt": "prompt\na\n",
        "nohead.csv": "text\na\n",
        "empty.jsonl": "",
    }
    for name, content in cases.items():
        (tmp_path / name).write_text(content)
        run = cli("batch", str(tmp_path / name), "--out", str(tmp_path / "o"))
        assert run.code == 2, (name, run.err)
    assert cli("batch", str(tmp_path / "absent.jsonl")).code == 2
    assert sim.requests == []


def test_batch_skip_invalid(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"prompt": "ok", "id": "a"},
        {"prompt": "bad", "id": "b", "count": 0},
        {"prompt": "x", "aspect_ratio": "2:1"},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "o"
    run = cli("batch", str(path), "--out", str(out), "--skip-invalid", "--json", *FAST)
    assert run.code == 1, run.err
    lines = manifest(out)
    assert lines["a"]["status"] == "succeeded"
    assert lines["b"]["status"] == "invalid" and "count" in lines["b"]["error"]["message"]
    assert lines["line-3"]["status"] == "invalid"
    assert "line 3: aspect_ratio" in lines["line-3"]["error"]["message"]
    assert submissions(sim) == 1
    assert len(run.lines) == 3


def test_batch_unwritable_out_exit_2(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a"}])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = cli("batch", str(path), "--out", str(blocker / "out"))
    assert run.code == 2
    assert "not a writable folder" in run.err
    assert sim.requests == []
    run = cli("generate", "a", "--out", str(blocker / "out"))
    assert run.code == 2 and sim.requests == []


def test_batch_out_dir_in_use_exit_2(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a"}])
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".nanobanana-abc.part"
    stale.write_bytes(b"half an image")
    with (out / ".nanobanana.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another batch runs on this folder
        run = cli("batch", str(path), "--out", str(out))
        assert run.code == 2 and "in use by another nanobanana process" in run.err
        assert sim.requests == [] and stale.exists()
    run = cli("batch", str(path), "--out", str(out), *FAST)
    assert run.code == 0
    assert not stale.exists()  # left by a killed download: removed under the lock


def test_batch_corrupted_journal_exit_2(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a"}])
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    run = cli("batch", str(path), "--journal", str(garbage), "--out", str(tmp_path / "o"))
    assert run.code == 2
    assert "journal" in run.err and "nothing was sent" in run.err.lower()
    # another schema version
    old = tmp_path / "old.sqlite"
    Journal(old).close()
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    run = cli("batch", str(path), "--journal", str(old), "--out", str(tmp_path / "o"))
    assert run.code == 2
    assert "schema version 99" in run.err
    # another SQLite database
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert cli("batch", str(path), "--journal", str(foreign)).code == 2
    assert sim.requests == []


def test_batch_key_of_another_request_exit_2(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    first = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "cat", "id": "k"}])
    assert cli("batch", str(first), "--out", str(out), *FAST).code == 0
    second = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "dog", "id": "k"}])
    run = cli("batch", str(second), "--out", str(out), *FAST)
    assert run.code == 2
    assert "b.jsonl:1: id: key 'k' already names another request" in run.err
    assert submissions(sim) == 1


def test_batch_failed_rows_exit_1_and_retry_failed(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "only", "id": "k"}])
    out = tmp_path / "o"
    sim.fail_next_tasks(1)
    run = cli("batch", str(path), "--out", str(out), *FAST)
    assert run.code == 1
    assert manifest(out)["k"]["status"] == "failed"
    again = cli("batch", str(path), "--out", str(out), *FAST)
    assert again.code == 1 and submissions(sim) == 1  # the failure is recorded: no new charge
    retried = cli("batch", str(path), "--out", str(out), "--retry-failed", *FAST)
    assert retried.code == 0 and submissions(sim) == 2
    assert manifest(out)["k"]["status"] == "succeeded"


def test_batch_uncertain_exit_4_then_resolve(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    rows = [{"prompt": f"p{i}", "id": f"k{i}"} for i in range(3)]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "o"
    sim.inject_fault("drop", path=SUBMIT)  # the first submission runs, its answer is lost
    run = cli("batch", str(path), "--out", str(out), "--concurrency", "1", *FAST)
    assert run.code == 4, run.err
    lines = manifest(out)
    (uncertain,) = [k for k, line in lines.items() if line["status"] == "uncertain"]
    assert "journal resolve" in run.err
    # a re-run does not resubmit it
    again = cli("batch", str(path), "--out", str(out), *FAST)
    assert again.code == 4 and submissions(sim) == 3  # the dropped one included: nothing new
    listed = cli("journal", "list", "--journal", str(out / "journal.sqlite"), base=False)
    assert listed.code == 0
    assert f"{uncertain}\tuncertain\t-" in listed.out
    prompt = next(r["prompt"] for r in rows if r["id"] == uncertain)
    (task_id,) = [t for t, rec in sim.tasks.items() if rec["request"]["prompt"] == prompt]
    resolved = cli(
        "journal",
        "resolve",
        uncertain,
        "--task-id",
        task_id,
        "--journal",
        str(out / "journal.sqlite"),
    )
    assert resolved.code == 0, resolved.err
    final = cli("batch", str(path), "--out", str(out), "--json", *FAST)
    assert final.code == 0, final.err
    assert submissions(sim) == 3
    assert manifest(out)[uncertain]["task_id"] == task_id
    assert manifest(out)[uncertain]["status"] == "succeeded"


def test_batch_resubmit_uncertain(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "p", "id": "k"}])
    out = tmp_path / "o"
    sim.inject_fault("500", path=SUBMIT)
    assert cli("batch", str(path), "--out", str(out), *FAST).code == 4
    run = cli("batch", str(path), "--out", str(out), "--resubmit-uncertain", *FAST)
    assert run.code == 0
    assert submissions(sim) == 2


def test_batch_no_download(cli: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "p", "id": "k"}])
    out = tmp_path / "o"
    run = cli("batch", str(path), "--out", str(out), "--no-download", "--json", *FAST)
    assert run.code == 0
    (line,) = run.lines
    assert line["files"] == [] and len(line["urls"]) == 1
    assert list(out.glob("*.png")) == []


# -- journal ---------------------------------------------------------------------------------


def test_journal_commands(cli: Any, sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    out = tmp_path / "o"
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "p", "id": "k"}])
    assert cli("batch", str(path), "--out", str(out), *FAST).code == 0
    journal = str(out / "journal.sqlite")
    listed = cli("journal", "list", "--journal", journal, "--json", base=False)
    (entry,) = listed.lines
    assert entry["key"] == "k" and entry["status"] == "succeeded" and entry["scope"] == sim.base_url
    assert cli("journal", "resolve", "k", "--task-id", "x", "--journal", journal).code == 2
    forgot = cli("journal", "forget", "k", "--journal", journal, base=False)
    assert forgot.code == 0 and "forgotten" in forgot.err
    assert cli("journal", "forget", "k", "--journal", journal).code == 1
    assert cli("journal", "list", "--journal", str(tmp_path / "none.sqlite")).code == 2
    assert not (tmp_path / "none.sqlite").exists()
    # forgotten: the next run submits again
    assert cli("batch", str(path), "--out", str(out), *FAST).code == 0
    assert submissions(sim) == 2


# -- subprocesses ----------------------------------------------------------------------------


def _sigint_default() -> None:
    """In the child before exec: SIGINT back to its default disposition (a shell that runs the
    suite in the background starts it ignored, and Python then never raises KeyboardInterrupt).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ACEDATACLOUD_API_TOKEN"] = SIM_TOKEN
    env.pop("ACEDATACLOUD_API_BASE_URL", None)
    return env


def test_module_entry_point_runs_a_batch(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": f"p{i}"} for i in range(4)])
    out = tmp_path / "o"
    argv = [sys.executable, "-m", "langchain_nanobanana", "batch", str(path), "--out", str(out)]
    done = subprocess.run(
        [*argv, "--base-url", sim.base_url, "--json", *FAST],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(lines) == 4 and {x["status"] for x in lines} == {"succeeded"}
    assert "4 row(s): 4 succeeded" in done.stderr
    assert SIM_TOKEN not in done.stdout + done.stderr


def test_sigint_records_what_is_in_flight(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    sim.submit_latency = 1.0  # every submission is in flight for a second
    sim.task_duration = 30.0
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"prompt": f"p{i}", "id": f"k{i}"} for i in range(40)]
    )
    out = tmp_path / "o"
    argv = [sys.executable, "-m", "langchain_nanobanana", "batch", str(path), "--out", str(out)]
    proc = subprocess.Popen(
        [*argv, "--base-url", sim.base_url, "--concurrency", "4", *FAST],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    deadline = time.monotonic() + 20
    while len(sim.requests_to(SUBMIT)) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # some answered (pending), some in flight
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    lines = manifest(out)
    statuses = {line["status"] for line in lines.values()}
    assert statuses <= {"pending", "uncertain", "succeeded"}
    assert "pending" in statuses
    assert all(line["task_id"] for line in lines.values() if line["status"] == "pending")
    assert sum(line["status"] == "uncertain" for line in lines.values()) <= 4  # --concurrency
    # the journal agrees: every submitted row has a task or is uncertain, none is lost
    with Journal(out / "journal.sqlite") as journal:
        entries = {e.key: e for e in journal.entries()}
    assert set(lines) <= set(entries)
    for key, line in lines.items():
        expected = "reserved" if line["status"] == "uncertain" else "submitted"
        assert entries[key].state == expected


def test_simulate_subcommand_serves_and_prints_its_url(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_nanobanana", "simulate", "--port", "0", "--token", "t0k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Nano Banana simulator listening on http://127.0.0.1:")
        url = first.split()[-1]
        env = {**_env(), "ACEDATACLOUD_API_TOKEN": "t0k"}
        argv = [sys.executable, "-m", "langchain_nanobanana", "generate", "a fox"]
        done = subprocess.run(
            [*argv, "--base-url", url, "--out", str(tmp_path), *FAST],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert Path(done.stdout.strip()).is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
