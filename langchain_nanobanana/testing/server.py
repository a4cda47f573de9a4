"""A loopback HTTP simulator of the Nano Banana Images API (SPEC Part 1), standard library only.

Endpoints: ``POST /nano-banana/images`` (sync, ``async`` and ``callback_url`` modes),
``POST /nano-banana/tasks`` (``retrieve`` / ``retrieve_batch``), and unauthenticated image files at
``GET /files/<uuid>.png`` and ``GET /files/padded/<nbytes>.png``. See :class:`FakeNanoBananaServer`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from langchain_nanobanana.testing._handler import HTTPServer
from langchain_nanobanana.testing._serve import serve_in_thread
from langchain_nanobanana.testing._state import (
    FAULT_KINDS,
    CallbackDispatcher,
    Fault,
    FileSpec,
    RecordedRequest,
    SimState,
)

__all__ = ["FakeNanoBananaServer"]


class FakeNanoBananaServer:
    """A real HTTP server on loopback that behaves like the Nano Banana Images API.

    Use as a context manager (``with FakeNanoBananaServer() as sim: sim.base_url``) or call
    :meth:`start` / :meth:`stop`. The knobs ``token``, ``submit_latency``, ``task_duration``,
    ``rate_limit``, ``callback_timeout`` and ``path_prefix`` are plain attributes read at request
    time.

    Args:
        token: the accepted bearer token; ``None`` accepts any or no token.
        host: interface to bind (default ``"127.0.0.1"``).
        port: TCP port; ``0`` picks a free one.
        submit_latency: seconds every ``POST /nano-banana/images`` waits before answering.
        task_duration: seconds from submission until a task has its response.
        rate_limit: maximum accepted API requests per second (sliding 1 s window) over both API
            endpoints; beyond it, ``429 too_many_requests`` with ``Retry-After: 1``. Image files
            (``/files/...``, the CDN stand-in) are never rate limited. ``None``: no limit.
        callback_timeout: seconds each callback POST may take.
        path_prefix: serve the API under this path too (e.g. ``"/v1"``, like the mirror
            ``https://api.xhuoapi.ai/v1``, seed 003); the request log keeps the full path.

    """

    def __init__(
        self,
        *,
        token: str | None = "sim-token",
        host: str = "127.0.0.1",
        port: int = 0,
        submit_latency: float = 0.0,
        task_duration: float = 0.0,
        rate_limit: float | None = None,
        callback_timeout: float = 5.0,
        path_prefix: str = "",
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.submit_latency = submit_latency
        self.task_duration = task_duration
        self.rate_limit = rate_limit
        self.callback_timeout = callback_timeout
        self.path_prefix = path_prefix
        self._state = SimState()
        self._callbacks = CallbackDispatcher(self._state, lambda: self.callback_timeout)
        self._stopping = threading.Event()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeNanoBananaServer:
        """Bind and serve in a daemon thread; return ``self``. ``RuntimeError`` if running."""
        if self._httpd is not None:
            raise RuntimeError("FakeNanoBananaServer is already running")
        self._stopping = threading.Event()
        if self._callbacks._stopped:
            self._callbacks = CallbackDispatcher(self._state, lambda: self.callback_timeout)
        self._httpd = HTTPServer((self.host, self.port), self)
        self._base_url, self._thread = serve_in_thread(
            self._httpd, name="nanobanana-sim", poll_interval=0.02
        )
        return self

    def stop(self) -> None:
        """Stop serving, close every socket, end waiting handlers (well under 1 s). Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(1.0)
        self._callbacks.stop(0.5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeNanoBananaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``"http://127.0.0.1:PORT"`` (no trailing slash). Raises ``RuntimeError`` before start."""
        if self._base_url is None:
            raise RuntimeError("FakeNanoBananaServer is not started")
        return self._base_url

    # -- inspection ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.log)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Return the received requests whose path equals ``path`` (``"/nano-banana/images"``)."""
        return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        """Forget the request log (tasks, faults and counters are kept)."""
        with self._state.lock:
            self._state.log.clear()

    def clear_faults(self) -> None:
        """Drop every injected fault not yet served (the next requests are answered normally)."""
        with self._state.lock:
            self._state.faults.clear()

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """``task_id -> task record`` as ``retrieve`` would return it now (copies)."""
        return self._state.all_records()

    @property
    def connections_accepted(self) -> int:
        """Number of TCP connections accepted so far."""
        with self._state.lock:
            return self._state.connections_accepted

    @property
    def callbacks_sent(self) -> list[dict[str, Any]]:
        """Callback POSTs made: ``{"url", "status" (int, or None on network error), "payload"}``."""
        with self._state.lock:
            return [dict(c) for c in self._state.callbacks_sent]

    # -- knobs -----------------------------------------------------------------------------------
    def inject_fault(
        self,
        kind: str,
        *,
        count: int = 1,
        path: str | None = None,
        retry_after: str | None = None,
        create_task: bool = True,
    ) -> None:
        """Make the next ``count`` requests whose path starts with ``path`` (``None``: any) fail.

        Kinds: ``"400"`` (token_mismatched: a rule only the server checks, e.g. content),
        ``"429"`` (too_many_requests, ``Retry-After: retry_after`` when given), ``"500"`` /
        ``"503"`` (JSON ``api_error``), ``"502"`` (nginx-like HTML page), ``"html"`` (500 HTML),
        ``"malformed"`` (200, ``application/json``, body ``{"success": tru``), ``"truncated"`` (200,
        ``Content-Length`` larger than the bytes sent, then close), ``"drop"`` (read the request,
        close with no answer), ``"timeout"`` (wait ``float(retry_after)`` seconds, default 30, then
        answer normally). For ``malformed`` / ``truncated`` / ``drop`` with ``create_task=True`` the
        request is processed first (a valid submission creates its task: it ran and was billed);
        429/5xx/html faults never create tasks. Faulted requests are logged with ``fault=kind``.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        self._state.add_fault(Fault(kind, count, path, retry_after, create_task))

    def fail_next_tasks(
        self,
        count: int = 1,
        *,
        code: str = "generation_failed",
        message: str = "The image could not be generated.",
    ) -> None:
        """Make the next ``count`` created tasks finish with ``{"success": false, "error"}``.

        A failed synchronous submission answers HTTP 500 with that body (it carries ``task_id``).
        """
        self._state.add_failures(count, code, message)

    def complete_task(self, task_id: str) -> None:
        """Finish ``task_id`` now, regardless of ``task_duration`` (its callback fires too)."""
        entry = self._state.force_complete(task_id)
        if entry.callback_url:
            self._callbacks.schedule(time.monotonic(), task_id)

    def image_url(self, width: int, height: int) -> str:
        """URL of a PNG of ``width`` x ``height`` pixels served by this simulator (started)."""
        file_id = self._state.add_file(FileSpec(width, height, f"{width}x{height}".encode()))
        return f"{self.base_url}/files/{file_id}.png"
