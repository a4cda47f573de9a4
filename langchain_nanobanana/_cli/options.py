"""The option groups and examples of the ``nanobanana`` parser (see ``_cli.parser``), importing
nothing heavy: the models' names are read lazily through :class:`LazyChoices`.

Short options follow the vendor's command line (package ``nano-banana-cli``, command
``nano-banana``): ``-m/--model``, ``-a/--aspect-ratio``, ``-r/--resolution``, ``-n/--count``,
``-i/--image``, ``-o/--out``; ``--async`` and ``wait --interval`` are its spellings too.
Connection options (``--base-url``, ``--token-env``; a rate limit belongs here too) are added by
:func:`connection_options` to the commands that talk to the API.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_nanobanana._env import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN

__all__ = [
    "EXAMPLES",
    "LazyChoices",
    "connection_options",
    "number",
    "request_options",
    "run_options",
    "stdin_or",
    "verbosity_options",
    "wait_options",
]


class LazyChoices(Sequence[str]):
    """The allowed values of an option, read from :mod:`langchain_nanobanana.models` on first
    use (a check, a completion script, a subcommand's ``--help``), never while parsing ``--help``.

    Args:
        name: ``"MODELS"``, ``"ASPECT_RATIOS"`` or ``"RESOLUTIONS"``.

    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._values: list[str] | None = None

    def _load(self) -> list[str]:
        if self._values is None:
            models = importlib.import_module("langchain_nanobanana.models")
            self._values = [str(v) for v in getattr(models, self._name)]
        return self._values

    def __getitem__(self, index: Any) -> Any:
        return self._load()[index]

    def __len__(self) -> int:
        return len(self._load())

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __contains__(self, value: object) -> bool:
        return value in self._load()

    def __str__(self) -> str:
        return ", ".join(self._load())


def number(kind: Callable[[str], Any], low: float, high: float | None = None) -> Any:
    """An argparse type: a ``kind`` number in ``[low, high]`` (the message names the range)."""

    def check(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        bad = value != value or value < low or (high is not None and value > high)  # NaN too
        if bad or value in (float("inf"), float("-inf")):
            allowed = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: allowed {allowed}")
        return value

    return check


def stdin_or(what: str) -> str:
    return f"{what}, or - to read it from standard input"


def connection_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--base-url",
        default=None if top else argparse.SUPPRESS,
        metavar="URL",
        help=f"API base URL (default: ${ENV_BASE_URL}, else {DEFAULT_BASE_URL})",
    )
    group.add_argument(
        "--token-env",
        metavar="NAME",
        default=ENV_TOKEN if top else argparse.SUPPRESS,
        help=f"environment variable holding the API token (default {ENV_TOKEN}); "
        "a token is never read from the command line",
    )
    group.add_argument(
        "--rate-limit",
        type=number(float, 0.01),
        default=None if top else argparse.SUPPRESS,
        metavar="R",
        help="API requests per second your account allows (submissions and task reads "
        "together), when known: every request is paced just below it (default: none; the "
        "client learns a pace from the first 429 and every row pauses once)",
    )


def verbosity_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    group = parser.add_argument_group("messages")
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no progress and no notes on stderr (errors still)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="log the package's INFO (-v) or DEBUG (-vv) messages to stderr",
    )


def request_options(parser: argparse.ArgumentParser, *, batch: bool) -> None:
    what = "default for rows without one" if batch else "default: the API's"
    parser.add_argument(
        "-m",
        "--model",
        choices=LazyChoices("MODELS"),
        metavar="MODEL",
        help=f"model ({what}, nano-banana): %(choices)s; see `nanobanana models`",
    )
    parser.add_argument(
        "-a",
        "--aspect-ratio",
        choices=LazyChoices("ASPECT_RATIOS"),
        metavar="RATIO",
        help=f"aspect ratio ({what}, 1:1): %(choices)s",
    )
    parser.add_argument(
        "-r",
        "--resolution",
        choices=LazyChoices("RESOLUTIONS"),
        metavar="SIZE",
        help=f"resolution ({what}, 1K): %(choices)s (2K/4K: see `nanobanana models`)",
    )
    parser.add_argument(
        "-n", "--count", type=number(int, 1), metavar="N", help=f"images per request ({what}, 1)"
    )
    parser.add_argument(
        "--callback-url",
        metavar="URL",
        help="the API posts the finished task to this https URL"
        + (" (every row)" if batch else ""),
    )


def run_options(parser: argparse.ArgumentParser, *, batch: bool) -> None:
    parser.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        default=None,
        help="folder for the images"
        + (", manifest.jsonl and the default journal" if batch else "")
        + " (default ./out)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="journal (a SQLite file, or a postgresql:// URL shared by many workers) that makes "
        "re-runs resume without paying twice "
        "(default <out>/journal.sqlite" + ("" if batch else ", used with --key") + ")",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON line per "
        + ("row" if batch else "result")
        + " on stdout: id, task_id, trace_id, status, files, urls, error"
        + (" (the manifest's schema)" if batch else ""),
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="do not save the images: report their URLs only (files stay [])",
    )
    parser.add_argument(
        "--no-wait",
        "--async",
        dest="no_wait",
        action="store_true",
        help=(
            "submit every row, record it in the journal and the manifest (pending), exit 0; "
            "run the same batch again to wait and download"
            if batch
            else "submit, print the task id and exit 0 (with --key it is recorded in the "
            "journal); collect it later with `nanobanana wait TASK_ID` or `wait --key KEY`"
        ),
    )
    parser.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="submit again a key whose earlier submission is uncertain (MAY PAY TWICE)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="submit again a key whose task failed before"
    )
    wait_options(parser)


def wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        "--interval",
        type=number(float, 0.01, 60.0),
        default=1.0,
        metavar="S",
        help="first wait between task reads, seconds (default 1.0, growing to 10)",
    )
    parser.add_argument(
        "--max-wait",
        type=number(float, 0.01),
        default=600.0,
        metavar="S",
        help="seconds to wait for tasks before reporting them pending (default 600)",
    )


EXAMPLES = {
    "generate": """\
examples:
  nanobanana generate "a white siamese cat" -a 2:3
  nanobanana generate "Product photo of a watch" -m nano-banana-pro -r 4K -o shots
  echo "a red fox in the snow" | nanobanana generate -
  nanobanana generate "a logo" --key logo-1 --no-wait      # prints the task id
  nanobanana wait --key logo-1                             # later: wait, download, print""",
    "edit": """\
examples:
  nanobanana edit "make the sky purple" photo.jpg
  nanobanana edit "put the cat on the sofa" -i cat.png -i sofa.png -a 16:9
  cat photo.png | nanobanana edit "make it red" -
  nanobanana edit "add a hat" https://example.com/cat.png --json""",
    "wait": """\
examples:
  nanobanana wait 7d1f6c0e-1c55-4c43-9a4c-3b4a4b2f2e61
  nanobanana wait --key logo-1 -o out
  nanobanana wait ID1 ID2 --no-download --json""",
    "task": """\
examples:
  nanobanana task 7d1f6c0e-1c55-4c43-9a4c-3b4a4b2f2e61
  nanobanana task ID1 ID2 --wait -o out --json""",
    "batch": """\
examples:
  nanobanana batch prompts.jsonl -o out --concurrency 16
  nanobanana batch prompts.csv -m nano-banana-2 -r 2K
  cat prompts.jsonl | nanobanana batch - --json
  nanobanana batch - --format csv < prompts.csv
  nanobanana batch prompts.jsonl --no-wait          # submit only; run again to collect""",
    "models": """\
examples:
  nanobanana models
  nanobanana models --json""",
    "completion": """\
examples:
  nanobanana completion bash > ~/.local/share/bash-completion/completions/nanobanana
  nanobanana completion zsh > ~/.zfunc/_nanobanana
  nanobanana completion fish > ~/.config/fish/completions/nanobanana.fish""",
    "simulate": """\
examples:
  nanobanana simulate --port 8765 --task-duration 2
  ACEDATACLOUD_API_TOKEN=sim-token nanobanana --base-url http://127.0.0.1:8765 generate "a cat\"""",
    "journal": """\
examples:
  nanobanana journal list --state reserved
  nanobanana journal resolve row-17 --task-id 7d1f6c0e-1c55-4c43-9a4c-3b4a4b2f2e61
  nanobanana journal forget row-17""",
}
