"""``make notebooks``: run every notebook against the simulator and store it with its outputs.

Each notebook (``notebooks/*.ipynb`` and ``docs/integrations/*.ipynb``, or the paths given) is
executed top to bottom with nbclient in a ``python3`` kernel, in a fresh temporary working
directory, without ``ACEDATACLOUD_API_TOKEN`` (so its first cell starts the simulator) and without
chat-model keys (so the scripted models play). The outputs are then made fit to store:

* every ``image/png`` is shrunk to a thumbnail (longest side ``THUMBNAIL_PX``, needs Pillow: the
  ``docs`` extra), so the images show when browsing the repository and a notebook stays small;
* HTML that points at the simulator (``ImageResult``'s inline ``<img src="http://127.0.0.1:...">``,
  dead once the kernel stops) is dropped, its ``text/plain`` stays; notebook widgets (a tqdm bar)
  are left out;
* volatile text is pinned: the simulator's port becomes ``SIM_PORT`` and the temporary working
  directory ``.``; no execution timings are recorded.

A notebook larger than ``MAX_BYTES`` afterwards is an error (exit 1). Usage::

    python scripts/execute_notebooks.py [NOTEBOOK.ipynb ...]
"""

from __future__ import annotations

import base64
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GLOBS = ("notebooks/*.ipynb", "docs/integrations/*.ipynb")
THUMBNAIL_PX = 320
MAX_BYTES = 1_000_000
SIM_PORT = "8765"
CELL_TIMEOUT = 300
#: Variables that would switch a notebook to a real backend or a real chat model.
REAL_BACKEND_ENV = (
    "ACEDATACLOUD_API_TOKEN",
    "ACEDATACLOUD_API_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
)
_WIDGET = "application/vnd.jupyter.widget-view+json"
_LOOPBACK = re.compile(r"(https?://(?:127\.0\.0\.1|localhost)):\d+")


def thumbnail(png_b64: str) -> str:
    """A base64 PNG whose longest side is at most ``THUMBNAIL_PX`` (smaller ones unchanged).

    Raises:
        SystemExit: Pillow is not installed (``pip install -e '.[docs]'``).

    """
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit("make notebooks needs Pillow: pip install -e '.[docs]'") from None
    image = Image.open(io.BytesIO(base64.b64decode(png_b64)))
    if max(image.size) <= THUMBNAIL_PX:
        return png_b64
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def _pin(text: str, workdir: Path) -> str:
    text = _LOOPBACK.sub(rf"\1:{SIM_PORT}", text)
    for spelling in {str(workdir), str(workdir.resolve())}:
        text = text.replace(spelling + os.sep, "").replace(spelling, ".")
    return text


def _pin_all(value: Any, pin: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return pin(value)
    if isinstance(value, list):
        return [_pin_all(item, pin) for item in value]
    return value


def tidy(nb: NotebookNode, workdir: Path) -> NotebookNode:
    """Make an executed notebook's outputs fit to store (see the module docstring)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        # A live widget (the tqdm bar in Jupyter) has no state once the kernel is gone: its
        # stored form would be a bare "HBox(children=...)". It is left out.
        cell.outputs = [o for o in cell.outputs if _WIDGET not in o.get("data", {})]
        for output in cell.outputs:
            if "text" in output:
                output.text = _pin(output.text, workdir)
            data = output.get("data")
            if not data:
                continue
            data.pop(_WIDGET, None)
            if "127.0.0.1" in str(data.get("text/html", "")) and "text/plain" in data:
                data.pop("text/html")
            if "image/png" in data:
                data["image/png"] = thumbnail(data["image/png"])
            for key in ("text/plain", "text/html", "text/markdown"):
                if key in data:
                    data[key] = _pin_all(data[key], lambda t: _pin(t, workdir))
    return nb


def execute(path: Path) -> int:
    """Execute ``path`` against the simulator, tidy it, write it back; its size in bytes."""
    read: Callable[..., NotebookNode] = nbformat.read
    nb = read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env = {k: v for k, v in os.environ.items() if k not in REAL_BACKEND_ENV}
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    with tempfile.TemporaryDirectory(prefix="nb-") as tmp:
        workdir = Path(tmp)
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute(env=env)
        tidy(nb, workdir)
    nbformat.validate(nb)
    write: Callable[..., None] = nbformat.write  # untyped in nbformat: named here for strict
    write(nb, path)
    return path.stat().st_size


def notebooks(args: Iterable[str]) -> list[Path]:
    """The paths given, else every notebook of ``DEFAULT_GLOBS``."""
    given = [Path(arg) for arg in args]
    return given or sorted(p for pattern in DEFAULT_GLOBS for p in ROOT.glob(pattern))


def main(argv: list[str]) -> int:
    """Execute the notebooks; 1 if any ends up larger than ``MAX_BYTES``."""
    too_big = []
    for path in notebooks(argv):
        size = execute(path)
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {size:,} bytes")
        if size > MAX_BYTES:
            too_big.append(path)
    if too_big:
        print(f"larger than {MAX_BYTES:,} bytes: {[str(p) for p in too_big]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
