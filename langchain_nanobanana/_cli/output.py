"""What every ``nanobanana`` subcommand shares and what ``--help`` needs, importing nothing heavy
(no pydantic, no HTTP stack, no ``langchain_core``): exit codes, :class:`CLIError`, the output
streams, the line schema of ``--json`` and ``manifest.jsonl``, and how texts are shown (paths as
the user gave them, ids escaped, Python parameter names as CLI options).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_UNCERTAIN",
    "EXIT_USAGE",
    "CLIError",
    "Output",
    "OutputClosedError",
    "RowStatus",
    "cli_text",
    "describe_exit_codes",
    "display_path",
    "escape_field",
    "fill_closed_std_fds",
    "line_record",
    "worst",
]

#: Every row (every requested image set) succeeded.
EXIT_OK = 0
#: Some row failed or is still pending (timed out, download failed), or an unknown task id.
EXIT_FAILED = 1
#: Usage or bad input (bad arguments, a malformed row, an unwritable ``--out``, an unreadable
#: journal, an idempotency key reused for another request): reported before any request.
EXIT_USAGE = 2
#: Authentication, configuration (no token, bad base URL) or balance: no point in going on.
EXIT_CONFIG = 3
#: Some submission is uncertain (maybe billed, task id unknown): settle it with
#: ``nanobanana journal resolve|forget`` or re-run with ``--resubmit-uncertain``.
EXIT_UNCERTAIN = 4
#: Ctrl-C (SIGINT): what was in flight is recorded (journal and manifest) before exiting.
EXIT_INTERRUPTED = 130
#: SIGTERM (128 + 15): handled like Ctrl-C.
EXIT_TERMINATED = 143

#: "Highest wins": the order in which exit codes override each other.
_RANK = {EXIT_OK: 0, EXIT_FAILED: 1, EXIT_UNCERTAIN: 2, EXIT_USAGE: 3, EXIT_CONFIG: 4}

RowStatus = Literal["succeeded", "failed", "uncertain", "invalid", "pending"]

#: Python parameter spellings in messages made by the library, and what a CLI user types instead.
_CLI_WORDS = (
    ("pass resubmit_uncertain=True", "re-run with --resubmit-uncertain"),
    ("resubmit_uncertain=True", "--resubmit-uncertain"),
    ("pass retry_failed=True", "re-run with --retry-failed"),
    ("retry_failed=True", "--retry-failed"),
    ("idempotency_key=", "--key "),
    ("max_wait=", "--max-wait "),
)


def worst(*codes: int) -> int:
    """The exit code that wins among ``codes``: 3 > 2 > 4 > 1 > 0 (anything else, e.g. 130,
    wins over all of them). ``worst()`` is 0.
    """
    best = EXIT_OK
    for code in codes:
        if _RANK.get(code, 99) > _RANK.get(best, 99):
            best = code
    return best


def describe_exit_codes() -> str:
    """The exit-code table shown at the end of ``--help``."""
    return (
        "exit codes (highest wins: 3 > 2 > 4 > 1 > 0):\n"
        f"  {EXIT_OK}    all succeeded\n"
        f"  {EXIT_FAILED}    some row failed or is still pending, or an unknown task id\n"
        f"  {EXIT_USAGE}    usage or bad input, found before any request (nothing sent)\n"
        f"  {EXIT_CONFIG}    authentication, configuration or balance\n"
        f"  {EXIT_UNCERTAIN}    some submission is uncertain (maybe billed): "
        "`nanobanana journal resolve|forget`\n"
        f"  {EXIT_INTERRUPTED}  interrupted (Ctrl-C) after recording what was in flight\n"
        f"  {EXIT_TERMINATED}  terminated (SIGTERM), likewise"
    )


def cli_text(message: str) -> str:
    """``message`` with Python parameter spellings (``resubmit_uncertain=True``) replaced by the
    command-line options a CLI user types (``--resubmit-uncertain``).
    """
    for python, option in _CLI_WORDS:
        message = message.replace(python, option)
    return message


def escape_field(text: str | None) -> str:
    """``text`` fit for one tab-separated field of one line: backslash, tab, newline and carriage
    return written as two-character escapes (backslash-t for a tab ...), so a key or id cannot
    forge a row; ``None`` is ``-``.
    """
    if text is None:
        return "-"
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def display_path(path: str | os.PathLike[str], given: str | os.PathLike[str], base: Path) -> str:
    """``path`` (absolute, under ``base``) as the user would write it: relative to the folder
    they gave when they gave a relative one (``out/x.png``), else absolute.

    Args:
        path: A file written under ``base``.
        given: The folder as the user typed it (``--out``).
        base: That folder, absolute.

    """
    if Path(given).expanduser().is_absolute():
        return os.fspath(path)
    try:
        return os.fspath(Path(given) / Path(path).relative_to(base))
    except ValueError:
        return os.fspath(path)


class CLIError(Exception):
    """A problem that ends the command with ``exit_code`` and ``message`` on stderr (no
    traceback). Raised before any request unless the message says otherwise.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class OutputClosedError(CLIError):
    """Standard output is closed or its reader went away (``| head -1``): results cannot be
    shown any more; the run records what it has (manifest, journal) and exits 1.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"standard output is closed ({reason})", EXIT_FAILED)


class Output:
    """The command's streams: results on stdout (one JSON object per line with ``--json``),
    messages on stderr (``--quiet`` keeps only errors). Thread-safe; every write is flushed.

    A closed or missing stderr (``2>&-``) drops messages silently; a closed stdout raises
    :class:`OutputClosedError` from :meth:`result` (and every later call), so a run stops instead
    of paying for results nobody reads.

    Args:
        json_lines: Print records as JSON lines (``--json``) instead of human text.
        quiet: Drop notes (progress and summaries); errors are always written.
        stdout, stderr: Streams (default: ``sys.stdout`` / ``sys.stderr`` at write time).

    """

    def __init__(
        self,
        *,
        json_lines: bool = False,
        quiet: bool = False,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.json_lines = json_lines
        self.quiet = quiet
        self._stdout = stdout
        self._stderr = stderr
        self._lock = threading.Lock()
        self.closed: str | None = None  # why stdout broke, once it did

    @property
    def stdout(self) -> IO[str] | None:
        """The results stream (``None`` when the process has none)."""
        return self._stdout if self._stdout is not None else sys.stdout

    @property
    def stderr(self) -> IO[str] | None:
        """The messages stream (``None`` when the process has none, e.g. ``2>&-``)."""
        return self._stderr if self._stderr is not None else sys.stderr

    def stderr_isatty(self) -> bool:
        """Whether stderr is a terminal (``False`` when closed)."""
        stream = self.stderr
        try:
            return stream is not None and stream.isatty()
        except (OSError, ValueError):
            return False

    def result(self, text: str) -> None:
        """Write one line of results to stdout.

        Raises:
            OutputClosedError: stdout is closed or its reader is gone.

        """
        with self._lock:
            if self.closed is not None:
                raise OutputClosedError(self.closed)
            stream = self.stdout
            try:
                if stream is None:
                    raise OSError("no standard output")
                stream.write(text + "\n")
                stream.flush()
            except (OSError, ValueError) as exc:  # BrokenPipeError, write to a closed file
                self.closed = type(exc).__name__ if not str(exc) else str(exc)
                _silence(stream)
                raise OutputClosedError(self.closed) from None

    def record(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one JSON line to stdout."""
        self.result(json.dumps(record, ensure_ascii=False))

    def note(self, text: str) -> None:
        """A message on stderr, unless ``quiet``."""
        if not self.quiet:
            self.error(text)

    def error(self, text: str) -> None:
        """A message on stderr, always (dropped when stderr is closed)."""
        with self._lock:
            stream = self.stderr
            if stream is None:
                return
            try:
                stream.write(cli_text(text) + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass


def _silence(stream: IO[str] | None) -> None:
    """Point a broken stream's file descriptor at ``/dev/null`` and drop what it buffered, so
    that the interpreter's final flush does not fail again (a stream without a descriptor, e.g.
    a test's ``StringIO``, is left alone).
    """
    try:
        fd = stream.fileno() if stream is not None else -1
    except (OSError, ValueError, AttributeError):
        return
    if fd < 0:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


def fill_closed_std_fds() -> None:
    """Open ``/dev/null`` on file descriptors 0, 1 and 2 where the process was started without
    them (``2>&-``), so that no file the command opens later (the journal, the manifest) takes
    their place and receives what is meant for a terminal. ``sys.stdout``/``sys.stderr`` stay
    ``None``: :class:`Output` knows they are closed.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                opened = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)


def line_record(
    *,
    id: str | None,
    status: RowStatus | str,
    task_id: str | None = None,
    trace_id: str | None = None,
    files: Sequence[str] = (),
    urls: Sequence[str] = (),
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``--json`` / ``manifest.jsonl`` line (one schema for both).

    Fields: ``id`` (the row's idempotency key), ``task_id``, ``trace_id``, ``status``
    (``succeeded``, ``failed``, ``uncertain``, ``invalid``, ``pending``; ``task`` adds
    ``unknown``), ``files`` (paths of the downloaded images, as the user gave ``--out``: relative
    stays relative), ``urls`` (the images' URLs), ``error`` (``{"type", "code", "message"}`` or
    null).
    """
    return {
        "id": id,
        "task_id": task_id,
        "trace_id": trace_id,
        "status": status,
        "files": list(files),
        "urls": list(urls),
        "error": dict(error) if error is not None else None,
    }
