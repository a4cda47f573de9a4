"""The command line a user expects (standard input, short options, ``--no-wait``/``wait``,
``--callback-url``, ``models``, ``completion``, help on every option, a light start, CSV dialects,
CLI wording, paths as given), against the simulator over real HTTP.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana._cli.parser import MAX_CONCURRENCY, build_parser, iter_parsers
from langchain_nanobanana._request import build_request
from langchain_nanobanana.cli import main
from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.journal import Journal, request_identity
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN, json_bodies
from tests.images import make_png as png_bytes
from tests.sim_tests.test_cli import FAST, SUBMIT, Run, manifest, submissions, write_jsonl


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    sim: FakeNanoBananaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """``main([...])`` against ``sim``; ``stdin=`` feeds standard input (bytes)."""
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)

    def run(*argv: str, stdin: bytes | None = None, base: bool = True) -> Run:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main([*argv, "--base-url", sim.base_url] if base else list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


# -- standard input --------------------------------------------------------------------------


def test_generate_dash_reads_the_prompt_from_stdin(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    run = cli("generate", "-", "-o", str(tmp_path / "o"), *FAST, stdin=b"  a red fox\n\n")
    assert run.code == 0, run.err
    assert [b["prompt"] for b in json_bodies(sim, SUBMIT)] == ["a red fox"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"  \n\t\n", "empty"),
        (b"-\n", "just '-'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (b"abc\x00def\x01", "binary"),
    ],
)
def test_generate_bad_stdin_exit_2_nothing_sent(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path, data: bytes, says: str
) -> None:
    run = cli("generate", "-", "-o", str(tmp_path / "o"), *FAST, stdin=data)
    assert run.code == 2, run.err
    assert says in run.err and "nothing was sent" in run.err
    assert submissions(sim) == 0


def test_edit_dash_reads_one_image_from_stdin(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    run = cli("edit", "make it red", "-", "-o", str(tmp_path), *FAST, stdin=png_bytes())
    assert run.code == 0, run.err
    (body,) = json_bodies(sim, SUBMIT)
    assert body["image_urls"][0].startswith("data:image/png;base64,")
    bad = cli("edit", "make it red", "-", "-o", str(tmp_path), *FAST, stdin=b"not an image")
    assert bad.code == 2 and submissions(sim) == 1


def test_batch_dash_reads_jsonl_or_csv_from_stdin(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    rows = b'{"prompt": "a", "id": "r1"}\n{"prompt": "b", "id": "r2"}\n'
    run = cli("batch", "-", "-o", str(tmp_path / "j"), "--json", *FAST, stdin=rows)
    assert run.code == 0, run.err
    assert {line["id"] for line in run.lines} == {"r1", "r2"}
    csv_rows = b"id,prompt\nc1,a cat\n"
    run = cli("batch", "-", "--format", "csv", "-o", str(tmp_path / "c"), *FAST, stdin=csv_rows)
    assert run.code == 0, run.err
    assert manifest(tmp_path / "c")["c1"]["status"] == "succeeded"
    assert submissions(sim) == 3


# -- short options, -i, --callback-url -----------------------------------------------------------


def test_short_options_as_the_vendor_cli(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    argv = ["-m", "nano-banana-pro", "-a", "16:9", "-r", "4K", "-n", "2", "-o", str(tmp_path)]
    run = cli("generate", "Product photo of a watch", *argv, *FAST)
    assert run.code == 0, run.err
    (body,) = json_bodies(sim, SUBMIT)
    assert (body["model"], body["aspect_ratio"], body["resolution"], body["count"]) == (
        "nano-banana-pro",
        "16:9",
        "4K",
        2,
    )
    assert len(run.out.split()) == 2


def test_edit_takes_repeated_i_beside_positional_images(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes())
    (tmp_path / "b.png").write_bytes(png_bytes(5, 5))
    url = "https://example.com/x.png"
    run = cli(
        "edit", "merge", str(tmp_path / "a.png"), "-i", str(tmp_path / "b.png"), "-i", url, *FAST
    )
    assert run.code == 0, run.err
    (body,) = json_bodies(sim, SUBMIT)
    assert len(body["image_urls"]) == 3 and body["image_urls"][2] == url


def test_i_on_generate_is_a_clear_usage_error(cli: Any, sim: FakeNanoBananaServer) -> None:
    run = cli("generate", "a cat", "-i", "x.png")
    assert run.code == 2 and "nanobanana edit" in run.err
    assert submissions(sim) == 0


def test_callback_url_is_sent_and_validated(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    run = cli("generate", "a cat", "--callback-url", "https://example.com/hook", "--json")
    assert run.code == 0, run.err
    assert json_bodies(sim, SUBMIT)[0]["callback_url"] == "https://example.com/hook"
    assert run.lines[0]["status"] == "pending" and run.lines[0]["task_id"]
    bad = cli("generate", "a cat", "--callback-url", "ftp://example.com/hook")
    assert bad.code == 2 and "callback_url" in bad.err and submissions(sim) == 1


# -- --no-wait and wait ----------------------------------------------------------------------------


def test_no_wait_then_wait_by_key_and_by_task_id(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sim.task_duration = 0.3
    run = cli("generate", "a logo", "--key", "logo-1", "--async")
    assert run.code == 0, run.err
    task_id = run.out.strip()
    with Journal(tmp_path / "out" / "journal.sqlite") as journal:
        (entry,) = journal.entries()
    assert (entry.key, entry.state, entry.task_id) == ("logo-1", "submitted", task_id)
    assert not list((tmp_path / "out").glob("*.png"))  # nothing downloaded, nothing waited
    waited = cli("wait", "--key", "logo-1", *FAST)
    assert waited.code == 0, waited.err
    assert waited.out.split() == ["out/logo-1.png"]  # the path as given: relative stays relative
    assert (tmp_path / "out" / "logo-1.png").is_file()
    again = cli("generate", "a fox", "--no-wait", "--json")
    (line,) = again.lines
    assert line["status"] == "pending" and line["files"] == [] and line["task_id"]
    by_id = cli("wait", line["task_id"], "--no-download", *FAST)
    assert by_id.code == 0 and by_id.out.strip().startswith("http")
    assert submissions(sim) == 2


def test_no_wait_with_out_downloads_is_refused(cli: Any, sim: FakeNanoBananaServer) -> None:
    run = cli("generate", "a cat", "--no-wait", "-o", "shots")
    assert run.code == 2 and "--no-wait" in run.err and submissions(sim) == 0


def test_batch_no_wait_records_pending_then_rerun_collects(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"prompt": f"p{i}", "id": f"k{i}"} for i in range(3)]
    )
    out = tmp_path / "o"
    run = cli("batch", str(path), "-o", str(out), "--no-wait", "--json", *FAST)
    assert run.code == 0, run.err
    assert {line["status"] for line in run.lines} == {"pending"}
    assert all(line["task_id"] for line in run.lines)
    done = cli("batch", str(path), "-o", str(out), "--json", *FAST)
    assert done.code == 0 and {line["status"] for line in done.lines} == {"succeeded"}
    assert submissions(sim) == 3


# -- models, completion, help, start -------------------------------------------------------------


def test_models_lists_resolutions_and_aspect_ratios(cli: Any) -> None:
    run = cli("models", "--json", base=False)
    assert run.code == 0
    models = {line["name"]: line for line in run.lines}
    assert models["nano-banana"]["resolutions"] == ["1K"] and models["nano-banana"]["default"]
    assert models["nano-banana-pro"]["resolutions"] == ["1K", "2K", "4K"]
    assert "16:9" in models["nano-banana-2"]["aspect_ratios"]
    table = cli("models", base=False)
    assert "nano-banana-pro" in table.out and "4K" in table.out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_generated(cli: Any, shell: str) -> None:
    pytest.importorskip("shtab")
    run = cli("completion", shell, base=False)
    assert run.code == 0, run.err
    for word in ("nanobanana", "generate", "batch", "--aspect-ratio", "16:9"):
        assert word in run.out, (shell, word)


def test_completion_without_shtab_says_what_to_install(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "shtab", None)
    run = cli("completion", "bash", base=False)
    assert run.code == 2 and "pip install" in run.err and "completion" in run.err


def test_every_option_has_help_and_every_command_examples() -> None:
    empty = [
        f"{prog}: {action.option_strings or action.dest}"
        for prog, parser in iter_parsers(build_parser())
        for action in parser._actions
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert not empty
    for prog, parser in iter_parsers(build_parser()):
        if prog != "nanobanana":  # every subcommand, journal's actions included
            assert "examples:" in (parser.epilog or ""), prog


def test_simulate_and_journal_show_only_their_own_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["simulate", "--help"], ["journal", "--help"], ["journal", "list", "--help"]):
        assert main(argv) == 0
        text = capsys.readouterr().out
        assert "--token-env" not in text and "exit codes" not in text, argv
        assert "--base-url URL" not in text, argv  # (an example may use it)
    assert main(["simulate", "--help"]) == 0
    assert "seconds each simulated task runs" in capsys.readouterr().out


def test_help_start_imports_no_langchain_core_pydantic_or_requests() -> None:
    probe = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from langchain_nanobanana.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["--help"]) == 0
        heavy = {"langchain_core", "pydantic", "requests", "urllib3"}
        print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_concurrency_has_a_clear_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "f.jsonl", "--concurrency", "100000"]) == 2
    assert f"from 1 to {MAX_CONCURRENCY}" in capsys.readouterr().err


def test_exit_codes_in_help_include_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "130" in text and "143" in text and "SIGTERM" in text


# -- CSV dialects, wording, escaping -------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["ID,Prompt\nr1,a cat\n", "id;prompt;Aspect_Ratio\nr1;a cat;16:9\n", "Id\tPROMPT\nr1\ta cat\n"],
)
def test_csv_headers_any_case_and_delimiters(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(content, encoding="utf-8")
    run = cli("batch", str(path), "-o", str(tmp_path / "o"), *FAST)
    assert run.code == 0, run.err
    assert manifest(tmp_path / "o")["r1"]["status"] == "succeeded"
    assert json_bodies(sim, SUBMIT)[0]["prompt"] == "a cat"


def test_csv_unclosed_quote_exit_2_nothing_sent(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('id,prompt\nr1,"a cat\nr2,a dog\nr3,a bird\n', encoding="utf-8")
    run = cli("batch", str(path), "-o", str(tmp_path / "o"), *FAST)
    assert run.code == 2 and "never closed" in run.err
    assert submissions(sim) == 0


def test_messages_name_cli_options_not_python_parameters(
    cli: Any, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    out.mkdir()
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a", "id": "u1"}])
    with Journal(out / "journal.sqlite") as journal:  # an uncertain key: reserved, owner gone
        scope = NanoBananaClient("t", base_url=sim.base_url).base_url
        identity = request_identity(build_request("generate", "a").to_payload())
        journal.begin(scope, "u1", identity)
        journal.interrupted(scope, "u1")
    run = cli("batch", str(path), "-o", str(out), "--json", *FAST)
    assert run.code == 4, run.err
    message = run.lines[0]["error"]["message"]
    assert "--resubmit-uncertain" in message and "resubmit_uncertain=True" not in message
    assert "resubmit_uncertain=True" not in run.err


def test_task_output_escapes_tabs_and_newlines(cli: Any) -> None:
    run = cli("task", "evil\tsucceeded\tforged\nrow")
    assert run.code == 1
    (line,) = run.out.splitlines()
    assert line.split("\t") == ["evil\\tsucceeded\\tforged\\nrow", "unknown", "no such task"]
