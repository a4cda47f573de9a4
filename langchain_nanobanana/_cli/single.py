"""``nanobanana generate`` / ``edit`` (one request) and ``nanobanana wait`` (tasks submitted with
``--no-wait``): submit, wait on the client's poller, save the images, print their paths as the
user gave ``--out`` (or one ``--json`` line per result, the manifest's schema).

Standard input: a PROMPT of ``-`` is all of stdin (UTF-8 text, stripped; empty, undecodable or
binary input is refused before any request, and a prompt that is just ``-`` is never sent); an
IMAGE of ``-`` is one image's bytes (sniffed like a file).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_nanobanana._inputs import ImageInput
from langchain_nanobanana._request import build_request
from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.errors import InvalidRequestError, NanoBananaError
from langchain_nanobanana.journal import KeyStore, request_identity
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult

from .common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
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
from .output import display_path

__all__ = ["cmd_generate", "cmd_wait", "read_stdin", "wait_for"]

logger = logging.getLogger(__name__)

#: Largest standard input read (a prompt or one image): the API's 10 MiB image bound, plus room.
MAX_STDIN_BYTES = 16 * 2**20
_TEXT_CONTROLS = {"\n", "\r", "\t"}


def read_stdin(what: str) -> bytes:
    """All of standard input (at most ``MAX_STDIN_BYTES``).

    Raises:
        CLIError: (exit 2) no standard input, unreadable, empty or too large.

    """
    stream = sys.stdin
    if stream is None:
        raise CLIError(f"{what} is '-' but there is no standard input (nothing was sent)")
    try:
        data = stream.buffer.read(MAX_STDIN_BYTES + 1)
    except (OSError, ValueError, AttributeError) as exc:
        raise CLIError(f"cannot read {what} from standard input: {exc}") from None
    if not data:
        raise CLIError(f"{what} from standard input is empty (nothing was sent)")
    if len(data) > MAX_STDIN_BYTES:
        raise CLIError(f"{what} from standard input is over {MAX_STDIN_BYTES} bytes")
    return data


def stdin_prompt() -> str:
    """The prompt from standard input: UTF-8 text, stripped.

    Raises:
        CLIError: (exit 2) empty after stripping, not UTF-8, binary (control characters other
            than tab and newlines), or just ``-``. Nothing is sent.

    """
    data = read_stdin("the prompt")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"the prompt from standard input is not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "nothing was sent"
        ) from None
    bad = next(
        (c for c in text if c not in _TEXT_CONTROLS and unicodedata.category(c) in ("Cc", "Cs")),
        None,
    )
    if bad is not None:
        raise CLIError(
            f"the prompt from standard input looks binary (control character {bad!r}); "
            "nothing was sent"
        )
    text = text.strip()
    if not text:
        raise CLIError("the prompt from standard input is empty (nothing was sent)")
    return text


def _prompt(args: argparse.Namespace) -> str:
    prompt = stdin_prompt() if args.prompt == "-" else args.prompt
    if prompt.strip() == "-":
        raise CLIError("the prompt is just '-'; nothing was sent (pipe the prompt in)")
    return prompt


def _images(args: argparse.Namespace, action: str) -> list[ImageInput] | None:
    options: list[str] = list(args.image_options)
    if action != "edit":
        if options:
            raise CLIError(
                "-i/--image is for edits: `nanobanana edit PROMPT -i IMAGE` (nothing was sent)"
            )
        return None
    given = [*args.images, *options]
    if not given:
        raise CLIError("edit needs at least one IMAGE (a URL, a file, or - for standard input)")
    if given.count("-") > 1 or ("-" in given and args.prompt == "-"):
        raise CLIError("standard input (-) can be read only once: one image, or the prompt")
    return [read_stdin("the image") if item == "-" else item for item in given]


def _build(args: argparse.Namespace, action: str) -> ImageRequest:
    images = _images(args, action)
    prompt = _prompt(args)
    try:
        return build_request(
            action,
            prompt,
            images,
            model=args.model,
            aspect_ratio=args.aspect_ratio,
            resolution=args.resolution,
            count=args.count,
            callback_url=args.callback_url,
            images_field="images",
        )
    except InvalidRequestError as exc:
        message = exc.message.replace("data:image/...;base64 URI", "local file or - (stdin)")
        raise CLIError(f"{message} (nothing was sent)") from None


def wait_for(
    client: NanoBananaClient, task_ids: Sequence[str], output: Output, max_wait: float
) -> list[tuple[str, Any]]:
    """Wait for ``task_ids`` on the client's poller with a progress bar on stderr.

    Returns:
        ``(task_id, ImageResult | exception)`` in the order the tasks ended.

    """
    bar: Any = None
    if not output.quiet and output.stderr is not None:
        from langchain_nanobanana.progress import ProgressBar  # draws with tqdm when present

        tty = output.stderr_isatty()
        bar = ProgressBar(file=output.stderr, desc="nanobanana", use_tqdm=None if tty else False)
    started = time.monotonic()
    outcomes: list[tuple[str, Any]] = []
    try:
        on_progress = bar.update if bar is not None else None
        for item in client.iter_outcomes(task_ids, max_wait=max_wait, on_progress=on_progress):
            outcomes.append(item)
        return outcomes
    finally:
        if bar is not None:
            from langchain_nanobanana._core.progress import progress_event

            if outcomes:  # the last round's event comes after the outcomes: draw the end too
                ended = {
                    t: "succeeded" if isinstance(o, ImageResult) else "failed" for t, o in outcomes
                }
                bar.update(progress_event(1, time.monotonic() - started, ended))
            bar.close()


class _Shown:
    """Prints results as ``generate`` does: paths as the user gave ``--out`` (URLs with
    ``--no-download``), or one ``--json`` line per result.
    """

    def __init__(self, output: Output, out_arg: str, out: Path | None) -> None:
        self.output, self.out_arg, self.out = output, out_arg, out

    def paths(self, files: Sequence[str]) -> list[str]:
        if self.out is None:
            return list(files)
        return [display_path(f, self.out_arg, self.out) for f in files]

    def success(self, key: str | None, result: ImageResult, files: Sequence[str]) -> None:
        shown = self.paths(files)
        if self.output.json_lines:
            self.output.record(
                line_record(
                    id=key,
                    status="succeeded",
                    task_id=result.task_id,
                    trace_id=result.trace_id,
                    files=shown,
                    urls=result.urls,
                )
            )
        else:
            for item in shown or result.urls:
                self.output.result(item)

    def pending(self, key: str | None, task_id: str, trace_id: str | None, note: str) -> None:
        if self.output.json_lines:
            self.output.record(
                line_record(
                    id=key,
                    status="pending",
                    task_id=task_id,
                    trace_id=trace_id,
                    error={"type": "Pending", "code": None, "message": note} if note else None,
                )
            )
        else:
            self.output.result(task_id)

    def failure(
        self, key: str | None, exc: NanoBananaError, result: ImageResult | None, status: str
    ) -> None:
        if self.output.json_lines:
            self.output.record(
                line_record(
                    id=key,
                    status=status,
                    task_id=exc.task_id or (result.task_id if result else None),
                    trace_id=exc.trace_id,
                    urls=result.urls if result else (),
                    error=error_info(exc),
                )
            )


def cmd_generate(args: argparse.Namespace, output: Output, action: str = "generate") -> int:
    """``nanobanana generate|edit``: submit one request, wait, save the images under ``--out``,
    print their paths (``--no-download``: URLs), or one ``--json`` line; ``--no-wait`` prints the
    task id (``--json``: a ``pending`` line) and exits 0.

    Before any request: the token and base URL (exit 3), the request (exit 2; stdin read here),
    ``--no-wait`` with ``--out`` downloads (exit 2), the output folder and the journal (exit 2).
    With ``--key`` a key that already succeeded prints its recorded files without any request.
    On Ctrl-C or SIGTERM after the submission, the billed task id is printed on stdout (a
    ``pending`` line), whatever ``-q`` or a closed stderr hide.
    """
    action = "edit" if getattr(args, "command", action) == "edit" else action
    options = client_options(args)
    make_client(options, need_token=True).close()  # exit 3 before anything else
    request = _build(args, action)
    if args.no_wait and args.out is not None and not args.no_download:
        raise CLIError(
            "--no-wait cannot download to --out: nothing is waited for. Drop --out (collect "
            "later with `nanobanana wait TASK_ID -o DIR`), or add --no-download; nothing was sent"
        )
    out_arg = args.out or "out"
    download = not args.no_download and not args.no_wait
    out = prepare_out_dir(out_arg) if download or args.key else None
    shown = _Shown(output, out_arg, out)
    key: str | None = args.key
    result: ImageResult | None = None
    files: list[str] = []
    with contextlib.ExitStack() as stack:
        if out is not None:
            stack.enter_context(lock_out_dir(out, exclusive=False))
        journal: KeyStore | None = None
        if args.key or args.journal:
            path = args.journal or Path(out_arg) / "journal.sqlite"
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
                result = client.submit(
                    request,
                    wait=False,
                    idempotency_key=key,
                    resubmit_uncertain=args.resubmit_uncertain,
                    retry_failed=args.retry_failed,
                )
                if result.status == "pending" and (args.no_wait or args.callback_url):
                    assert result.task_id is not None
                    shown.pending(key, result.task_id, result.trace_id, "")
                    output.note(
                        f"nanobanana: task {result.task_id} submitted; collect it with "
                        f"`nanobanana wait {result.task_id}`"
                        + (f" or `nanobanana wait --key {key}`" if key else "")
                    )
                    return EXIT_OK
                result = _wait_one(client, result, args, output, shown, key)
                if download:
                    assert out is not None
                    files = download_result(client, journal, key, result, out)
        except NanoBananaError as exc:
            status, code = classify(exc)
            if result is not None and result.status == "succeeded":
                status, code = "pending", EXIT_FAILED  # paid and recorded; the download failed
            label = "error" if code == EXIT_CONFIG else status
            output.error(f"nanobanana: {label}: {exc}")
            shown.failure(key, exc, result, status)
            return code
    shown.success(key, result, files)
    return EXIT_OK


def _wait_one(
    client: NanoBananaClient,
    result: ImageResult,
    args: argparse.Namespace,
    output: Output,
    shown: _Shown,
    key: str | None,
) -> ImageResult:
    if result.status != "pending":
        return result.raise_for_status()
    task_id = result.task_id
    assert task_id is not None
    output.note(f"nanobanana: task {task_id} submitted; waiting")
    try:
        for _, outcome in wait_for(client, [task_id], output, args.max_wait):
            if isinstance(outcome, BaseException):
                raise outcome
            done: ImageResult = outcome
            return done.raise_for_status()
    except KeyboardInterrupt:
        note = f"interrupted while waiting; the task keeps running: `nanobanana wait {task_id}`"
        output.error(f"nanobanana: {note}")
        with contextlib.suppress(CLIError):
            shown.pending(key, task_id, result.trace_id, note)
        raise
    raise AssertionError("unreachable: a wait always ends with an outcome")


def cmd_wait(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana wait TASK_ID ... | --key KEY``: wait for tasks submitted with ``--no-wait``,
    save their images under ``--out`` (``--no-download``: URLs) and print as ``generate`` does.
    A key is looked up in the journal (``--journal``, default ``<out>/journal.sqlite``) and its
    files recorded there. Exit 1 if any task failed or is still pending.
    """
    if not args.task_ids and not args.keys:
        raise CLIError("give TASK_ID(s) or --key KEY")
    options = client_options(args)
    make_client(options).close()
    out_arg = args.out or "out"
    download = not args.no_download
    out = prepare_out_dir(out_arg) if download else None
    shown = _Shown(output, out_arg, out)
    code = EXIT_OK
    with contextlib.ExitStack() as stack:
        if out is not None:
            stack.enter_context(lock_out_dir(out, exclusive=False))
        journal: KeyStore | None = None
        if args.keys:
            journal = stack.enter_context(
                open_journal(args.journal or Path(out_arg) / "journal.sqlite", create=False)
            )
        client = stack.enter_context(make_client(options, journal=journal))
        keys: dict[str, str | None] = dict.fromkeys(args.task_ids)
        for key in args.keys:
            assert journal is not None
            entry = journal.get(client.base_url, key)
            if entry is None or not entry.task_id:
                state = "no entry" if entry is None else f"{entry.state}, no task id"
                raise CLIError(f"the journal has no task for key {key!r} ({state})", EXIT_FAILED)
            keys[entry.task_id] = key
        try:
            outcomes = wait_for(client, list(keys), output, args.max_wait)
        except KeyboardInterrupt:
            output.error("nanobanana: interrupted; the tasks keep running")
            return EXIT_INTERRUPTED
        for task_id, outcome in outcomes:
            key = keys.get(task_id)
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                outcome = outcome.raise_for_status()
                files = download_result(client, journal, key, outcome, out) if out else []
            except NanoBananaError as exc:
                status, exc_code = classify(exc)
                output.error(f"nanobanana: {task_id}: {status}: {exc}")
                shown.failure(key, exc, None, status)
                code = worst(code, exc_code)
                continue
            shown.success(key, outcome, files)
    return code
