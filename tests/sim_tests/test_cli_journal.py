"""``nanobanana`` with its journal: a PostgreSQL URL for ``--journal``, a journal of another API
host (exit 3 before any request), ``journal list`` escaping, ``journal forget --force``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana.cli import main
from langchain_nanobanana.journal import Journal
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN

SUBMIT = "/nano-banana/images"
FAST = ["--poll-interval", "0.05"]


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"r{i}", "prompt": f"p{i}"}) + "\n" for i in range(n))
    )
    return path


def test_journal_of_another_host_exits_3_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = str(tmp_path / "runs.sqlite")
    file = rows(tmp_path / "rows.jsonl", 2)
    with (
        FakeNanoBananaServer(token=SIM_TOKEN) as first,
        FakeNanoBananaServer(token=SIM_TOKEN) as second,
    ):
        code, _, err = run(
            capsys,
            "batch",
            str(file),
            "--journal",
            journal,
            "--out",
            str(tmp_path / "a"),
            "--base-url",
            first.base_url,
            *FAST,
        )
        assert code == 0, err
        code, _, err = run(
            capsys,
            "batch",
            str(file),
            "--journal",
            journal,
            "--out",
            str(tmp_path / "b"),
            "--base-url",
            second.base_url,
            *FAST,
        )
        assert code == 3, err
        assert first.base_url.split("//")[1] in err and second.base_url.split("//")[1] in err
        assert second.requests == []


def test_journal_list_escapes_tabs_and_newlines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.sqlite"
    scope = "https://api.acedata.cloud"
    with Journal(path) as journal:
        journal.begin(scope, "evil\tuncertain\tt-forged\nsecond", "a" * 64)
        journal.submitted(scope, "evil\tuncertain\tt-forged\nsecond", "t\n1")
    code, out, err = run(capsys, "journal", "list", "--journal", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].split("\t")[:3] == [
        "evil\\tuncertain\\tt-forged\\nsecond",
        "submitted",
        "t\\n1",
    ]


def test_journal_forget_of_a_paid_key_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.sqlite"
    scope = "https://api.acedata.cloud"
    with Journal(path) as journal:
        journal.begin(scope, "k", "a" * 64)
        journal.submitted(scope, "k", "t-paid")
    code, _, err = run(capsys, "journal", "forget", "k", "--journal", str(path))
    assert code == 2 and "t-paid" in err and "--force" in err
    code, _, err = run(capsys, "journal", "forget", "k", "--force", "--journal", str(path))
    assert code == 0 and "t-paid" in err


@pytest.mark.postgres
def test_batch_with_a_postgres_journal_resumes_without_paying_again(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = rows(tmp_path / "rows.jsonl", 5)
    with FakeNanoBananaServer(token=SIM_TOKEN) as sim:
        common: list[Any] = ["--journal", pg_url, "--base-url", sim.base_url, *FAST]
        code, _, err = run(capsys, "batch", str(file), "--out", str(tmp_path / "a"), *common)
        assert code == 0, err
        code, _, err = run(capsys, "batch", str(file), "--out", str(tmp_path / "b"), *common)
        assert code == 0, err
        assert len(sim.requests_to(SUBMIT)) == 5
        code, out, err = run(capsys, "journal", "list", "--journal", pg_url)
        assert code == 0 and len(out.splitlines()) == 5 and "password" not in out
