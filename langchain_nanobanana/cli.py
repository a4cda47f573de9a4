"""The ``nanobanana`` command line (also ``python -m langchain_nanobanana``).

Subcommands::

    nanobanana generate PROMPT [--model M] [--aspect-ratio R] [--resolution S] [--count N]
                               [--out DIR] [--key KEY] [--journal PATH] [--json]
    nanobanana edit PROMPT IMAGE [IMAGE ...]  (URLs or local files; same options)
    nanobanana task ID [ID ...] [--wait] [--out DIR] [--json]
    nanobanana batch FILE [--out DIR] [--journal PATH] [--concurrency N] [--json]
                          [--skip-invalid] [--resubmit-uncertain] [--no-download] [row defaults]
    nanobanana simulate [--port P] [--path-prefix /v1] [--token T]
    nanobanana journal list | resolve KEY --task-id ID | forget KEY  [--journal PATH]

Global options (before or after the subcommand): ``--base-url URL`` (default
``$ACEDATACLOUD_API_BASE_URL``, else the vendor's), ``--token-env NAME`` (the environment variable
holding the API token, default ``ACEDATACLOUD_API_TOKEN``; a token is never taken from the command
line), ``-q/--quiet``, ``-v/--verbose``.

Output: results on stdout (paths, or one JSON object per line with ``--json``: ``id``,
``task_id``, ``trace_id``, ``status``, ``files``, ``urls``, ``error`` -- the schema of
``manifest.jsonl``), progress and messages on stderr (a ``tqdm`` bar on a terminal, plain lines
otherwise). Exit codes (highest wins: 3 > 2 > 4 > 1 > 0): 0 all succeeded; 1 some row failed or
is still pending, or an unknown task id; 2 usage or bad input, found before any request; 3
authentication, configuration or balance; 4 some submission uncertain (maybe billed); 130 Ctrl-C
(143 SIGTERM) after recording what was in flight.

Why ``argparse``: the standard library covers subcommands, help and exit code 2 for usage
errors; the package adds no runtime dependency for its command line.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from langchain_nanobanana import __version__
from langchain_nanobanana._cli.admin import cmd_journal, cmd_simulate
from langchain_nanobanana._cli.commands import (
    cmd_batch,
    cmd_generate,
    cmd_task,
    describe_exit_codes,
)
from langchain_nanobanana._cli.common import EXIT_INTERRUPTED, CLIError, Output
from langchain_nanobanana._cli.report import add_parser as add_report_parser
from langchain_nanobanana._cli.report import cmd_report
from langchain_nanobanana.client import ENV_TOKEN
from langchain_nanobanana.models import ASPECT_RATIOS, MODELS, RESOLUTIONS

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)


def _positive(kind: Callable[[str], Any], *, allow_zero: bool = False) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value != value or value < 0 or (value == 0 and not allow_zero):  # NaN, negative
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if allow_zero else '> 0'}: {text}")
        return value

    return check


def _rate(text: str) -> float:
    """``--rate-limit``: a finite number of requests per second > 0 (else usage error, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be finite requests per second > 0: {text}")
    return value


def _globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--base-url",
        default=default,
        help="API base URL (default: $ACEDATACLOUD_API_BASE_URL, else https://api.acedata.cloud)",
    )
    group.add_argument(
        "--token-env",
        metavar="NAME",
        default=ENV_TOKEN if top else argparse.SUPPRESS,
        help=f"environment variable holding the API token (default {ENV_TOKEN}); "
        "a token is never read from the command line",
    )
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
        "--model",
        choices=list(MODELS),
        metavar="MODEL",
        help=f"model ({what}; nano-banana): {', '.join(MODELS)}",
    )
    parser.add_argument("--aspect-ratio", choices=ASPECT_RATIOS, help=f"aspect ratio ({what}; 1:1)")
    parser.add_argument("--resolution", choices=RESOLUTIONS, help=f"resolution ({what}; 1K)")
    parser.add_argument(
        "--count", type=_positive(int), help=f"images per request, 1..4 ({what}; 1)"
    )


def _run_options(parser: argparse.ArgumentParser, *, batch: bool) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="out",
        help="folder for the images"
        + (", manifest.jsonl and the default journal" if batch else "")
        + " (default ./out)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="journal file (SQLite) that makes re-runs resume without paying twice "
        "(default <out>/journal.sqlite" + ("" if batch else ", used with --key") + ")",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON line per "
        + ("row" if batch else "result")
        + " on stdout (id, task_id, trace_id, status, files, urls, error"
        + ("; the manifest's schema)" if batch else ")"),
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="do not save the images: report their URLs only (files stay [])",
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
        type=_positive(float),
        default=1.0,
        metavar="S",
        help="first wait between task reads, seconds (default 1.0, growing to 10)",
    )
    parser.add_argument(
        "--max-wait",
        type=_positive(float),
        default=600.0,
        metavar="S",
        help="seconds to wait for tasks before reporting them pending (default 600)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate,
        default=None,
        metavar="R",
        help="API requests per second your account allows (submissions and task reads "
        "together), when known: every request is paced just below it. Default: none; the "
        "client learns a pace from the first 429 (too_many_requests) and all rows pause once",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``nanobanana`` argument parser (subcommands ``generate``, ``edit``, ``task``,
    ``batch``, ``simulate``, ``journal``).
    """
    parser = argparse.ArgumentParser(
        prog="nanobanana",
        description="Generate and edit images with the Nano Banana Images API (Ace Data Cloud; "
        "API reference: "
        "https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d): single "
        "requests, task look-ups, and resumable batches that never pay twice.",
        epilog=describe_exit_codes(),
        allow_abbrev=False,  # `--token` must not abbreviate `--token-env`
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=description,
            epilog=describe_exit_codes(),
            allow_abbrev=False,
        )
        _globals(p, top=False)
        return p

    gen = command(
        "generate",
        "generate images from a prompt",
        "Submit one generation, wait for it, save the images under --out and print their paths.",
    )
    gen.add_argument("prompt", help="the text prompt")
    _request_options(gen, batch=False)
    gen.add_argument("--key", help="idempotency key: the same key again never pays twice")
    _run_options(gen, batch=False)

    edit = command(
        "edit",
        "edit images as a prompt says",
        "Submit one edit of IMAGE(s) (http(s) URLs or local files), wait, save and print paths.",
    )
    edit.add_argument("prompt", help="what to change")
    edit.add_argument("images", nargs="+", metavar="IMAGE", help="http(s) URL or local file")
    _request_options(edit, batch=False)
    edit.add_argument("--key", help="idempotency key: the same key again never pays twice")
    _run_options(edit, batch=False)

    task = command(
        "task",
        "print the status of tasks",
        "Print each task's status (pending included); --wait waits for the pending ones. "
        "An unknown id exits 1.",
    )
    task.add_argument("ids", nargs="+", metavar="ID", help="task id")
    task.add_argument("--wait", action="store_true", help="wait until each task ends")
    task.add_argument("--out", metavar="DIR", help="save the images of finished tasks here")
    task.add_argument("--json", action="store_true", help="one JSON line per task on stdout")
    _wait_options(task)

    batch = command(
        "batch",
        "run a JSONL or CSV file of requests, resumably",
        "Validate every row of FILE (.jsonl or .csv; columns prompt, id, action, images, model, "
        "aspect_ratio, resolution, count), then submit them with at most --concurrency in "
        "flight, save the images and append one line per row to <out>/manifest.jsonl. "
        "Re-running the same command resumes: finished rows are not resubmitted, submitted "
        "rows are polled, uncertain rows are reported (exit 4) unless --resubmit-uncertain. "
        "CSV images: URLs or paths separated by whitespace, relative to FILE.",
    )
    batch.add_argument("file", metavar="FILE", help="requests, one per row (.jsonl or .csv)")
    _request_options(batch, batch=True)
    batch.add_argument(
        "--concurrency",
        type=_positive(int),
        default=8,
        metavar="N",
        help="submissions in flight at most (default 8)",
    )
    batch.add_argument(
        "--skip-invalid",
        action="store_true",
        help="run the valid rows and mark invalid ones 'invalid' in the manifest (exit 1) "
        "instead of stopping before any request (exit 2)",
    )
    batch.add_argument(
        "--report", action="store_true", help="write <out>/report.html at the end (see `report`)"
    )
    _run_options(batch, batch=True)
    add_report_parser(sub)

    sim = command(
        "simulate",
        "run the loopback API simulator",
        "Serve the Nano Banana API simulator on 127.0.0.1 in the foreground and print its base "
        "URL (Ctrl-C stops it).",
    )
    sim.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    sim.add_argument(
        "--port", type=_positive(int, allow_zero=True), default=8765, help="0 = any (default 8765)"
    )
    sim.add_argument("--path-prefix", default="", help="also serve under this path, e.g. /v1")
    sim.add_argument(
        "--token",
        dest="sim_token",
        default="sim-token",
        help="the token the simulator accepts ('' = any; default sim-token). Not an API token",
    )
    sim.add_argument(
        "--task-duration", type=_positive(float, allow_zero=True), default=0.0, metavar="S"
    )
    sim.add_argument(
        "--submit-latency", type=_positive(float, allow_zero=True), default=0.0, metavar="S"
    )

    jour = command(
        "journal",
        "list or settle journal keys by hand",
        "Inspect the journal and settle uncertain keys: `resolve KEY --task-id ID` when the "
        "task ran (the next run polls it), `forget KEY` when it did not (the next run submits).",
    )
    jsub = jour.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    jlist = jsub.add_parser(
        "list", allow_abbrev=False, help="list keys with their status and task id"
    )
    jlist.add_argument(
        "--state", choices=("reserved", "submitted", "succeeded", "failed"), help="only this state"
    )
    jlist.add_argument("--json", action="store_true", help="one JSON line per key")
    jres = jsub.add_parser(
        "resolve", allow_abbrev=False, help="record the task a key's submission created"
    )
    jres.add_argument("key", metavar="KEY")
    jres.add_argument("--task-id", required=True, metavar="ID")
    jfor = jsub.add_parser(
        "forget", allow_abbrev=False, help="delete a key: the next run submits (and pays) again"
    )
    jfor.add_argument("key", metavar="KEY")
    jfor.add_argument(
        "--force",
        action="store_true",
        help="also forget a key whose task is recorded (it was paid for; its id is printed)",
    )
    for p in (jlist, jres, jfor):
        p.add_argument(
            "--journal",
            metavar="PATH",
            default="out/journal.sqlite",
            help="journal file, or a postgresql:// URL (default out/journal.sqlite)",
        )
        _globals(p, top=False)
    return parser


def _run(args: argparse.Namespace, output: Output) -> int:
    if args.command in ("generate", "edit"):
        return cmd_generate(args, output, args.command)
    if args.command == "task":
        return cmd_task(args, output)
    if args.command == "batch":
        return cmd_batch(args, output)
    if args.command == "journal":
        return cmd_journal(args, output)
    if args.command == "report":
        return cmd_report(args, output)
    return cmd_simulate(args, output)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nanobanana`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    SIGTERM is handled like Ctrl-C (exit 143 instead of 130) when called from the main thread.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    output = Output(json_lines=bool(getattr(args, "json", False)), quiet=bool(args.quiet))
    package = logging.getLogger("langchain_nanobanana")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nanobanana: %(levelname)s: %(message)s"))
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    old_level, old_propagate = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.ERROR if args.quiet else level)
    package.propagate = False
    terminated = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:

        def on_term(signum: int, frame: FrameType | None) -> None:
            terminated.set()
            _interrupt(signum, frame)

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        code = _run(args, output)
    except CLIError as exc:
        output.error(f"nanobanana: error: {exc.message}")
        code = exc.exit_code
    except KeyboardInterrupt:
        output.error("nanobanana: interrupted")
        code = EXIT_INTERRUPTED
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        package.removeHandler(handler)
        package.setLevel(old_level)
        package.propagate = old_propagate
    if code == EXIT_INTERRUPTED and terminated.is_set():
        return 128 + signal.SIGTERM
    return code
