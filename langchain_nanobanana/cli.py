"""The ``nanobanana`` command line (also ``python -m langchain_nanobanana``).

Subcommands (``nanobanana COMMAND --help`` shows each one's options and examples)::

    nanobanana generate PROMPT|- [-m MODEL] [-a RATIO] [-r SIZE] [-n N] [-o DIR] [--key KEY]
                                 [--no-wait] [--callback-url URL] [--json] ...
    nanobanana edit PROMPT|- [IMAGE|- ...] [-i IMAGE ...]   (URLs or local files; same options)
    nanobanana wait TASK_ID ... | --key KEY                 (after --no-wait)
    nanobanana task ID [ID ...] [--wait] [-o DIR] [--json]
    nanobanana batch FILE|- [--format jsonl|csv] [-o DIR] [--concurrency N] [--no-wait] ...
    nanobanana models [--json]
    nanobanana completion bash|zsh|fish
    nanobanana simulate [--port P] [--path-prefix /v1] [--token T] [--task-duration S]
    nanobanana journal list | resolve KEY --task-id ID | forget KEY  [--journal PATH]

Options of the API commands: ``--base-url URL`` (default ``$ACEDATACLOUD_API_BASE_URL``, else the
vendor's), ``--token-env NAME`` (the environment variable holding the API token, default
``ACEDATACLOUD_API_TOKEN``; a token is never taken from the command line); every command takes
``-q/--quiet`` and ``-v/--verbose``.

Output: results on stdout (paths as the user gave ``--out``, or one JSON object per line with
``--json``: ``id``, ``task_id``, ``trace_id``, ``status``, ``files``, ``urls``, ``error`` -- the
schema of ``manifest.jsonl``), progress and messages on stderr (a ``tqdm`` bar on a terminal,
plain lines otherwise). Exit codes (highest wins: 3 > 2 > 4 > 1 > 0): 0 all succeeded; 1 some row
failed or is still pending, or an unknown task id; 2 usage or bad input, found before any
request; 3 authentication, configuration or balance; 4 some submission uncertain (maybe billed);
130 Ctrl-C, 143 SIGTERM, after recording what was in flight.

Start-up: this module imports only ``argparse`` and the light ``_cli.output``/``_cli.parser``;
each subcommand's module (and with it pydantic, requests, the client) is imported when that
subcommand runs, so ``nanobanana --help`` starts without them (``make bench`` measures it).

Why ``argparse``: the standard library covers subcommands, help and exit code 2 for usage
errors; the package adds no runtime dependency for its command line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from langchain_nanobanana._cli.output import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    CLIError,
    Output,
    fill_closed_std_fds,
)
from langchain_nanobanana._cli.parser import COMMANDS, build_parser

__all__ = ["build_parser", "main"]


def handler(command: str) -> Callable[[argparse.Namespace, Output], int]:
    """The function that runs ``command`` (its module imported now)."""
    module, function = COMMANDS[command].split(":")
    run: Callable[[argparse.Namespace, Output], int] = getattr(
        importlib.import_module(f"langchain_nanobanana._cli.{module}"), function
    )
    return run


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nanobanana`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    SIGTERM is handled like Ctrl-C (exit 143 instead of 130) when called from the main thread.
    """
    fill_closed_std_fds()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    output = Output(json_lines=bool(getattr(args, "json", False)), quiet=bool(args.quiet))
    package = logging.getLogger("langchain_nanobanana")
    log_handler = logging.StreamHandler(sys.stderr) if sys.stderr is not None else None
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    old_level, old_propagate = package.level, package.propagate
    if log_handler is not None:
        log_handler.setFormatter(logging.Formatter("nanobanana: %(levelname)s: %(message)s"))
        package.addHandler(log_handler)
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
        code = handler(args.command)(args, output)
    except CLIError as exc:  # OutputClosedError included: stdout went away
        output.error(f"nanobanana: error: {exc.message}")
        code = exc.exit_code
    except KeyboardInterrupt:
        output.error("nanobanana: interrupted")
        code = EXIT_INTERRUPTED
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if log_handler is not None:
            package.removeHandler(log_handler)
        package.setLevel(old_level)
        package.propagate = old_propagate
    if code == EXIT_INTERRUPTED and terminated.is_set():
        code = EXIT_TERMINATED
    if argv is None and code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        _exit_now_if_blocked(code)
    return code


def _exit_now_if_blocked(code: int) -> None:
    """After Ctrl-C or SIGTERM everything is recorded (journal, manifest, stdout); a worker
    thread still blocked in an HTTP request would hold the interpreter's exit until its timeout,
    so the console command exits at once instead (streams flushed first). Only for the console
    entry (``argv`` not given): an embedding caller keeps its process.
    """
    alive = [t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
    if not alive:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
