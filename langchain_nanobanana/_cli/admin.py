"""The ``nanobanana journal`` (list, resolve, forget) and ``nanobanana simulate`` subcommands:
nothing here sends a billable request.
"""

from __future__ import annotations

import argparse
import datetime

from langchain_nanobanana.journal import JournalError, KeyStore

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    CLIError,
    Output,
    client_options,
    make_client,
    open_journal,
)

__all__ = ["cmd_journal", "cmd_simulate"]


# -- journal -----------------------------------------------------------------------------------


def _scope_for(journal: KeyStore, key: str, args: argparse.Namespace) -> str:
    client = make_client(client_options(args), need_token=False)
    client.close()
    if journal.get(client.base_url, key) is not None:
        return client.base_url
    scopes = sorted({e.scope for e in journal.entries(key=key)})
    if len(scopes) == 1:
        return scopes[0]
    if not scopes:
        raise CLIError(f"no journal entry for key {key!r} in {journal.path}", EXIT_FAILED)
    raise CLIError(
        f"key {key!r} is in several scopes ({', '.join(scopes)}); pick one with --base-url"
    )


def _cell(value: str) -> str:
    """A value as one tab-separated cell: backslash, tab, CR and newline escaped, so a key or id
    holding them cannot forge or split rows of ``journal list``.
    """
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _when(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).isoformat(timespec="seconds")


def cmd_journal(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana journal list | resolve KEY --task-id ID | forget KEY``."""
    journal = open_journal(args.journal, create=False)
    try:
        if args.journal_command == "list":
            for entry in journal.entries(state=args.state):
                status = journal.status(entry)
                if output.json_lines:
                    output.record(
                        {
                            "key": entry.key,
                            "status": status,
                            "task_id": entry.task_id,
                            "trace_id": entry.trace_id,
                            "scope": entry.scope,
                            "files": entry.files,
                            "error": entry.error_message,
                            "updated_at": entry.updated_at,
                        }
                    )
                else:
                    output.result(
                        "\t".join(
                            _cell(cell)
                            for cell in (
                                entry.key,
                                status,
                                entry.task_id or "-",
                                entry.scope,
                                _when(entry.updated_at),
                            )
                        )
                    )
            return EXIT_OK
        scope = _scope_for(journal, args.key, args)
        if args.journal_command == "resolve":
            journal.resolve(scope, args.key, args.task_id)
            output.note(
                f"nanobanana: key {args.key!r} now records task {args.task_id}: the next run "
                "polls it instead of submitting"
            )
            return EXIT_OK
        known = journal.get(scope, args.key)
        journal.forget(scope, args.key, force=args.force)
        paid = f" (its task {known.task_id} was paid for)" if known and known.task_id else ""
        output.note(f"nanobanana: key {args.key!r} forgotten{paid}: the next run submits it again")
        return EXIT_OK
    except JournalError as exc:
        raise CLIError(exc.message) from None
    finally:
        journal.close()


# -- simulate ----------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana simulate``: run the loopback simulator in the foreground (Ctrl-C stops)."""
    from langchain_nanobanana.testing.__main__ import main as simulator_main

    argv = [
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--token",
        args.sim_token,
        "--task-duration",
        str(args.task_duration),
        "--submit-latency",
        str(args.submit_latency),
    ]
    if args.path_prefix:
        argv += ["--path-prefix", args.path_prefix]
    try:
        return simulator_main(argv)
    except OSError as exc:
        raise CLIError(f"cannot start the simulator: {exc.strerror or exc}") from None
