"""The ``nanobanana`` subcommands ``task`` and ``batch`` (``generate``/``edit``/``wait`` are in
``single``, ``models``/``completion`` in ``info``, ``journal``/``simulate`` in ``admin``). Each
takes the parsed ``argparse.Namespace`` and the :class:`Output` and returns the exit code; problems
found before any request raise :class:`CLIError`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from langchain_nanobanana.errors import NanoBananaError
from langchain_nanobanana.journal import KeyStore
from langchain_nanobanana.results import ImageResult

from .batch import Batch
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CLIError,
    Output,
    classify,
    client_options,
    download_result,
    error_info,
    line_record,
    lock_out_dir,
    make_client,
    open_journal,
    prepare_out_dir,
    worst,
)
from .ledger import BatchOptions, summary
from .output import display_path, escape_field
from .report import report_after_batch
from .rows import Defaults, RowError
from .single import wait_for
from .source import Source, describe, plan_rows

__all__ = ["cmd_batch", "cmd_task"]

logger = logging.getLogger(__name__)

#: Row errors listed before "... and N more".
_MAX_LISTED = 20


# -- task --------------------------------------------------------------------------------------


def cmd_task(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana task ID [ID ...]``: print each task's status (``--wait``: wait for the
    pending ones; ``--out DIR``: save the images of finished ones). An unknown id exits 1.
    """
    ids = list(dict.fromkeys(args.ids))
    out = prepare_out_dir(args.out) if args.out else None
    shown = escape_field
    code = EXIT_OK
    with contextlib.ExitStack() as stack:
        if out is not None:
            stack.enter_context(lock_out_dir(out, exclusive=False))
        client = stack.enter_context(make_client(client_options(args)))

        def show(task_id: str, outcome: Any) -> int:
            files: list[str] = []
            if isinstance(outcome, BaseException):
                status, exc_code = classify(outcome)
                record = line_record(
                    id=None,
                    status=status,
                    task_id=task_id,
                    trace_id=getattr(outcome, "trace_id", None),
                    error=error_info(outcome),
                )
                human = f"{shown(task_id)}\t{status}\t{shown(str(outcome))}"
                _emit(output, record, human)
                return exc_code
            result: ImageResult = outcome
            error = result.error.model_dump() if result.error else None
            if result.status == "succeeded" and out is not None:
                try:
                    files = download_result(client, None, None, result, out)
                    files = [display_path(f, args.out, out) for f in files]
                except NanoBananaError as exc:
                    output.error(f"nanobanana: {task_id}: download failed: {exc}")
                    error = error_info(exc)
            record = line_record(
                id=None,
                status=result.status,
                task_id=task_id,
                trace_id=result.trace_id,
                files=files,
                urls=result.urls,
                error=error,
            )
            if result.status == "failed" and result.error is not None:
                detail = shown(f"{result.error.code}: {result.error.message}")
            else:
                detail = " ".join(shown(f) for f in files or result.urls)
            _emit(output, record, f"{shown(task_id)}\t{result.status}\t{detail}".rstrip())
            return EXIT_FAILED if result.status == "failed" else EXIT_OK

        try:
            records = {r.id: r for r in client.get_tasks(ids)}
        except NanoBananaError as exc:
            exc_code = classify(exc)[1]
            output.error(f"nanobanana: error: {exc}")
            return worst(exc_code, EXIT_FAILED)
        pending: list[str] = []
        for task_id in ids:
            record = records.get(task_id)
            if record is None:
                missing = line_record(
                    id=None,
                    status="unknown",
                    task_id=task_id,
                    error={"type": "NotFound", "code": "not_found", "message": "no such task"},
                )
                _emit(output, missing, f"{shown(task_id)}\tunknown\tno such task")
                code = worst(code, EXIT_FAILED)
            elif record.status == "pending" and args.wait:
                pending.append(task_id)
            else:
                code = worst(code, show(task_id, record.to_result()))
        if pending:
            try:
                for task_id, outcome in wait_for(client, pending, output, args.max_wait):
                    code = worst(code, show(task_id, outcome))
            except KeyboardInterrupt:
                output.error("nanobanana: interrupted; the tasks keep running")
                return EXIT_INTERRUPTED
    return code


def _emit(output: Output, record: dict[str, Any], human: str) -> None:
    if output.json_lines:
        output.record(record)
    else:
        output.result(human)


# -- batch -------------------------------------------------------------------------------------


def _source(args: argparse.Namespace, stack: contextlib.ExitStack) -> Source:
    """FILE, or for ``-`` standard input copied to a temporary file (deleted at the end): the
    rows are read twice (validated first, then run).
    """
    if args.file != "-":
        return Source.from_file(Path(args.file), args.format)
    from .single import read_stdin

    data = read_stdin("the batch")
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="nanobanana-stdin-"))
    path = Path(tmp) / "stdin"
    path.write_bytes(data)
    return Source(path, "<stdin>", Path.cwd(), args.format or "jsonl")


def _open_manifest(path: Path, stack: contextlib.ExitStack) -> IO[str]:
    """``manifest.jsonl`` opened for appending; a torn last line (a killed run) is ended first,
    so it never glues onto this run's first record.
    """
    try:
        torn = path.is_file() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
        manifest = stack.enter_context(path.open("a", encoding="utf-8"))
        if torn:
            manifest.write("\n")
            manifest.flush()
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    return manifest


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def cmd_batch(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana batch FILE|-``: validate every row, then run them (see ``_cli.batch``).

    Before any request, in this order: the token and base URL (exit 3), every row (exit 2 unless
    ``--skip-invalid``; a CSV with an unclosed quote is exit 2), the output folder and its lock
    (exit 2), the journal (exit 2), keys the journal records for another request (exit 2 unless
    ``--skip-invalid``).
    """
    options = client_options(args)
    make_client(options).close()  # no token / bad base URL: exit 3 before reading anything
    defaults = Defaults(
        args.model, args.aspect_ratio, args.resolution, args.count, args.callback_url
    )
    out_arg = args.out or "out"
    with contextlib.ExitStack() as stack:
        source = _source(args, stack)
        plans, errors = plan_rows(source, defaults)
        if not plans and not errors:
            raise CLIError(f"{source.name} has no rows")
        _report_invalid(source, errors, args.skip_invalid, output)
        out = prepare_out_dir(out_arg)
        stack.enter_context(lock_out_dir(out, exclusive=True))
        journal = stack.enter_context(open_journal(args.journal or out / "journal.sqlite"))
        client = stack.enter_context(make_client(options, journal=journal))
        client.ensure_pool_size(args.concurrency * 2 + 4)
        reused, known = _check_keys(journal, client.base_url, plans)
        if reused:
            _report_invalid(source, reused, args.skip_invalid, output, journal=True)
            errors = sorted([*errors, *reused], key=lambda e: e.line)
            taken = {e.line for e in reused}
            plans = [p for p in plans if p.line not in taken]
        batch = Batch(
            source=source,
            defaults=defaults,
            plans=plans,
            known=known,
            skipped={e.line for e in errors},
            client=client,
            journal=journal,
            out=out,
            manifest=_open_manifest(out / "manifest.jsonl", stack),
            output=output,
            options=BatchOptions(
                concurrency=args.concurrency,
                download=not args.no_download,
                wait=not args.no_wait,
                resubmit_uncertain=args.resubmit_uncertain,
                retry_failed=args.retry_failed,
                max_wait=args.max_wait,
                progress=not output.quiet,
            ),
        )
        for error in errors:
            batch.write_line(
                line_record(
                    id=error.key(),
                    status="invalid",
                    error={"type": "InvalidRow", "code": error.field, "message": str(error)},
                )
            )
            batch.counts["invalid"] += 1
        code = worst(EXIT_FAILED if errors else EXIT_OK, batch.run())
    counts = batch.counts
    output.note(f"nanobanana: {summary(counts, len(plans) + len(errors))}")
    if batch.fatal is not None:
        reason = getattr(batch.fatal, "message", None) or repr(batch.fatal)
        output.error(f"nanobanana: error: the run stopped: {reason}; re-run to go on")
    if counts.get("uncertain"):
        output.note(
            "nanobanana: uncertain rows may have been billed without a known task: look each "
            f"one up (`nanobanana journal list --journal {journal.path}`), then `nanobanana "
            "journal resolve KEY --task-id ID` (it ran) or `nanobanana journal forget KEY` (it "
            "did not), or re-run with --resubmit-uncertain (may pay twice)"
        )
    if code == EXIT_INTERRUPTED:
        output.note("nanobanana: interrupted; re-run the same command to resume")
    elif not args.no_wait or counts.get("pending") is None:
        pass
    else:
        output.note("nanobanana: submitted; run the same command again to wait and download")
    if not output.json_lines and batch.fatal is None:
        output.result(os.path.join(out_arg, "manifest.jsonl"))
    if getattr(args, "report", False):
        code = worst(code, report_after_batch(out_arg, output))
    return code


def _report_invalid(
    source: Source,
    errors: list[RowError],
    skip: bool,
    output: Output,
    *,
    journal: bool = False,
) -> None:
    if not errors:
        return
    for error in errors[:_MAX_LISTED]:
        output.error(f"nanobanana: invalid row: {describe(source, error)}")
    if len(errors) > _MAX_LISTED:
        output.error(f"nanobanana: ... and {len(errors) - _MAX_LISTED} more invalid row(s)")
    if not skip:
        what = "reuse a key of another request" if journal else "are invalid"
        raise CLIError(
            f"{len(errors)} row(s) {what}; nothing was sent. Fix them, or pass --skip-invalid "
            f"to run the other rows (invalid rows are marked 'invalid' in the manifest)"
        )
    output.note(f"nanobanana: skipping {len(errors)} invalid row(s) (--skip-invalid)")


def _check_keys(journal: KeyStore, scope: str, plans: list[Any]) -> tuple[list[RowError], set[str]]:
    """Rows whose key the journal records for another request (nothing is sent for them), and
    the keys the journal records at all (one read for the whole file; a row whose key it did
    not record needs no look-up before its submission).
    """
    recorded = journal.keys(scope)
    reused: list[RowError] = []
    known: set[str] = set()
    for plan in plans:
        found = recorded.get(plan.key)
        if found is None:
            continue
        identity, state, task_id = found
        if identity != plan.identity:
            reused.append(
                RowError(
                    plan.line,
                    "id",
                    f"key {plan.key!r} already names another request in the journal "
                    f"({state}, task {task_id}); use a new id, or "
                    f"`nanobanana journal forget {plan.key}`",
                    id=plan.key,
                )
            )
        else:
            known.add(plan.key)
    return reused, known
