"""README.md: every ```python block runs in order against the simulator; its tables match the code.

The blocks share one namespace (a reader runs them top to bottom), in a temporary working
directory, with ``ACEDATACLOUD_API_TOKEN`` / ``ACEDATACLOUD_API_BASE_URL`` pointing at a live
``FakeNanoBananaServer`` and no chat-model key (so the README's offline fallbacks run).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import langchain_nanobanana
from langchain_nanobanana import (
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaError,
    NanoBananaGenerateTool,
    NanoBananaTaskTool,
)
from langchain_nanobanana.client import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from langchain_nanobanana.testing import FakeNanoBananaServer

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
SIM_TOKEN = "sim-token-readme-5c1d"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number, source) of each fenced block in ``language``."""
    return [
        (TEXT.count("\n", 0, m.start()) + 2, m.group(2))
        for m in _FENCE.finditer(TEXT)
        if m.group(1) == language
    ]


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _table_rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- the code blocks --------------------------------------------------------------------------


def test_every_python_block_runs_against_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 10
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    stdout = io.StringIO()
    with FakeNanoBananaServer(token=SIM_TOKEN) as sim:
        monkeypatch.setenv(ENV_TOKEN, SIM_TOKEN)
        monkeypatch.setenv(ENV_BASE_URL, sim.base_url)
        for line, source in blocks:
            # The block that prints progress events needs tasks that are still running when the
            # first poll round reads them; elsewhere tasks finish at once (a fast suite).
            sim.task_duration = 1.5 if "nano_banana_progress" in source else 0.0
            code = compile(source, f"README.md:{line}", "exec")
            try:
                with contextlib.redirect_stdout(stdout):
                    exec(code, namespace)  # the README's own code
            except Exception as exc:
                pytest.fail(f"README block at line {line} raised {type(exc).__name__}: {exc}")
        submissions = [r.json for r in sim.requests_to("/nano-banana/images")]
        callbacks = sim.callbacks_sent
    printed = stdout.getvalue()

    # What the blocks claim, checked on what the simulator received and what they produced.
    assert all(isinstance(body, dict) for body in submissions)
    bodies: list[dict[str, Any]] = [b for b in submissions if isinstance(b, dict)]
    assert len(bodies) >= 20
    assert any(b.get("model") == "nano-banana-pro" and b.get("resolution") == "4K" for b in bodies)
    local_edits = [b for b in bodies if b["action"] == "edit" and "Turn this into" in b["prompt"]]
    assert local_edits
    assert local_edits[0]["image_urls"][0].startswith("data:image/png;base64,")
    assert any(b.get("callback_url", "").startswith("http://127.0.0.1:") for b in bodies)
    assert [c["status"] for c in callbacks] == [200]
    sync_bodies = [b for b in bodies if "async" not in b and "callback_url" not in b]
    assert len(sync_bodies) == 1  # the one sync-mode generation
    assert sorted(tmp_path.joinpath("out").glob("*.png"))  # result.download("out") + tools

    agent_messages = namespace["state"]["messages"]
    assert agent_messages[-1].content == "Done: your cat now wears a small red bow tie."
    assert [m.name for m in agent_messages if m.type == "tool"] == [
        "nano_banana_generate",
        "nano_banana_edit",
    ]
    assert namespace["delivered"].status == "succeeded"
    assert "{'round': 1, 'elapsed': " in printed  # the progress events were printed
    assert "'pending': 1, 'succeeded': 0, 'failed': 0}" in printed
    assert "resolution='4K' is not allowed with model='nano-banana'" in printed
    assert SIM_TOKEN not in printed


def test_shell_blocks_show_the_two_commands() -> None:
    shell = "\n".join(source for _, source in _blocks("bash"))
    assert "make demo" in shell
    assert "make test" in shell
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)


def test_only_python_and_bash_blocks() -> None:
    """An unlabelled or other-language block would silently escape execution."""
    languages = {m.group(1) for m in _FENCE.finditer(TEXT)}
    assert languages <= {"python", "bash", "text"}, languages
    for block in (m.group(2) for m in _FENCE.finditer(TEXT) if m.group(1) == "text"):
        # The only text block is the package layout: every module it names exists.
        names = [t for t in block.split() if re.fullmatch(r"[a-z_/]+(\.py|/)", t)]
        assert names
        for name in names:
            path = ROOT / "langchain_nanobanana" / name
            assert path.exists() or name == "langchain_nanobanana/", name


# -- the tables match the code ----------------------------------------------------------------


@pytest.mark.parametrize(
    "tool_cls", [NanoBananaGenerateTool, NanoBananaEditTool, NanoBananaTaskTool]
)
def test_tool_table_matches_the_tools(tool_cls: type[Any]) -> None:
    rows = {row[0].strip("`"): row for row in _table_rows(_section("Tools for agents"))}
    _, name, llm_args, fixed = rows[tool_cls.__name__]
    assert name == f"`{tool_cls.model_fields['name'].default}`"
    schema: type[BaseModel] = tool_cls.model_fields["args_schema"].default
    documented = {arg.rstrip("?"): arg.endswith("?") for arg in _ticked(llm_args)}
    assert documented == {
        field: not info.is_required() for field, info in schema.model_fields.items()
    }
    for field in _ticked(fixed):
        assert field in tool_cls.model_fields, f"{tool_cls.__name__} has no field {field!r}"
        assert field not in schema.model_fields  # not something the model can set


def test_error_table_lists_every_exported_error() -> None:
    rows = _table_rows(_section("Errors and what to do about them"))
    documented = {_ticked(row[0])[0] for row in rows[1:]}
    exported = {
        name
        for name in langchain_nanobanana.__all__
        if isinstance(getattr(langchain_nanobanana, name), type)
        and issubclass(getattr(langchain_nanobanana, name), NanoBananaError)
    }
    exported.discard("NanoBananaError")  # the base class is introduced in the prose
    assert exported <= documented, exported - documented
    assert "InvalidRequestError" in documented
    for row in rows[1:]:
        assert row[1] and row[2], f"empty cell in the errors table: {row}"


def test_configuration_table_matches_the_client_defaults() -> None:
    section = _section("Configuration")
    assert f"`{ENV_TOKEN}`" in section
    assert f"`{ENV_BASE_URL}`" in section
    assert f"`{DEFAULT_BASE_URL}`" in section
    assert "`https://api.xhuoapi.ai/v1`" in section  # the mirror (seed 003)
    params = inspect.signature(NanoBananaClient).parameters
    rows = [row for row in _table_rows(section) if len(row) == 3 and row[0] != "Argument"]
    documented = {row[0].strip("`"): row[1].strip("`") for row in rows}
    assert set(documented) == set(params)
    for name, default in documented.items():
        assert ast.literal_eval(default) == params[name].default, name


REPOSITORY = "https://github.com/langchain-nanobanana/langchain-nanobanana"
BLOB = f"{REPOSITORY}/blob/main/"
RAW = "https://raw.githubusercontent.com/langchain-nanobanana/langchain-nanobanana/main/"
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def _links() -> list[str]:
    """Targets of every Markdown link and image in the README, and of every HTML src/href."""
    return _LINK.findall(TEXT) + re.findall(r"""(?:src|href)=["']([^"']+)["']""", TEXT)


def test_every_link_is_absolute() -> None:
    """The package index renders this README away from the repository: a relative link (a file
    or a bare ``#anchor``) 404s there. Files are ``.../blob/main/PATH``, images raw URLs."""
    relative = [link for link in _links() if not re.match(r"https?://", link)]
    assert not relative, f"relative links in README.md: {relative}"


def test_links_into_the_repository_resolve() -> None:
    links = _links()
    files = [link[len(BLOB) :].split("#")[0] for link in links if link.startswith(BLOB)]
    files += [link[len(RAW) :] for link in links if link.startswith(RAW)]
    assert any(path.startswith("notebooks/") for path in files)
    missing = [path for path in files if not (ROOT / path).exists()]
    assert not missing, f"README links to missing files: {missing}"
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", TEXT)
    assert all(image.startswith(RAW) for image in images), images


def test_anchor_links_resolve() -> None:
    headings = re.findall(r"^## (.+)$", TEXT, re.MULTILINE)
    slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
    anchors = [link.split("#", 1)[1] for link in _links() if link.startswith(f"{BLOB}README.md#")]
    assert anchors
    for anchor in anchors:
        assert anchor in slugs, anchor


def test_every_notebook_is_linked() -> None:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"({BLOB}notebooks/{path.name})" in TEXT, path.name
    assert f"({BLOB}docs/integrations/nanobanana.ipynb)" in TEXT


def test_no_repository_internal_names() -> None:
    """Users have neither the design notes nor the vendor files they were written from."""
    for pattern in (r"\bSPEC\b", r"\bseeds?\b", r"seed 0\d\d", r"shared/"):
        assert not re.search(pattern, TEXT, re.IGNORECASE), pattern


def test_command_line_examples_run_against_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``$ nanobanana ...`` line of the Command line section runs (in order, in a shell,
    in one folder) and exits 0; ``$ cat FILE`` lines write the rows shown under them. A task id
    in a command is replaced by one the simulator really knows.
    """
    section = _section("Command line")
    script = [
        block
        for match in _FENCE.finditer(section)
        if match.group(1) == "bash"
        for block in [match.group(2)]
    ]
    assert script, "no bash block in the Command line section"
    bindir = str(Path(sys.executable).parent)
    with FakeNanoBananaServer(token=SIM_TOKEN) as sim:
        env = {
            **os.environ,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            ENV_TOKEN: SIM_TOKEN,
            ENV_BASE_URL: sim.base_url,
        }
        ran = 0
        for block in script:
            lines = block.splitlines()
            for n, line in enumerate(lines):
                if line.startswith("$ cat "):
                    rows = list(
                        itertools.takewhile(lambda x: not x.startswith("$ "), lines[n + 1 :])
                    )
                    (tmp_path / line.removeprefix("$ cat ").strip()).write_text(
                        "\n".join(rows) + "\n"
                    )
                elif line.startswith("$ nanobanana "):
                    command = line.removeprefix("$ ")
                    known = next(iter(sim.tasks), "")
                    command = re.sub(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b", known, command)
                    done = subprocess.run(
                        command,
                        shell=True,
                        cwd=tmp_path,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=120,
                        check=False,
                    )
                    assert done.returncode == 0, (command, done.stdout, done.stderr)
                    assert done.stdout.strip(), command
                    ran += 1
        assert ran >= 5
        assert SIM_TOKEN not in "".join(str(r.headers) for r in sim.requests_to("/files"))
    assert (tmp_path / "shots" / "manifest.jsonl").exists()
