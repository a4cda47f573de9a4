"""What every ``nanobanana`` subcommand shares: exit codes, the output streams, the line schema of
``--json`` and ``manifest.jsonl``, how an error becomes a row status and an exit code, and how the
client, the journal and the output folder are set up (each failing before any request).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_nanobanana.client import ENV_TOKEN, NanoBananaClient
from langchain_nanobanana.errors import (
    NanoBananaError,
)
from langchain_nanobanana.journal import JournalError, KeyStore, is_postgres_url
from langchain_nanobanana.journal import open_journal as _open_store
from langchain_nanobanana.results import ImageResult

from .output import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_UNCERTAIN,
    EXIT_USAGE,
    CLIError,
    Output,
    RowStatus,
    cli_text,
    line_record,
    worst,
)

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


def error_info(exc: BaseException) -> dict[str, Any]:
    """The ``error`` field of a line: ``{"type", "code", "message"}`` (``code`` may be null);
    a ``NanoBananaError`` gives its message with its ids (they also have their own fields).
    """
    return {
        "type": type(exc).__name__,
        "code": getattr(exc, "code", None),
        "message": cli_text(str(exc)),
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
