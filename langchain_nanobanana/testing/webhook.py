"""``WebhookReceiver``: a loopback HTTP endpoint that collects ``callback_url`` deliveries.

For local development and tests only. With a ``callback_url`` the API answers at once with a
``task_id`` and later POSTs the result (same shape as a synchronous success, per the Nano Banana
Images API Integration Guide,
https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e) to that URL;
this receiver listens on 127.0.0.1, parses each body with :meth:`ImageResult.from_callback`, and
lets you wait for a given task::

    from langchain_nanobanana import NanoBananaClient
    from langchain_nanobanana.testing import FakeNanoBananaServer, WebhookReceiver

    with FakeNanoBananaServer() as sim, WebhookReceiver() as hook:
        client = NanoBananaClient("sim-token", base_url=sim.base_url)
        pending = client.generate("a lighthouse at dawn", callback_url=hook.url)
        result = hook.wait_for(pending.task_id, timeout=30)
        result.urls

The real API cannot reach 127.0.0.1: a real deployment receives callbacks on a public URL, e.g. a
FastAPI route::

    @app.post("/nano-banana/callback")
    async def nano_banana_callback(request: Request) -> dict[str, bool]:
        result = ImageResult.from_callback(await request.body())  # ValueError -> answer 400
        ...  # store result under result.task_id
        return {"ok": True}

Standard library only (``http.server`` in a daemon thread); starts nothing on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from langchain_nanobanana.results import ImageResult
from langchain_nanobanana.testing._serve import serve_in_thread

__all__ = ["MAX_CALLBACK_BYTES", "WebhookReceiver"]

#: Largest callback body accepted (bytes); bigger bodies are answered 413 and rejected.
MAX_CALLBACK_BYTES = 1 * 2**20

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[ImageResult]"]


class WebhookReceiver:
    """Collect the API's ``callback_url`` POSTs on a loopback port (local development and tests).

    A ``ThreadingHTTPServer`` bound to ``host`` (default 127.0.0.1) on ``port`` (``0``: a free
    one), serving in a daemon thread. ``POST <path>`` with a valid callback body is answered
    ``200 {"ok": true}`` and its parsed :class:`ImageResult` is appended to :attr:`received`; a
    body that :meth:`ImageResult.from_callback` refuses (not JSON, not an object, no ``task_id``,
    success without images) is answered ``400`` and kept in :attr:`rejected`. Other paths answer
    404, other methods 405. Use as a context manager or call :meth:`start` / :meth:`stop`.

    Not for production: a real deployment needs a public URL the API can reach (see the module
    docstring for a FastAPI route doing the same with ``ImageResult.from_callback``).

    Args:
        host: Interface to bind (default ``"127.0.0.1"``).
        port: TCP port; ``0`` picks a free one.
        path: URL path that accepts deliveries (default ``"/nano-banana/callback"``).

    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, path: str = "/nano-banana/callback"
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path={path!r} is not allowed; use an absolute path like '/hook'")
        self.host = host
        self.port = port
        self.path = path
        self._cond = threading.Condition()
        self._received: list[ImageResult] = []
        self._rejected: list[bytes] = []
        self._by_task: dict[str, ImageResult] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        """Bind and serve in a daemon thread; return ``self``. ``RuntimeError`` if running."""
        if self._httpd is not None:
            raise RuntimeError("WebhookReceiver is already running")
        self._httpd = _Server((self.host, self.port), self)
        origin, self._thread = serve_in_thread(
            self._httpd, name="nanobanana-webhook", poll_interval=0.05
        )
        self._url = origin + self.path
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent; what was received stays readable."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(1.0)
        self._httpd = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The full callback URL to pass as ``callback_url`` (``RuntimeError`` before start)."""
        if self._url is None:
            raise RuntimeError("WebhookReceiver is not started: call start() or use `with`")
        return self._url

    # -- what arrived ----------------------------------------------------------------------------
    @property
    def received(self) -> list[ImageResult]:
        """Parsed deliveries, in arrival order (a copy)."""
        with self._cond:
            return list(self._received)

    @property
    def rejected(self) -> list[bytes]:
        """Raw bodies answered 400, in arrival order (a copy); ``b""`` stands for a body refused
        unread with 413 (missing, bad or larger than ``MAX_CALLBACK_BYTES`` Content-Length).
        """
        with self._cond:
            return list(self._rejected)

    def wait_for(self, task_id: str, timeout: float = 60.0) -> ImageResult:
        """Block until the callback of ``task_id`` has arrived (or return it if it already has).

        Args:
            task_id: The ``task_id`` of the pending result returned by the submission.
            timeout: Seconds to wait.

        Returns:
            The delivered :class:`ImageResult` (``succeeded`` or ``failed``; the latest one if
            the task was delivered more than once).

        Raises:
            TimeoutError: Nothing arrived for ``task_id`` within ``timeout`` seconds.

        """
        with self._cond:
            if not self._cond.wait_for(lambda: task_id in self._by_task, timeout):
                raise self._timeout(task_id, timeout)
            return self._by_task[task_id]

    async def await_for(self, task_id: str, timeout: float = 60.0) -> ImageResult:
        """Async :meth:`wait_for`: waits on a future that the server thread resolves through
        ``loop.call_soon_threadsafe``, so no thread is blocked.

        Raises:
            TimeoutError: Nothing arrived for ``task_id`` within ``timeout`` seconds.

        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ImageResult] = loop.create_future()
        waiter: _Waiter = (loop, future)
        with self._cond:
            if task_id in self._by_task:
                return self._by_task[task_id]
            self._waiters.setdefault(task_id, []).append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise self._timeout(task_id, timeout) from None
        finally:
            with self._cond:
                waiters = self._waiters.get(task_id, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    self._waiters.pop(task_id, None)

    def _timeout(self, task_id: str, timeout: float) -> TimeoutError:
        where = self._url or "the receiver (not started)"
        return TimeoutError(
            f"No callback for task_id={task_id} arrived at {where} within {timeout:g} s "
            f"({len(self.received)} delivery(ies) received, {len(self.rejected)} rejected)"
        )

    # -- called by the handler thread ------------------------------------------------------------
    def _accept(self, result: ImageResult) -> None:
        task_id = cast(str, result.task_id)  # from_callback guarantees it
        with self._cond:
            self._received.append(result)
            self._by_task[task_id] = result
            waiters = self._waiters.pop(task_id, [])
            self._cond.notify_all()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that event loop is already closed
                loop.call_soon_threadsafe(_resolve, future, result)

    def _reject(self, body: bytes) -> None:
        with self._cond:
            self._rejected.append(body)


def _resolve(future: asyncio.Future[ImageResult], result: ImageResult) -> None:
    if not future.done():
        future.set_result(result)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.receiver = receiver
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup (``getfqdn`` can take seconds)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server_version = "NanoBananaWebhook/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_allowed(self) -> None:
        self._answer(405, {"ok": False, "error": f"method {self.command} is not allowed"})

    do_GET = do_PUT = do_PATCH = do_DELETE = _not_allowed  # noqa: N815 - http.server names

    def do_POST(self) -> None:
        """Accept one callback delivery."""
        receiver = cast(_Server, self.server).receiver
        if urlsplit(self.path).path != receiver.path:
            self._answer(404, {"ok": False, "error": f"no callback endpoint at {self.path}"})
            return
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_CALLBACK_BYTES:
            receiver._reject(b"")
            self.close_connection = True
            self._answer(413, {"ok": False, "error": "missing, bad or too large Content-Length"})
            return
        body = self.rfile.read(length) if length else b""
        try:
            result = ImageResult.from_callback(body)
        except ValueError as exc:  # includes JSON and pydantic errors
            receiver._reject(body)
            self._answer(400, {"ok": False, "error": str(exc)[:300]})
            return
        receiver._accept(result)
        self._answer(200, {"ok": True, "task_id": result.task_id})
