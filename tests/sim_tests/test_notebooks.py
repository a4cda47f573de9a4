"""The six notebooks and the integration page: stored with their outputs (``make notebooks``),
and each runs top to bottom offline.

Each notebook is executed with nbclient in a real ``python3`` kernel (a subprocess), in a fresh
temporary working directory, with no ``ACEDATACLOUD_API_TOKEN`` (so its first cell starts the
simulator) and no chat-model keys (so the scripted / fake models are used). The kernel talks to
this process over ZMQ on 127.0.0.1 and the simulator runs inside the kernel, on loopback too:
nothing here needs more than pytest-socket's ``--allow-hosts``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

from tests.helpers import SIZES_1K

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
INTEGRATION = ROOT / "docs" / "integrations" / "nanobanana.ipynb"
EXPECTED = [
    "01_quickstart",
    "02_lcel_chains",
    "03_agents",
    "04_editing",
    "05_async_and_callbacks",
    "06_resumable_runs",
]
NOTEBOOKS = [NOTEBOOK_DIR / f"{name}.ipynb" for name in EXPECTED] + [INTEGRATION]
#: A stored notebook stays small enough to browse (thumbnails, not full-size images).
MAX_STORED_BYTES = 1_000_000
CELL_TIMEOUT = 120  # seconds per cell

#: Variables that would switch a notebook to a real backend or a real chat model.
_REAL_BACKEND_ENV = (
    "ACEDATACLOUD_API_TOKEN",
    "ACEDATACLOUD_API_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
)

#: Text each executed notebook must print (what the notebook claims to show), beyond no errors.
_MUST_PRINT: dict[str, list[str]] = {
    "01_quickstart": [
        "token=set)",  # the client's repr shows whether a token is set, never the token
        "Generated 1 image(s)",
        "aspect_ratio='5:4' is not allowed",
        "resolution='4K' is not allowed with model='nano-banana'",
        "count=9 is not allowed",
    ],
    "02_lcel_chains": [
        "'Photorealistic, 50 mm lens, natural light.\\na street market in Hanoi at dawn'",
        "LLM: a fake chat model",
        "A small wooden cabin in a snowy pine forest",
        "4 images, ",
        "out/posters/",
    ],
    "03_agents": [
        "Skipped: set OPENAI_API_KEY",
        "nano_banana_generate: error",
        "nano_banana_generate: success",
        "nano_banana_edit: success",
        "2 file(s) in out/agent",
        "Two robot gardeners: http",
    ],
    "04_editing": [
        "data:image/png;base64,iVBORw0KGgo",
        "'prompt': 'let this man wear on this T-shirt'",
        "success | Generated 1 image(s)",
        "error | Invalid arguments, fix and call again:\nimage_urls[0]: local files must be inside",
        *(f"{ratio:>5} -> {w} x {h}" for ratio, (w, h) in SIZES_1K.items()),
        "(4096, 4096)",
    ],
    "05_async_and_callbacks": [
        "['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']",
        "round 1 at ",
        "nano-banana: 0/3 done, 3 pending",  # the ProgressBar, while tasks run
        "nano-banana: 3/3 done, 0 pending",  # the round that ends the batch
        "delivered: succeeded ['http://127.0.0.1:",
        "Resume with poll_task(",
    ],
}
_MUST_PRINT["nanobanana"] = [
    "nano_banana_generate\n['aspect_ratio', 'count', 'prompt', 'resolution']",
    "Generated 1 image(s) (task_id=",  # invoked directly with args: the text for the model
    "ToolMessage success",  # invoked with a ToolCall: a ToolMessage whose artifact is the result
    "succeeded 1 image(s)",
    "nano_banana_edit (call-2)",  # the agent generated, then edited
    "Here is your fox, now wearing a green scarf.",
    "Done: a watercolor lighthouse at dawn.",  # the chain: model -> tool.batch -> model
]
_MUST_PRINT["06_resumable_runs"] = [
    "interrupted after 3 results; submissions so far: 8",
    "Counter({",
    "['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', "
    "'succeeded', 'succeeded']",
    "new submissions on the re-run: 0",
    "distinct tasks: 8 for 8 rows",
]
#: Fewest inline PNG images each notebook must display.
_MIN_IMAGES = {
    "01_quickstart": 4,
    "02_lcel_chains": 9,
    "03_agents": 4,
    "04_editing": 13,
    "05_async_and_callbacks": 11,
    "06_resumable_runs": 4,
    "nanobanana": 3,
}


def read_notebook(path: Path) -> NotebookNode:
    """``nbformat.read`` as nbformat version 4.

    nbformat ships ``py.typed`` but leaves ``read`` unannotated: naming its type here keeps the
    calls typed under ``strict`` (it returns a ``NotebookNode``).
    """
    read: Callable[..., NotebookNode] = nbformat.read
    return read(path, as_version=4)


def _code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _text_of(output: Any) -> str:
    if output.output_type == "stream":
        return str(output.text)
    if "data" in output:
        return str(output.data.get("text/plain", ""))
    return ""


def _text(cell: Any) -> str:
    return "".join(_text_of(output) for output in cell.get("outputs", []))


def test_the_six_notebooks_exist_and_nothing_else() -> None:
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_with_outputs(path: Path) -> None:
    """Browsing the repository shows what each cell printed and the images, as thumbnails, with
    nothing that points at the simulator that made them (it is gone)."""
    nb = read_notebook(path)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert path.stat().st_size <= MAX_STORED_BYTES, f"{path.name}: run `make notebooks`"
    cells = _code_cells(nb)
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: run `make notebooks`"
    outputs = [output for cell in cells for output in cell.outputs]
    expected_errors = [c for c in cells if "raises-exception" in c.metadata.get("tags", [])]
    errors = [c for c in cells if any(o.output_type == "error" for o in c.outputs)]
    assert errors == expected_errors, f"{path.name} stored an unexpected error"
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) >= _MIN_IMAGES[path.stem]
    assert "Backend: simulator at http://127.0.0.1:8765" in _text(cells[0])
    for output in outputs:
        data = output.get("data", {})
        assert "127.0.0.1" not in str(data.get("text/html", "")), "a dead link to the simulator"
        assert "application/vnd.jupyter.widget-view+json" not in data
        assert not re.search(r"127\.0\.0\.1:(?!8765)\d+", _text_of(output)), "a volatile port"
        assert "IProgress not found" not in _text_of(output), "tqdm in Jupyter lacks ipywidgets"
    first = cells[0].source
    # The first cell picks the backend: the real API with a token, else the simulator.
    for needle in (
        'os.environ.get("ACEDATACLOUD_API_TOKEN")',
        "FakeNanoBananaServer(",
        'os.environ["ACEDATACLOUD_API_BASE_URL"] = sim.base_url',
        'print(f"Backend: ',
    ):
        assert needle in first, f"{path.name}: first code cell lacks {needle!r}"


def test_the_integration_page_has_langchains_sections() -> None:
    """The sections of LangChain's tool-integration pages, in their order."""
    nb = read_notebook(INTEGRATION)
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    expected = [
        "Overview",
        "Integration details",
        "Tool features",
        "Setup",
        "Credentials",
        "Instantiation",
        "Invocation",
        "Invoke directly with args",
        "Invoke with ToolCall",
        "Use within an agent",
        "Chaining",
        "API reference",
    ]
    assert [h for h in headings if h in expected] == expected
    assert "| Class | Package | Serializable | JS support | Package latest |" in markdown
    code = "\n".join(cell.source for cell in _code_cells(nb))
    assert '"type": "tool_call"' in code and '"name": tool.name' in code
    assert "ACEDATACLOUD_API_TOKEN" in code and "LANGSMITH_API_KEY" in code
    links = re.findall(r"\]\(([^)\s]+)\)", markdown)
    assert all(link.startswith("https://") for link in links), links


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_cell_uses_the_real_api_when_a_token_is_set(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The branch the offline run never takes: with a token, no simulator, env left alone."""
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "real-token-from-the-user")
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", "https://api.xhuoapi.ai/v1")
    namespace: dict[str, Any] = {}
    exec(_code_cells(read_notebook(path))[0].source, namespace)
    assert namespace["sim"] is None
    out = capsys.readouterr().out
    assert out.startswith("Backend: real Nano Banana API at https://api.xhuoapi.ai/v1")
    assert "real-token-from-the-user" not in out
    assert os.environ["ACEDATACLOUD_API_TOKEN"] == "real-token-from-the-user"


def test_notebook_links_resolve() -> None:
    for path in NOTEBOOKS:
        nb = read_notebook(path)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for target in re.findall(r"\]\(([^)\s]+\.ipynb)\)", cell.source):
                assert (NOTEBOOK_DIR / target).is_file(), f"{path.name} links to {target}"


def executed(path: Path, workdir: Path) -> tuple[NotebookNode, Path]:
    """Run ``path`` top to bottom in a real kernel with ``workdir`` as its working directory:
    ``(the executed notebook, workdir)``.

    The kernel gets no real-backend variable, so the first cell starts the simulator.
    """
    env = {k: v for k, v in os.environ.items() if k not in _REAL_BACKEND_ENV}
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silence the debugger's frozen-modules note
    nb = read_notebook(path)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},  # the kernel's working directory
    )
    client.execute(env=env)  # raises CellExecutionError (with the cell) on any error
    return nb, workdir


def _printed(nb: NotebookNode) -> str:
    return "\n".join(_text(cell) for cell in _code_cells(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path: Path, tmp_path: Path) -> None:
    nb, workdir = executed(path, tmp_path)

    cells = _code_cells(nb)
    assert "Backend: simulator at http://127.0.0.1:" in _text(cells[0])
    printed = _printed(nb)
    assert "IProgress not found" not in printed  # the test extra has ipywidgets, like progress
    for needle in _MUST_PRINT[path.stem]:
        assert needle in printed, f"{path.name} did not print {needle!r}"
    images = [
        output
        for cell in cells
        for output in cell.outputs
        if output.output_type == "display_data" and "image/png" in output.data
    ]
    assert len(images) >= _MIN_IMAGES[path.stem]
    # The notebook saved real PNG files under its own ./out.
    saved = list((workdir / "out").rglob("*.png"))
    assert saved
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in saved)
