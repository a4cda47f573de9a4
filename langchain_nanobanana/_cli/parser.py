"""The ``nanobanana`` argument parser, built from light modules only (``nanobanana --help`` must
not import pydantic, the HTTP stack or ``langchain_core``): the models' names are read when an
option's value is checked or a subcommand's help is shown, through :class:`LazyChoices`.

Short options follow the vendor's own command line (the ``acedatacloud`` CLI): ``-m/--model``,
``-a/--aspect-ratio``, ``-r/--resolution``, ``-n/--count``, ``-i/--image``, ``-o/--out``.

To add a subcommand: write ``_add_NAME(sub)`` here, call it in :func:`build_parser`, and name its
handler in ``COMMANDS`` (``"module:function"`` under ``langchain_nanobanana._cli``; imported only
when that subcommand runs).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .output import ENV_TOKEN, describe_exit_codes

__all__ = ["COMMANDS", "MAX_CONCURRENCY", "LazyChoices", "build_parser", "iter_parsers"]

#: Subcommand -> ``"module:function"`` in ``langchain_nanobanana._cli`` (imported on dispatch).
COMMANDS: dict[str, str] = {
    "generate": "single:cmd_generate",
    "edit": "single:cmd_generate",
    "wait": "single:cmd_wait",
    "task": "commands:cmd_task",
    "batch": "commands:cmd_batch",
    "models": "info:cmd_models",
    "completion": "info:cmd_completion",
    "simulate": "admin:cmd_simulate",
    "journal": "admin:cmd_journal",
}

#: Largest ``--concurrency``: one worker thread and two pooled connections per unit.
MAX_CONCURRENCY = 256


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


def _number(kind: Callable[[str], Any], low: float, high: float | None = None) -> Any:
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


def _stdin_or(what: str) -> str:
    return f"{what}, or - to read it from standard input"


def _connection(parser: argparse.ArgumentParser, *, top: bool) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--base-url",
        default=None if top else argparse.SUPPRESS,
        metavar="URL",
        help="API base URL (default: $ACEDATACLOUD_API_BASE_URL, else https://api.acedata.cloud)",
    )
    group.add_argument(
        "--token-env",
        metavar="NAME",
        default=ENV_TOKEN if top else argparse.SUPPRESS,
        help=f"environment variable holding the API token (default {ENV_TOKEN}); "
        "a token is never read from the command line",
    )


def _verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
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


def _request_options(parser: argparse.ArgumentParser, *, batch: bool) -> None:
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
        "-n", "--count", type=_number(int, 1), metavar="N", help=f"images per request ({what}, 1)"
    )
    parser.add_argument(
        "--callback-url",
        metavar="URL",
        help="the API posts the finished task to this https URL"
        + (" (every row)" if batch else ""),
    )


def _run_options(parser: argparse.ArgumentParser, *, batch: bool) -> None:
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
        help="journal (a SQLite file) that makes re-runs resume without paying twice "
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
        help="submit, record in the journal, print the task id(s) and exit 0; collect later "
        "with `nanobanana wait`" + (" or by running the same batch again" if batch else ""),
    )
    parser.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="submit again a key whose earlier submission is uncertain (MAY PAY TWICE)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="submit again a key whose task failed before"
    )
    _wait_options(parser)


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=_number(float, 0.01, 60.0),
        default=1.0,
        metavar="S",
        help="first wait between task reads, seconds (default 1.0, growing to 10)",
    )
    parser.add_argument(
        "--max-wait",
        type=_number(float, 0.01),
        default=600.0,
        metavar="S",
        help="seconds to wait for tasks before reporting them pending (default 600)",
    )


_EXAMPLES = {
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


def build_parser() -> argparse.ArgumentParser:
    """The ``nanobanana`` argument parser (subcommands in :data:`COMMANDS`)."""
    from langchain_nanobanana import __version__

    parser = argparse.ArgumentParser(
        prog="nanobanana",
        description="Generate and edit images with the Nano Banana API (Ace Data Cloud): single "
        "requests, task look-ups, and resumable batches that never pay twice.",
        epilog=describe_exit_codes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--token` must not abbreviate `--token-env`
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )
    _connection(parser, top=True)
    _verbosity(parser, top=True)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, help="what to do (COMMAND --help)"
    )

    def command(name: str, help: str, description: str, *, api: bool = True) -> Any:
        epilog = _EXAMPLES[name] + ("\n\n" + describe_exit_codes() if api else "")
        p = sub.add_parser(
            name,
            help=help,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        if api:
            _connection(p, top=False)
        _verbosity(p, top=False)
        return p

    gen = command(
        "generate",
        "generate images from a prompt",
        "Submit one generation, wait for it, save the images under --out and print their paths.",
    )
    gen.add_argument("prompt", metavar="PROMPT", help=_stdin_or("the text prompt"))
    _request_options(gen, batch=False)
    gen.add_argument(
        "-i",
        "--image",
        dest="image_options",
        action="append",
        default=[],
        metavar="IMAGE",
        help="refused here: images are for `nanobanana edit PROMPT -i IMAGE`",
    )
    gen.add_argument("--key", help="idempotency key: the same key again never pays twice")
    _run_options(gen, batch=False)

    edit = command(
        "edit",
        "edit images as a prompt says",
        "Submit one edit of IMAGE(s) (http(s) URLs or local files), wait, save and print paths.",
    )
    edit.add_argument("prompt", metavar="PROMPT", help=_stdin_or("what to change"))
    edit.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help=_stdin_or("http(s) URL or local file (one image's bytes)"),
    )
    _request_options(edit, batch=False)
    edit.add_argument(
        "-i",
        "--image",
        dest="image_options",
        action="append",
        default=[],
        metavar="IMAGE",
        help="one more image (repeatable), after the positional ones",
    )
    edit.add_argument("--key", help="idempotency key: the same key again never pays twice")
    _run_options(edit, batch=False)

    wait = command(
        "wait",
        "wait for submitted tasks, download and print",
        "Wait for tasks submitted with --no-wait (by task id, or by --key through the journal), "
        "save their images under --out and print their paths, as generate does.",
    )
    wait.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="task id to wait for")
    wait.add_argument(
        "--key",
        dest="keys",
        action="append",
        default=[],
        metavar="KEY",
        help="wait for the task the journal records for this key (repeatable)",
    )
    wait.add_argument(
        "-o", "--out", metavar="DIR", default=None, help="folder for the images (default ./out)"
    )
    wait.add_argument(
        "--journal", metavar="PATH", help="journal for --key (default <out>/journal.sqlite)"
    )
    wait.add_argument("--json", action="store_true", help="one JSON line per task on stdout")
    wait.add_argument(
        "--no-download", action="store_true", help="do not save the images: print their URLs"
    )
    _wait_options(wait)

    task = command(
        "task",
        "print the status of tasks",
        "Print each task's status (pending included); --wait waits for the pending ones. "
        "An unknown id exits 1.",
    )
    task.add_argument("ids", nargs="+", metavar="ID", help="task id")
    task.add_argument("--wait", action="store_true", help="wait until each task ends")
    task.add_argument("-o", "--out", metavar="DIR", help="save the images of finished tasks here")
    task.add_argument("--json", action="store_true", help="one JSON line per task on stdout")
    _wait_options(task)

    batch = command(
        "batch",
        "run a JSONL or CSV file of requests, resumably",
        "Validate every row of FILE (.jsonl or .csv; columns prompt, id, action, images, model,\n"
        "aspect_ratio, resolution, count; CSV headers in any case, separated by , ; or tab),\n"
        "then submit them with at most --concurrency in flight, save the images and append one\n"
        "line per row to <out>/manifest.jsonl. Re-running the same command resumes: finished\n"
        "rows are not resubmitted, submitted rows are polled, uncertain rows are reported\n"
        "(exit 4) unless --resubmit-uncertain. CSV images: URLs or paths separated by\n"
        "whitespace, relative to FILE (to the current folder for -).",
    )
    batch.add_argument(
        "file", metavar="FILE", help=_stdin_or("requests, one per row (.jsonl or .csv)")
    )
    batch.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="the rows' format (default: from FILE's extension; jsonl for -)",
    )
    _request_options(batch, batch=True)
    batch.add_argument(
        "--concurrency",
        type=_number(int, 1, MAX_CONCURRENCY),
        default=8,
        metavar="N",
        help=f"submissions in flight at most, 1 to {MAX_CONCURRENCY} (default 8)",
    )
    batch.add_argument(
        "--skip-invalid",
        action="store_true",
        help="run the valid rows and mark invalid ones 'invalid' in the manifest (exit 1) "
        "instead of stopping before any request (exit 2)",
    )
    _run_options(batch, batch=True)

    models = command(
        "models",
        "list the models with their resolutions and aspect ratios",
        "List every model the API accepts with the resolutions and aspect ratios it takes.",
        api=False,
    )
    models.add_argument("--json", action="store_true", help="one JSON object per model")

    comp = command(
        "completion",
        "print a shell completion script",
        "Print a completion script for bash, zsh or fish, generated from this parser (bash and\n"
        "zsh by the shtab library: pip install 'langchain-nanobanana[completion]'; fish from\n"
        "the parser's own subcommands, options and choices).",
        api=False,
    )
    comp.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell: %(choices)s")

    sim = command(
        "simulate",
        "run the loopback API simulator",
        "Serve the Nano Banana API simulator on 127.0.0.1 in the foreground and print its base "
        "URL (Ctrl-C stops it).",
        api=False,
    )
    sim.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    sim.add_argument(
        "--port",
        type=_number(int, 0, 65535),
        default=8765,
        help="TCP port, 0 = any free one (default 8765)",
    )
    sim.add_argument("--path-prefix", default="", help="also serve under this path, e.g. /v1")
    sim.add_argument(
        "--token",
        dest="sim_token",
        default="sim-token",
        help="the token the simulator accepts ('' = any; default sim-token). Not an API token",
    )
    sim.add_argument(
        "--task-duration",
        type=_number(float, 0.0),
        default=0.0,
        metavar="S",
        help="seconds each simulated task runs before it succeeds (default 0)",
    )
    sim.add_argument(
        "--submit-latency",
        type=_number(float, 0.0),
        default=0.0,
        metavar="S",
        help="seconds the simulator takes to answer a submission (default 0)",
    )

    _add_journal(command)
    return parser


def _add_journal(command: Callable[..., Any]) -> None:
    jour = command(
        "journal",
        "list or settle journal keys by hand",
        "Inspect the journal and settle uncertain keys: `resolve KEY --task-id ID` when the "
        "task ran (the next run polls it), `forget KEY` when it did not (the next run submits). "
        "A key's scope is the API base URL it was sent to.",
        api=False,
    )
    jsub = jour.add_subparsers(
        dest="journal_command", metavar="ACTION", required=True, help="list, resolve or forget"
    )
    jlist = jsub.add_parser(
        "list", allow_abbrev=False, help="list keys with their status and task id"
    )
    jlist.add_argument(
        "--state",
        choices=("reserved", "submitted", "succeeded", "failed"),
        help="only keys in this state: %(choices)s",
    )
    jlist.add_argument("--json", action="store_true", help="one JSON line per key")
    jres = jsub.add_parser(
        "resolve", allow_abbrev=False, help="record the task a key's submission created"
    )
    jres.add_argument("key", metavar="KEY", help="the idempotency key (a row's id)")
    jres.add_argument(
        "--task-id",
        required=True,
        metavar="ID",
        help="the task the key's submission created (from the vendor's console or a callback)",
    )
    jfor = jsub.add_parser(
        "forget", allow_abbrev=False, help="delete a key: the next run submits (and pays) again"
    )
    jfor.add_argument("key", metavar="KEY", help="the idempotency key (a row's id)")
    for p in (jres, jfor):
        p.add_argument(
            "--base-url",
            default=argparse.SUPPRESS,
            metavar="URL",
            help="the API base URL the key belongs to (its scope; needed only when the key is "
            "in several scopes)",
        )
    for p in (jlist, jres, jfor):
        p.add_argument(
            "--journal",
            metavar="PATH",
            default="out/journal.sqlite",
            help="journal file (default out/journal.sqlite)",
        )
        _verbosity(p, top=False)


def iter_parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(prog, parser)`` for ``parser`` and every subparser under it, depth first."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from iter_parsers(child)
