"""A loopback HTTP simulator of the Nano Banana Images API, standard library only.

Endpoints: ``POST /nano-banana/images`` (sync, ``async`` and ``callback_url`` modes),
``POST /nano-banana/tasks`` (``retrieve`` / ``retrieve_batch``), and unauthenticated image files at
``GET /files/<uuid>.png`` and ``GET /files/padded/<nbytes>.png``. See :class:`FakeNanoBananaServer`.

Which behaviours come from the vendor's documents (the Nano Banana Images API reference,
https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d,
the Integration Guide,
https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e,
the Tasks API Integration Guide,
https://platform.acedata.cloud/documents/e01ef840-3158-4eec-a6e7-337dada8d155),
which from the vendor's packages
(SDK ``acedatacloud``, MCP server ``mcp-nanobanana-pro``, CLI ``nano-banana-pro-cli``) and which are
the simulator's own choices is tabled in the fidelity table of ``docs/simulator.md``
(https://github.com/langchain-nanobanana/langchain-nanobanana/blob/main/docs/simulator.md).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from langchain_nanobanana.testing._callbacks import CallbackDispatcher
from langchain_nanobanana.testing._handler import HTTPServer
from langchain_nanobanana.testing._responses import ERROR_SHAPES, ErrorShape
from langchain_nanobanana.testing._serve import serve_in_thread
from langchain_nanobanana.testing._state import (
    FAULT_KINDS,
    Failure,
    Fault,
    FileSpec,
    RecordedRequest,
    RecordOptions,
    SimState,
)

__all__ = ["FakeNanoBananaServer"]


class FakeNanoBananaServer:
    """A real HTTP server on loopback that behaves like the Nano Banana Images API.

    Use as a context manager (``with FakeNanoBananaServer() as sim: sim.base_url``) or call
    :meth:`start` / :meth:`stop`. The knobs ``token``, ``submit_latency``, ``task_duration``,
    ``rate_limit``, ``callback_timeout``, ``path_prefix``, ``record_padding``, ``state_words``
    and ``error_shape`` are plain attributes read at request time. Fidelity (what is documented,
    what is the simulator's choice): ``docs/simulator.md``.

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
            ``https://api.xhuoapi.ai/v1``); the request log keeps the full path.
        record_padding: bytes (>= 0) of ``"A"`` added to every task record answer (``retrieve``
            and each ``retrieve_batch`` item, and :attr:`tasks`) as the string field
            ``request.x_sim_padding``: a record answer grows by ``record_padding + 21`` bytes.
            Simulates big edit records that echo their data URIs. ``0``: off.
        state_words: add ``"state"`` (``"running"`` / ``"succeeded"`` / ``"failed"``) to every
            record; finished records carry ``finished_at`` (unix seconds) as always. Not in the
            vendor's documents; the vendor's own clients (SDK, MCP server) read such a word.
        error_shape: how every error body the simulator builds carries ``error`` (HTTP error
            answers, failed task responses, failure callbacks): ``"object"`` (documented
            ``{"code", "message"}``), ``"string"`` (the bare message), ``"null"`` or ``"missing"``
            (no key) -- the vendor's Python SDK ``acedatacloud`` tolerates all four.

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
        record_padding: int = 0,
        state_words: bool = False,
        error_shape: ErrorShape = "object",
    ) -> None:
        if error_shape not in ERROR_SHAPES:
            raise ValueError(f"error_shape={error_shape!r}; expected one of {ERROR_SHAPES}")
        if record_padding < 0:
            raise ValueError(f"record_padding={record_padding!r}; expected bytes >= 0")
        self.token = token
        self.host = host
        self.port = port
        self.submit_latency = submit_latency
        self.task_duration = task_duration
        self.rate_limit = rate_limit
        self.callback_timeout = callback_timeout
        self.path_prefix = path_prefix
        self.record_padding = record_padding
        self.state_words = state_words
        self.error_shape: ErrorShape = error_shape
        self._state = SimState(options=self._record_options)
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
        if self._callbacks.stopped:
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

    def _record_options(self) -> RecordOptions:
        return RecordOptions(int(self.record_padding), bool(self.state_words), self.error_shape)

    @property
    def base_url(self) -> str:
        """``"http://127.0.0.1:PORT"`` (no trailing slash). Raises ``RuntimeError`` before start."""
        if self._base_url is None:
            raise RuntimeError("FakeNanoBananaServer is not started")
        return self._base_url

    @property
    def api_base_url(self) -> str:
        """:attr:`base_url` plus ``path_prefix``, e.g. ``"http://127.0.0.1:PORT/v1"``.

        The base URL a client should use; equals :attr:`base_url` without a prefix.
        """
        return self.base_url + self.path_prefix.rstrip("/")

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
    def internal_errors(self) -> list[str]:
        """Exceptions a handler or the callback thread caught and survived (simulator bugs).

        Each is ``"METHOD /path: repr(exc)"`` or ``"callback <task_id>: repr(exc)"``; the request
        that hit one was answered ``500 api_error``. Tests can assert this stays empty.
        """
        with self._state.lock:
            return list(self._state.internal_errors)

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
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next ``count`` requests whose path starts with ``path`` (``None``: any) fail.

        ``path`` is matched after any ``path_prefix`` is removed (``"/nano-banana/images"``).
        Faulted requests are logged with ``fault=kind``. Kinds:

        - ``"400"``: 400 ``token_mismatched`` (a rule only the server checks, e.g. content).
        - ``"429"``: 429 ``too_many_requests``, ``Retry-After: retry_after`` when given.
        - ``"429_lower"``: the same, with the header name sent in lower case on the wire:
          ``retry-after: <retry_after, default "1">``.
        - ``"500"`` / ``"503"``: JSON ``api_error``; ``"502"``: nginx-like HTML page; ``"html"``:
          500 with an HTML page. These and the 429s also send ``Retry-After`` when given.
        - ``"timeout"``: wait ``float(retry_after)`` seconds (default 30), then answer normally.
        - ``"slow"``: compute the normal answer, then send its bytes (status line, headers and
          body) in pieces about 0.1 s apart (never more than 0.2 s) so that the whole answer takes
          ``float(retry_after)`` seconds (default 10): a per-read socket timeout never fires,
          only a total deadline does. A short JSON body is padded with trailing spaces to have
          enough pieces.
        - ``"malformed"``: 200, ``application/json``, body ``{"success": tru``.
        - ``"truncated"``: 200 with ``Content-Length`` larger than the bytes sent, then close.
        - ``"drop"``: read the request, close with no answer.
        - ``"301"`` / ``"302"`` / ``"307"`` / ``"308"``: a redirect (nginx-like HTML body) whose
          ``Location`` is the same URL on this simulator (``base_url`` + the request target, with
          any prefix and query). A client that follows a 307/308 re-sends the method and body:
          for a submission that is one more task, visible in :attr:`requests` and :attr:`tasks`.
          (Followers turn a 301/302 POST into a GET, answered 400 ``api_not_implemented``.)
        - ``"body"``: answer ``status`` (default 200) with ``body`` and ``headers``: ``body`` is
          sent as is when ``bytes``, UTF-8 encoded when ``str``, else serialised with
          ``json.dumps`` (checked now: ``TypeError``/``ValueError`` if it cannot be).
          ``Content-Type`` is ``application/json`` unless ``headers`` names one. For odd-typed
          answers: a record without ``id``, ``data[0].prompt`` an int, ``error`` as a string,
          ``{"success": false, "error": {"code": "invalid_token"}}`` on a 200, ...

        ``create_task`` (default ``True``) applies to ``malformed``, ``truncated``, ``drop``,
        the redirects and ``body``: the request is processed first (a valid submission creates
        its task: it ran and was billed) and the fault replaces only the answer. 429/5xx/html
        faults never process the request; ``timeout``/``slow`` always do.

        Args:
            kind: one of the kinds above.
            count: how many matching requests get it (>= 1).
            path: path prefix the request must match, or ``None`` for any request.
            retry_after: ``Retry-After`` value, or seconds for ``timeout`` / ``slow``.
            create_task: see above.
            status: HTTP status of a ``body`` fault.
            body: body of a ``body`` fault (JSON-able object, ``str`` or ``bytes``).
            headers: extra headers of a ``body`` fault (names sent as spelled).

        Raises:
            ValueError: an unknown ``kind`` or ``count < 1``.

        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        if isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode("utf-8", "surrogatepass")
        else:
            raw = json.dumps(body).encode()
        fault = Fault(kind, count, path, retry_after, create_task, status, raw, dict(headers or {}))
        self._state.add_fault(fault)

    def fail_next_tasks(
        self,
        count: int = 1,
        *,
        code: str = "generation_failed",
        message: str = "The image could not be generated.",
        state_only: bool = False,
    ) -> None:
        """Make the next ``count`` created tasks finish with ``{"success": false, "error"}``.

        A failed synchronous submission answers HTTP 500 with that body (it carries ``task_id``;
        the simulator's choice, see ``docs/simulator.md``). With ``state_only=True`` the finished
        task's record carries ``"state": "failed"`` and ``finished_at`` but no ``response`` (the
        vendor's own clients read such a word); the sync answer and the callback
        still carry the failure body.
        """
        self._state.add_failures(count, Failure(code, message, state_only))

    def complete_task(self, task_id: str) -> None:
        """Finish ``task_id`` now, regardless of ``task_duration`` (its callback fires too)."""
        entry = self._state.force_complete(task_id)
        if entry.callback_url:
            self._callbacks.schedule(time.monotonic(), task_id)

    def image_url(self, width: int, height: int) -> str:
        """URL of a PNG of ``width`` x ``height`` pixels served by this simulator (started)."""
        file_id = self._state.add_file(FileSpec(width, height, f"{width}x{height}".encode()))
        return f"{self.base_url}/files/{file_id}.png"
