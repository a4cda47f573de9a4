"""The ``nanobanana`` argument parser, built from light modules only (``nanobanana --help`` must
not import pydantic, the HTTP stack or ``langchain_core``): the models' names are read when an
option's value is checked or a subcommand's help is shown, through :class:`LazyChoices`.

To add a subcommand: write ``_add_NAME(sub)`` here, call it in :func:`build_parser`, and name its
handler in ``COMMANDS`` (``"module:function"`` under ``langchain_nanobanana._cli``; imported only
when that subcommand runs).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .options import (
    EXAMPLES,
    connection_options,
    number,
    request_options,
    run_options,
    stdin_or,
    verbosity_options,
    wait_options,
)
from .output import describe_exit_codes
from .report import add_parser as add_report_parser

__all__ = ["COMMANDS", "MAX_CONCURRENCY", "build_parser", "iter_parsers"]

#: Subcommand -> ``"module:function"`` in ``langchain_nanobanana._cli`` (imported on dispatch).
COMMANDS: dict[str, str] = {
    "generate": "single:cmd_generate",
    "edit": "single:cmd_generate",
    "wait": "single:cmd_wait",
    "task": "commands:cmd_task",
    "batch": "commands:cmd_batch",
    "models": "info:cmd_models",
    "completion": "info:cmd_completion",
    "report": "report:cmd_report",
    "simulate": "admin:cmd_simulate",
    "journal": "admin:cmd_journal",
}

#: Largest ``--concurrency``: one worker thread and two pooled connections per unit.
MAX_CONCURRENCY = 256


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose "unrecognized arguments" error names the options but never
    echoes their values: ``--token sk-...`` (an option we refuse) must not print the token.
    """

    def error(self, message: str) -> NoReturn:
        """Exit 2 with ``message``, the values of unrecognized arguments left out."""
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            words = message[len(prefix) :].split()
            names = [
                w.split("=", 1)[0] + ("=..." if "=" in w else "") for w in words if w[:1] == "-"
            ]
            hidden = len(words) - len(names)
            note = f" (and {hidden} value(s), not shown)" if hidden else ""
            message = prefix + (" ".join(names) or "values") + note
        # a value taken for a subcommand (``--token sk-... models``) is not echoed either
        message = re.sub(r"invalid choice: '.*?' \(", "invalid choice (", message, flags=re.S)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``nanobanana`` argument parser (subcommands in :data:`COMMANDS`)."""
    from langchain_nanobanana import __version__

    parser = _Parser(
        prog="nanobanana",
        description="Generate and edit images with the Nano Banana Images API (Ace Data Cloud):\n"
        "single requests, task look-ups, and resumable batches that never pay twice.\n"
        "API reference: "
        "https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d",
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
    connection_options(parser, top=True)
    verbosity_options(parser, top=True)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, help="what to do (COMMAND --help)"
    )

    def command(name: str, help: str, description: str, *, api: bool = True) -> Any:
        epilog = EXAMPLES[name] + ("\n\n" + describe_exit_codes() if api else "")
        p = sub.add_parser(
            name,
            help=help,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        if api:
            connection_options(p, top=False)
        verbosity_options(p, top=False)
        return p

    gen = command(
        "generate",
        "generate images from a prompt",
        "Submit one generation, wait for it, save the images under --out and print their paths.",
    )
    gen.add_argument("prompt", metavar="PROMPT", help=stdin_or("the text prompt"))
    request_options(gen, batch=False)
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
    run_options(gen, batch=False)

    edit = command(
        "edit",
        "edit images as a prompt says",
        "Submit one edit of IMAGE(s) (http(s) URLs or local files), wait, save and print paths.",
    )
    edit.add_argument("prompt", metavar="PROMPT", help=stdin_or("what to change"))
    edit.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help=stdin_or("http(s) URL or local file (one image's bytes)"),
    )
    request_options(edit, batch=False)
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
    run_options(edit, batch=False)

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
    wait_options(wait)

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
    wait_options(task)

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
        "file", metavar="FILE", help=stdin_or("requests, one per row (.jsonl or .csv)")
    )
    batch.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="the rows' format (default: from FILE's extension; jsonl for -)",
    )
    request_options(batch, batch=True)
    batch.add_argument(
        "--concurrency",
        type=number(int, 1, MAX_CONCURRENCY),
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
    batch.add_argument(
        "--report", action="store_true", help="write <out>/report.html at the end (see `report`)"
    )
    run_options(batch, batch=True)
    add_report_parser(sub)  # type: ignore[arg-type]  # a _Parser is an ArgumentParser

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
        type=number(int, 0, 65535),
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
        type=number(float, 0.0),
        default=0.0,
        metavar="S",
        help="seconds each simulated task runs before it succeeds (default 0)",
    )
    sim.add_argument(
        "--submit-latency",
        type=number(float, 0.0),
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
        "list",
        allow_abbrev=False,
        help="list keys with their status and task id",
        description="List keys with their status and task id.",
        epilog=EXAMPLES["journal"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    jlist.add_argument(
        "--state",
        choices=("reserved", "submitted", "succeeded", "failed"),
        help="only keys in this state: %(choices)s",
    )
    jlist.add_argument("--json", action="store_true", help="one JSON line per key")
    jres = jsub.add_parser(
        "resolve",
        allow_abbrev=False,
        help="record the task a key's submission created",
        description="Record the task a key's submission created.",
        epilog=EXAMPLES["journal"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    jres.add_argument("key", metavar="KEY", help="the idempotency key (a row's id)")
    jres.add_argument(
        "--task-id",
        required=True,
        metavar="ID",
        help="the task the key's submission created (from the vendor's console or a callback)",
    )
    jfor = jsub.add_parser(
        "forget",
        allow_abbrev=False,
        help="delete a key: the next run submits (and pays) again",
        description="Delete a key: the next run submits (and pays) again.",
        epilog=EXAMPLES["journal"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    jfor.add_argument("key", metavar="KEY", help="the idempotency key (a row's id)")
    jfor.add_argument(
        "--force",
        action="store_true",
        help="also forget a key whose task is recorded (it was paid for; its id is printed)",
    )
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
            help="journal file, or a postgresql:// URL (default out/journal.sqlite)",
        )
        verbosity_options(p, top=False)


def iter_parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(prog, parser)`` for ``parser`` and every subparser under it, depth first."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from iter_parsers(child)
