"""The ``nanobanana`` subcommands: ``generate``/``edit``, ``task``, ``batch``, ``journal``,
``simulate``. Each takes the parsed ``argparse.Namespace`` and the :class:`Output` and returns the
exit code; problems found before any request raise :class:`CLIError`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_nanobanana._request import build_request
from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.errors import InvalidRequestError, NanoBananaError
from langchain_nanobanana.journal import KeyStore, request_identity
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.progress import ProgressBar, progress_event
from langchain_nanobanana.results import ImageResult

from .batch import Batch, BatchOptions, summary
from .common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNCERTAIN,
    EXIT_USAGE,
    CLIError,
    Output,
    classify,
    client_options,
    download_result,
    error_info,
    files_present,
    line_record,
    lock_out_dir,
    make_client,
    open_journal,
    prepare_out_dir,
    worst,
)
from .report import report_after_batch
from .rows import Defaults, RowError, describe, plan_rows

__all__ = ["cmd_batch", "cmd_generate", "cmd_task", "describe_exit_codes"]

logger = logging.getLogger(__name__)

#: Row errors listed before "... and N more".
_MAX_LISTED = 20


def _progress(output: Output) -> ProgressBar | None:
    if output.quiet:
        return None
    tty = output.stderr.isatty()
    return ProgressBar(file=output.stderr, desc="nanobanana", use_tqdm=None if tty else False)


def wait_for(
    client: NanoBananaClient, task_ids: Sequence[str], output: Output, max_wait: float
) -> list[tuple[str, Any]]:
    """Wait for ``task_ids`` on the client's poller with a progress bar on stderr.

    Returns:
        ``(task_id, ImageResult | exception)`` in the order the tasks ended.

    """
    bar = _progress(output)
    started = time.monotonic()
    outcomes: list[tuple[str, Any]] = []
    try:
        on_progress = bar.update if bar is not None else None
        for item in client.iter_outcomes(task_ids, max_wait=max_wait, on_progress=on_progress):
            outcomes.append(item)
        return outcomes
    finally:
        if bar is not None:
            if outcomes:  # the last round's event comes after the outcomes: draw the end too
                ended = {
                    t: "succeeded" if isinstance(o, ImageResult) else "failed" for t, o in outcomes
                }
                bar.update(progress_event(1, time.monotonic() - started, ended))
            bar.close()


# -- generate / edit ---------------------------------------------------------------------------


def _build(args: argparse.Namespace, action: str) -> ImageRequest:
    try:
        return build_request(
            action,
            args.prompt,
            list(args.images) if action == "edit" else None,
            model=args.model,
            aspect_ratio=args.aspect_ratio,
            resolution=args.resolution,
            count=args.count,
            images_field="images",
        )
    except InvalidRequestError as exc:
        raise CLIError(f"{exc.message} (nothing was sent)") from None


def cmd_generate(args: argparse.Namespace, output: Output, action: str = "generate") -> int:
    """``nanobanana generate|edit``: submit one request, wait, save the images under ``--out``,
    print their paths (``--no-download``: URLs), or one ``--json`` line.

    Before any request: the token and base URL (exit 3), the request (exit 2), the output folder
    and the journal (``--key``; exit 2). With ``--key`` a key that already succeeded prints its
    recorded files without any request.
    """
    options = client_options(args)
    make_client(options, need_token=True).close()  # exit 3 before anything else
    request = _build(args, action)
    download = not args.no_download
    out = prepare_out_dir(args.out) if download or args.key else None
    key: str | None = args.key
    result: ImageResult | None = None
    files: list[str] = []
    with contextlib.ExitStack() as stack:
        if out is not None:
            stack.enter_context(lock_out_dir(out, exclusive=False))
        journal: KeyStore | None = None
        if args.key or args.journal:
            path = args.journal or Path(args.out) / "journal.sqlite"
            journal = stack.enter_context(open_journal(path))
        client = stack.enter_context(make_client(options, journal=journal))
        try:
            entry = journal.get(client.base_url, key) if journal is not None and key else None
            if (
                entry is not None
                and entry.state == "succeeded"
                and entry.identity == request_identity(request.to_payload())
                and entry.result
                and (not download or files_present(entry.files))
            ):
                result, files = ImageResult.model_validate(entry.result), entry.files
                output.note(f"nanobanana: key {key!r} already succeeded: nothing sent")
            else:
                result = _run_one(client, request, args, output)
                if download:
                    assert out is not None
                    files = download_result(client, journal, key, result, out)
        except KeyboardInterrupt:
            output.error("nanobanana: interrupted; a submitted task keeps running (see above)")
            return EXIT_INTERRUPTED
        except NanoBananaError as exc:
            status, code = classify(exc)
            if result is not None and result.status == "succeeded":
                status, code = "pending", EXIT_FAILED  # paid and recorded; the download failed
            label = "error" if code == EXIT_CONFIG else status
            output.error(f"nanobanana: {label}: {exc}")
            if output.json_lines:
                output.record(
                    line_record(
                        id=key,
                        status=status,
                        task_id=exc.task_id or (result.task_id if result else None),
                        trace_id=exc.trace_id,
                        urls=result.urls if result else (),
                        error=error_info(exc),
                    )
                )
            return code
    if output.json_lines:
        output.record(
            line_record(
                id=key,
                status="succeeded",
                task_id=result.task_id,
                trace_id=result.trace_id,
                files=files,
                urls=result.urls,
            )
        )
    else:
        for item in files or result.urls:
            output.result(item)
    return EXIT_OK


def _run_one(
    client: NanoBananaClient, request: ImageRequest, args: argparse.Namespace, output: Output
) -> ImageResult:
    result = client.submit(
        request,
        wait=False,
        idempotency_key=args.key,
        resubmit_uncertain=args.resubmit_uncertain,
        retry_failed=args.retry_failed,
    )
    if result.status != "pending":
        return result.raise_for_status()
    assert result.task_id is not None
    output.note(f"nanobanana: task {result.task_id} submitted; waiting")
    for _, outcome in wait_for(client, [result.task_id], output, args.max_wait):
        if isinstance(outcome, BaseException):
            raise outcome
        done: ImageResult = outcome
        return done.raise_for_status()
    raise AssertionError("unreachable: a wait always ends with an outcome")


# -- task --------------------------------------------------------------------------------------


def cmd_task(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana task ID [ID ...]``: print each task's status (``--wait``: wait for the
    pending ones; ``--out DIR``: save the images of finished ones). An unknown id exits 1.
    """
    ids = list(dict.fromkeys(args.ids))
    out = prepare_out_dir(args.out) if args.out else None
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
                human = f"{task_id}\t{status}\t{outcome}"
                _emit(output, record, human)
                return exc_code
            result: ImageResult = outcome
            error = result.error.model_dump() if result.error else None
            if result.status == "succeeded" and out is not None:
                try:
                    files = download_result(client, None, None, result, out)
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
                detail = f"{result.error.code}: {result.error.message}"
            else:
                detail = " ".join(files or result.urls)
            _emit(output, record, f"{task_id}\t{result.status}\t{detail}".rstrip())
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
                _emit(output, missing, f"{task_id}\tunknown\tno such task")
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


def cmd_batch(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana batch FILE``: validate every row, then run them (see ``_cli.batch``).

    Before any request, in this order: the token and base URL (exit 3), every row (exit 2 unless
    ``--skip-invalid``), the output folder and its lock (exit 2), the journal (exit 2), keys the
    journal records for another request (exit 2 unless ``--skip-invalid``).
    """
    options = client_options(args)
    make_client(options).close()  # no token / bad base URL: exit 3 before reading anything
    path = Path(args.file)
    defaults = Defaults(args.model, args.aspect_ratio, args.resolution, args.count)
    plans, errors = plan_rows(path, defaults)
    if not plans and not errors:
        raise CLIError(f"{path} has no rows")
    _report_invalid(path, errors, args.skip_invalid, output)
    out = prepare_out_dir(args.out)
    with contextlib.ExitStack() as stack:
        stack.enter_context(lock_out_dir(out, exclusive=True))
        journal = stack.enter_context(open_journal(args.journal or out / "journal.sqlite"))
        client = stack.enter_context(make_client(options, journal=journal))
        client.ensure_pool_size(args.concurrency * 2 + 4)
        reused, known = _check_keys(journal, client.base_url, plans)
        if reused:
            _report_invalid(path, reused, args.skip_invalid, output, journal=True)
            errors = sorted([*errors, *reused], key=lambda e: e.line)
            taken = {e.line for e in reused}
            plans = [p for p in plans if p.line not in taken]
        try:
            manifest = stack.enter_context((out / "manifest.jsonl").open("a", encoding="utf-8"))
        except OSError as exc:
            raise CLIError(f"cannot write {out / 'manifest.jsonl'}: {exc.strerror}") from None
        batch = Batch(
            path=path,
            defaults=defaults,
            plans=plans,
            skipped={e.line for e in errors},
            known=known,
            client=client,
            journal=journal,
            out=out,
            manifest=manifest,
            output=output,
            options=BatchOptions(
                concurrency=args.concurrency,
                download=not args.no_download,
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
    if counts.get("uncertain"):
        output.note(
            "nanobanana: uncertain rows may have been billed without a known task: look each "
            f"one up (`nanobanana journal list --journal {journal.path}`), then `nanobanana "
            "journal resolve KEY --task-id ID` (it ran) or `nanobanana journal forget KEY` (it "
            "did not), or re-run with --resubmit-uncertain (may pay twice)"
        )
    if code == EXIT_INTERRUPTED:
        output.note("nanobanana: interrupted; re-run the same command to resume")
    if not output.json_lines:
        output.result(str(out / "manifest.jsonl"))
    if getattr(args, "report", False):
        code = worst(code, report_after_batch(args.out, output))
    return code


def _report_invalid(
    path: Path,
    errors: list[RowError],
    skip: bool,
    output: Output,
    *,
    journal: bool = False,
) -> None:
    if not errors:
        return
    for error in errors[:_MAX_LISTED]:
        output.error(f"nanobanana: invalid row: {describe(path, error)}")
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
    the keys the journal knows at all (the others need no look-up before their submission).
    """
    reused: list[RowError] = []
    known: set[str] = set()
    for plan in plans:
        entry = journal.get(scope, plan.key)
        if entry is None:
            continue
        known.add(plan.key)
        if entry.identity != plan.identity:
            reused.append(
                RowError(
                    plan.line,
                    "id",
                    f"key {plan.key!r} already names another request in the journal "
                    f"({entry.state}, task {entry.task_id}); use a new id, or "
                    f"`nanobanana journal forget {plan.key}`",
                    id=plan.key,
                )
            )
    return reused, known


def describe_exit_codes() -> str:
    """The exit-code table shown by ``--help``."""
    return (
        "exit codes (highest wins: 3 > 2 > 4 > 1 > 0): "
        f"{EXIT_OK} all succeeded; {EXIT_FAILED} some row failed or is still pending, or an "
        f"unknown task id; {EXIT_UNCERTAIN} some submission is uncertain (maybe billed: "
        f"`nanobanana journal resolve|forget`); {EXIT_USAGE} usage or bad input, before any "
        f"request; {EXIT_CONFIG} authentication, configuration or balance; "
        f"{EXIT_INTERRUPTED} interrupted (Ctrl-C) after recording what was in flight"
    )
