"""How fast the ``nanobanana`` command line starts, and what a command imports.

Usage: ``python benchmarks/cli_start.py [--runs 5]``

Measures, each in fresh processes, best of ``--runs`` (wall time, ``time.perf_counter`` around
``subprocess.run``; the best run is the one least disturbed by other load on the machine):

1. ``python -c pass``: the interpreter's own start, for scale;
2. ``nanobanana --help`` (the console script next to this interpreter, else
   ``python -m langchain_nanobanana``): target <= 0.25 s;
3. importing what each kind of command needs, and whether that pulls in ``langchain_core``,
   ``pydantic`` or ``requests``: the parser (``--help``, ``models``, ``completion``), ``generate``
   / ``edit`` / ``wait`` (``_cli.single``), ``task`` / ``batch`` (``_cli.commands``), and the
   LangChain faces (``langchain_nanobanana.tools``) for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.25
HEAVY = ("langchain_core", "pydantic", "requests")

_PROBE = """
import json, sys, time
started = time.perf_counter()
import {module}
took = time.perf_counter() - started
tops = {{m.split(".")[0] for m in sys.modules}}
print(json.dumps({{"s": took, "heavy": sorted(tops & set({heavy!r}))}}))
"""


def best_wall(argv: list[str], runs: int) -> float:
    """The best wall time of ``runs`` runs of ``argv`` (seconds); it must exit 0."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def import_cost(module: str, runs: int) -> tuple[float, list[str]]:
    """Best in-process import time of ``module`` in a fresh interpreter, and the heavy packages
    it loaded.
    """
    best, heavy = float("inf"), []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module, heavy=HEAVY)],
            check=True,
            capture_output=True,
            text=True,
        )
        report = json.loads(out.stdout)
        best, heavy = min(best, report["s"]), report["heavy"]
    return best, heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (best is kept)")
    args = parser.parse_args()
    script = Path(sys.executable).with_name("nanobanana")
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "langchain_nanobanana"]
    if not script.exists() and shutil.which("nanobanana"):
        entry = [str(shutil.which("nanobanana"))]
    python = best_wall([sys.executable, "-c", "pass"], args.runs)
    help_s = best_wall([*entry, "--help"], args.runs)
    print(f"python -c pass              {python:6.3f} s (best of {args.runs})")
    verdict = "ok" if help_s <= TARGET_S else "OVER"
    print(
        f"nanobanana --help           {help_s:6.3f} s (best of {args.runs}; target <= "
        f"{TARGET_S} s: {verdict})"
    )
    for label, module in (
        ("--help/models/completion", "langchain_nanobanana._cli.parser"),
        ("generate/edit/wait", "langchain_nanobanana._cli.single"),
        ("task/batch", "langchain_nanobanana._cli.commands"),
        ("LangChain tools (compare)", "langchain_nanobanana.tools"),
    ):
        took, heavy = import_cost(module, args.runs)
        print(
            f"import for {label:<26} {took:6.3f} s  loads: {', '.join(heavy) or 'none of'} "
            f"({'/'.join(HEAVY)})"
        )
    return 0 if help_s <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
