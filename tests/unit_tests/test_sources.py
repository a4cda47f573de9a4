"""Sources a reader can follow: the package, README and docs cite the vendor's documents by title
and URL, never this repository's design notes nor the file names of the vendor copies they were
written from (files no user has)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_nanobanana._sources import SOURCES

ROOT = Path(__file__).resolve().parents[2]

#: What a user reads: the package (docstrings, comments, help texts), the README, the changelog,
#: the docs (Markdown and the integration notebook), the examples and the notebooks.
READ_BY_USERS = sorted(
    [
        *(ROOT / "langchain_nanobanana").rglob("*.py"),
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "RELIABILITY.md",
        ROOT / "BENCHMARKS.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "docs").rglob("*.ipynb"),
        *(ROOT / "examples").rglob("*.py"),
        *(ROOT / "notebooks").glob("*.ipynb"),
    ]
)

#: Names only this repository's authors know: the design notes and the vendor-file copies.
INTERNAL = re.compile(r"\bSPEC\b|seed 0\d|seeds? 0\d\d|\bseeds\b|shared/seeds|design[- ]note")


def test_the_files_exist() -> None:
    assert len(READ_BY_USERS) > 20
    assert all(path.exists() for path in READ_BY_USERS)


@pytest.mark.parametrize("path", READ_BY_USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_internal_names(path: Path) -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if INTERNAL.search(line)
    ]
    assert not hits, "cite the vendor's document by title and URL instead:\n" + "\n".join(hits)


def test_every_vendor_document_cited_is_in_the_table_of_sources() -> None:
    """A URL of the vendor's platform in a docstring or doc is one of ``_sources.SOURCES``."""
    known = {source.url for source in SOURCES if source.url}
    cited: set[str] = set()
    for path in READ_BY_USERS:
        cited |= set(
            re.findall(
                r"https://platform\.acedata\.cloud/(?:documents|services)/[0-9a-f-]+",
                path.read_text(encoding="utf-8"),
            )
        )
    assert cited, "no vendor document is cited anywhere"
    assert cited <= known, sorted(cited - known)


def test_the_table_of_sources_is_complete() -> None:
    for source in SOURCES:
        assert source.title and source.covers, source.key
        assert source.url is None or source.url.startswith("https://"), source.key
    assert len({source.key for source in SOURCES}) == len(SOURCES)


def test_the_command_line_help_names_the_vendor_document() -> None:
    """``nanobanana --help`` cites the API reference by title and URL."""
    out = subprocess.run(
        [sys.executable, "-m", "langchain_nanobanana", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Nano Banana Images API" in " ".join(out.split())
    url = "https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d"
    assert url in "".join(out.split())  # argparse wraps the URL at a hyphen
    assert not INTERNAL.search(out)
