"""What every ``nanobanana`` subcommand shares: exit codes, the output streams, the line schema of
``--json`` and ``manifest.jsonl``, how an error becomes a row status and an exit code, and how the
client, the journal and the output folder are set up (each failing before any request).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from langchain_nanobanana.client import ENV_TOKEN, NanoBananaClient
from langchain_nanobanana.errors import (
    NanoBananaError,
)
from langchain_nanobanana.journal import JournalError, KeyStore, is_postgres_url
from langchain_nanobanana.journal import open_journal as _open_store
from langchain_nanobanana.results import ImageResult

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNCERTAIN",
    "EXIT_USAGE",
    "CLIError",
    "Output",
    "RowStatus",
    "classify",
    "client_options",
    "download_result",
    "error_info",
    "files_present",
    "line_record",
    "lock_out_dir",
    "make_client",
    "open_journal",
    "prepare_out_dir",
    "worst",
]

logger = logging.getLogger(__name__)

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

#: "Highest wins": the order in which exit codes override each other (see ``nanobanana --help``).
_RANK = {EXIT_OK: 0, EXIT_FAILED: 1, EXIT_UNCERTAIN: 2, EXIT_USAGE: 3, EXIT_CONFIG: 4}

RowStatus = Literal["succeeded", "failed", "uncertain", "invalid", "pending"]


def worst(*codes: int) -> int:
    """The exit code that wins among ``codes``: 3 > 2 > 4 > 1 > 0 (anything else, e.g. 130,
    wins over all of them). ``worst()`` is 0.
    """
    best = EXIT_OK
    for code in codes:
        if _RANK.get(code, 99) > _RANK.get(best, 99):
            best = code
    return best


class CLIError(Exception):
    """A problem that ends the command with ``exit_code`` and ``message`` on stderr (no
    traceback). Raised before any request unless the message says otherwise.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Output:
    """The command's streams: results on stdout (one JSON object per line with ``--json``),
    messages on stderr (``--quiet`` keeps only errors). Thread-safe; every write is flushed.

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

    @property
    def stdout(self) -> IO[str]:
        """The results stream."""
        return self._stdout if self._stdout is not None else sys.stdout

    @property
    def stderr(self) -> IO[str]:
        """The messages stream (progress, notes, errors)."""
        return self._stderr if self._stderr is not None else sys.stderr

    def result(self, text: str) -> None:
        """Write one line of results to stdout."""
        with self._lock:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def record(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one JSON line to stdout."""
        self.result(json.dumps(record, ensure_ascii=False))

    def note(self, text: str) -> None:
        """A message on stderr, unless ``quiet``."""
        if not self.quiet:
            self.error(text)

    def error(self, text: str) -> None:
        """A message on stderr, always."""
        with self._lock:
            self.stderr.write(text + "\n")
            self.stderr.flush()


def error_info(exc: BaseException) -> dict[str, Any]:
    """The ``error`` field of a line: ``{"type", "code", "message"}`` (``code`` may be null);
    a ``NanoBananaError`` gives its message with its ids (they also have their own fields).
    """
    return {
        "type": type(exc).__name__,
        "code": getattr(exc, "code", None),
        "message": str(exc),
    }


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
    ``unknown``), ``files`` (absolute paths of the downloaded images), ``urls`` (the images'
    URLs), ``error`` (``{"type", "code", "message"}`` or null).
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


def classify(exc: BaseException) -> tuple[RowStatus, int]:
    """The row status and exit code an error stands for: the error's own facts
    (``row_status``, ``exit_code``; see :mod:`langchain_nanobanana.errors`).

    ``uncertain``/4: maybe billed without a task id; ``failed``/3: authentication, balance,
    permission, configuration; ``invalid``/2: bad input or a key reused for another request
    (nothing sent); ``pending``/1: the wait timed out (the task runs on; a re-run polls it);
    ``failed``/1: anything else. An exception that is not the package's (a bug) is ``failed``/1.
    """
    if isinstance(exc, NanoBananaError):
        return exc.row_status, exc.exit_code
    return "failed", EXIT_FAILED


@dataclass(frozen=True)
class ClientOptions:
    """What the command line sets on the client.

    Attributes:
        base_url: ``--base-url`` (default: ``$ACEDATACLOUD_API_BASE_URL`` or the vendor's).
        token_env: Name of the environment variable holding the token (``--token-env``).
        poll_interval: First wait between poll rounds, seconds (``--poll-interval``).
        max_wait: Seconds one wait for a task lasts at most (``--max-wait``).
        rate_limit: API requests per second of the account (``--rate-limit``), or None.

    """

    base_url: str | None = None
    token_env: str = ENV_TOKEN
    poll_interval: float = 1.0
    max_wait: float = 600.0
    rate_limit: float | None = None


def client_options(args: argparse.Namespace) -> ClientOptions:
    """The client settings from the global and wait options."""
    return ClientOptions(
        base_url=getattr(args, "base_url", None),
        token_env=getattr(args, "token_env", None) or ENV_TOKEN,
        poll_interval=getattr(args, "poll_interval", 1.0),
        max_wait=getattr(args, "max_wait", 600.0),
        rate_limit=getattr(args, "rate_limit", None),
    )


def make_client(
    options: ClientOptions, *, journal: KeyStore | None = None, need_token: bool = True
) -> NanoBananaClient:
    """A client from the command-line options; nothing is sent.

    Raises:
        CLIError: (exit 3) no token in ``options.token_env`` (when ``need_token``), or a bad base
            URL or number.

    """
    token = os.environ.get(options.token_env) or None
    if need_token and token is None:
        raise CLIError(
            f"no API token: set the {options.token_env} environment variable (the token is "
            f"never taken from the command line; --token-env NAME reads another variable)",
            EXIT_CONFIG,
        )
    try:
        return NanoBananaClient(
            token,
            base_url=options.base_url,
            poll_interval=options.poll_interval,
            max_poll_interval=max(options.poll_interval, 10.0),
            max_wait=options.max_wait,
            journal=journal,
            rate_limit=options.rate_limit,
        )
    except ValueError as exc:
        raise CLIError(f"bad configuration: {exc}", EXIT_CONFIG) from None


def prepare_out_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (with parents) and prove it writable with a probe file.

    Returns:
        The absolute directory.

    Raises:
        CLIError: (exit 2) it cannot be created or written.

    """
    out = Path(path).expanduser().absolute()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".nanobanana-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CLIError(f"--out {os.fspath(path)!r} is not a writable folder: {reason}") from None
    return out


def open_journal(path: str | os.PathLike[str], *, create: bool = True) -> KeyStore:
    """Open the journal at ``path``.

    Args:
        path: The SQLite file, or a ``postgresql://`` URL (PostgreSQL journal).
        create: ``False``: a missing file is an error instead of a new journal.

    Raises:
        CLIError: (exit 2) the file is missing (``create=False``), not a journal, of another
            schema version, corrupted or locked; the message says what to do. Nothing is sent on
            the strength of a journal that could not be read.

    """
    raw = os.fspath(path)
    if not create and not is_postgres_url(raw) and not os.path.exists(raw):
        raise CLIError(f"no journal at {raw} (pass --journal PATH)")
    try:
        return _open_store(raw)
    except JournalError as exc:
        raise CLIError(f"cannot use the journal: {exc.message}") from None


def result_summary(result: ImageResult) -> dict[str, Any]:
    """What the journal keeps of a finished result: no echoed request, no raw answer."""
    return result.model_dump(mode="json", exclude={"raw"})


def download_result(
    client: NanoBananaClient,
    journal: KeyStore | None,
    key: str | None,
    result: ImageResult,
    out: Path,
) -> list[str]:
    """Save ``result``'s images under ``out`` (named after ``key`` or the task id) and record
    the files with the key in the journal.

    Returns:
        The absolute paths written, in image order.

    Raises:
        NanoBananaError, InvalidImageError: A download failed (the result stays recorded: a
            re-run downloads again without paying).

    """
    prefix = (key or result.task_id or "image").replace("/", "_").replace("\\", "_")
    files = [str(Path(p).absolute()) for p in client.download(result, out, prefix=prefix)]
    if journal is not None and key is not None:
        journal.succeeded(client.base_url, key, result_summary(result), files=files)
    return files


def files_present(files: Iterable[str]) -> bool:
    """Whether there is at least one file and every one exists."""
    names = list(files)
    return bool(names) and all(os.path.isfile(f) for f in names)


#: Lock file in an output folder: a batch holds it exclusively, single downloads shared.
LOCK_NAME = ".nanobanana.lock"


@contextlib.contextmanager
def lock_out_dir(out: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the output folder's lock (``flock`` on ``<out>/.nanobanana.lock``; released by the
    kernel when the process dies, ``kill -9`` included).

    A batch takes it exclusively and then deletes the hidden ``.nanobanana-*.part`` files that a
    killed download left behind (no other writer can be using them); ``generate``/``edit``/``task``
    take it shared while they download. Without ``fcntl`` (Windows) nothing is locked or deleted.

    Raises:
        CLIError: (exit 2) another ``nanobanana`` process holds it incompatibly.

    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CLIError(f"cannot create {out / LOCK_NAME}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CLIError(
                f"{out} is in use by another nanobanana process (a batch uses its folder alone); "
                f"wait for it or use another --out"
            ) from None
        if exclusive:
            for stale in out.glob(".nanobanana-*.part"):
                with contextlib.suppress(OSError):
                    stale.unlink()
                    logger.info("removed %s, left by an interrupted download", stale.name)
        yield
    finally:
        os.close(fd)
