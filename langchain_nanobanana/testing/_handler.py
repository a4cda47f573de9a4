"""The HTTP side of the simulator: a threading server and its request handler.

Endpoints: ``POST /nano-banana/images`` (sync, ``async`` and ``callback_url`` modes),
``POST /nano-banana/tasks`` (``retrieve`` / ``retrieve_batch``), and unauthenticated image files at
``GET /files/<uuid>.png`` and ``GET /files/padded/<nbytes>.png``. Bodies are validated like the real
API; every documented error shape is produced; injected faults are applied here. The public
object is :class:`langchain_nanobanana.testing.server.FakeNanoBananaServer`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import socketserver
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from langchain_nanobanana.testing._faults import serve_fault
from langchain_nanobanana.testing._png import make_png, padded_png, padded_size
from langchain_nanobanana.testing._responses import (
    Response,
    error_response,
    json_response,
)
from langchain_nanobanana.testing._state import FileSpec, Headers, RecordedRequest, TaskEntry
from langchain_nanobanana.testing._validate import (
    ASPECT_SIZES,
    RESOLUTION_SCALE,
    ApiError,
    Submission,
    data_uri_png_size,
    validate_submission,
)

if TYPE_CHECKING:
    from langchain_nanobanana.testing.server import FakeNanoBananaServer

__all__ = ["NOT_JSON", "HTTPServer", "Handler"]

_FILE_RE = re.compile(r"^/files/([0-9a-f-]{36})\.png$")
_PADDED_RE = re.compile(r"^/files/padded/(\d{1,10})\.png$")
_MAX_PADDED = 2 * 2**30
_API_PATHS = ("/nano-banana/images", "/nano-banana/tasks")

NOT_JSON: object = object()
"""Marker for a request body that is empty or not JSON."""


def _nearest_aspect(width: int, height: int) -> str:
    """The documented aspect ratio closest to ``width`` x ``height`` (log scale)."""
    ratio = math.log(width / height)

    def distance(name: str) -> float:
        base_w, base_h = ASPECT_SIZES[name]
        return abs(math.log(base_w / base_h) - ratio)

    return min(ASPECT_SIZES, key=distance)


class HTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that counts connections and can close them all on stop."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], fake: FakeNanoBananaServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup (``getfqdn`` can take seconds)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (closed, reset, timed out); report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake._state.count_connection()
        with self.conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client socket so idle keep-alive handler threads end now."""
        with self.conn_lock:
            conns = list(self.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests: routing, validation, tasks, files and faults."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeNanoBanana/1.0"
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per answer on Linux loopback). Real API servers do not stall like that.
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections end after 5 minutes

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        """Handle GET."""
        self._handle()

    def do_HEAD(self) -> None:
        """Handle HEAD."""
        self._handle()

    def do_POST(self) -> None:
        """Handle POST."""
        self._handle()

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._handle()

    def do_PATCH(self) -> None:
        """Handle PATCH."""
        self._handle()

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._handle()

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def fake(self) -> FakeNanoBananaServer:
        """The simulator this handler serves."""
        return cast(HTTPServer, self.server).fake

    def _read_body(self) -> bytes:
        """Read the request body (``Content-Length`` or chunked). ``ValueError``: bad framing."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = 0
            self.close_connection = True
        return self.rfile.read(length) if length > 0 else b""

    def write(self, resp: Response, *, truncate: bool = False) -> None:
        """Send ``resp``; with ``truncate`` only half the body, then close the connection."""
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body[: len(resp.body) // 2] if truncate else resp.body)

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return error_response(status, code, message, headers, shape=self.fake.error_shape)

    def _handle(self) -> None:
        fake = self.fake
        arrived = time.monotonic()
        raw_path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except ValueError:  # a chunk size that is not hex: the framing is lost
            self.close_connection = True
            self.write(self._error(400, "token_mismatched", "Malformed chunked request body."))
            return
        prefix = fake.path_prefix.rstrip("/")  # e.g. "/v1" like the XHuoAPI mirror
        path = raw_path[len(prefix) :] if prefix and raw_path.startswith(prefix + "/") else raw_path
        try:
            parsed: object = json.loads(body) if body else NOT_JSON
        except (ValueError, RecursionError):  # RecursionError: absurdly deep JSON
            parsed = NOT_JSON
        fault = fake._state.take_fault(path)
        fake._state.record(
            RecordedRequest(
                method=self.command,
                path=raw_path,
                headers=Headers(self.headers.items()),
                body=body,
                json=None if parsed is NOT_JSON else parsed,
                time=arrived,
                fault=fault.kind if fault else None,
            )
        )
        try:
            if fault is not None:
                serve_fault(self, fault, path, parsed, arrived)
            elif (resp := self.process(path, parsed, arrived)) is not None:
                self.write(resp)
        except OSError:
            raise  # the client went away: HTTPServer.handle_error ignores it
        except Exception as exc:  # a simulator bug must not kill the thread silently
            fake._state.note_internal_error(f"{self.command} {raw_path}: {exc!r}")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.write(self._error(500, "api_error", f"Simulator error: {exc!r}"))

    # -- routing ---------------------------------------------------------------------------------
    def process(self, path: str, parsed: object, arrived: float) -> Response | None:
        """Compute the normal answer; ``None`` when the simulator is stopping (no answer).

        Args:
            path: the API path with any ``path_prefix`` removed.
            parsed: the JSON body, or :data:`NOT_JSON`.
            arrived: ``time.monotonic()`` at arrival, seconds.

        """
        fake = self.fake
        if path.startswith("/files/"):
            return self._file(path)
        if not fake._state.allow(fake.rate_limit, time.monotonic()):
            return self._error(
                429,
                "too_many_requests",
                f"Too many requests: the limit is {fake.rate_limit:g} per second.",
                {"Retry-After": "1"},
            )
        if self.command != "POST" or path not in _API_PATHS:  # simulator's choice
            return self._error(
                400, "api_not_implemented", f"API {self.command} {path} is not implemented."
            )
        if not self._authorized():
            return self._error(
                401, "invalid_token", "Invalid or missing token (authorization: Bearer)."
            )
        if parsed is NOT_JSON:
            return self._error(400, "token_mismatched", "The request body is not valid JSON.")
        if not isinstance(parsed, dict):
            return self._error(400, "token_mismatched", "The request body must be a JSON object.")
        if path == "/nano-banana/tasks":
            return self._tasks(parsed)
        try:
            sub = validate_submission(parsed)
        except ApiError as exc:
            return self._error(exc.status, exc.code, exc.message)
        return self._submit(sub, parsed, arrived)

    def _authorized(self) -> bool:
        token = self.fake.token
        if token is None:
            return True
        scheme, _, value = self.headers.get("authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and value.strip() == token

    def _file(self, path: str) -> Response:
        if self.command not in ("GET", "HEAD"):
            return self._error(
                400, "api_not_implemented", f"API {self.command} {path} is not implemented."
            )
        if m := _PADDED_RE.match(path):
            nbytes = int(m.group(1))
            if nbytes <= _MAX_PADDED:
                return Response(200, padded_png(nbytes), "image/png")
        elif m := _FILE_RE.match(path):
            spec = self.fake._state.get_file(m.group(1))
            if spec is not None:
                return Response(200, make_png(spec.width, spec.height, spec.seed), "image/png")
        return self._error(404, "not_found", f"File {path} not found.")

    def _output_size(self, sub: Submission) -> tuple[int, int]:
        """Pixel size ``(width, height)`` of the results.

        ``generate``: the table size. ``edit``: the first image's size, or with ``resolution``
        2K/4K the table size of ``aspect_ratio`` (else the ratio nearest to the first image) at
        that resolution.
        """
        if sub.size is not None:
            return sub.size
        width, height = self._edit_size(sub.first_image)
        if sub.resolution in ("2K", "4K"):
            base_w, base_h = ASPECT_SIZES[sub.aspect_ratio or _nearest_aspect(width, height)]
            scale = RESOLUTION_SCALE[sub.resolution]
            return base_w * scale, base_h * scale
        return width, height

    def _submit(self, sub: Submission, payload: dict[str, Any], arrived: float) -> Response | None:
        fake = self.fake
        width, height = self._output_size(sub)
        images = []
        for i in range(sub.count):
            seed = f"{sub.prompt}\x00{i}".encode("utf-8", "surrogatepass")  # lone surrogates too
            file_id = fake._state.add_file(FileSpec(width, height, seed))
            images.append((sub.prompt, f"{fake.base_url}/files/{file_id}.png"))
        duration = max(0.0, float(fake.task_duration))
        entry = TaskEntry(
            id=str(uuid.uuid4()),
            trace_id=str(uuid.uuid4()),
            request=payload,
            created_at=time.time(),
            created_mono=arrived,
            duration=duration,
            images=images,
            callback_url=sub.callback_url,
        )
        fake._state.add_task(entry)
        if sub.callback_url:
            fake._callbacks.schedule(arrived + duration, entry.id)
        latency = max(0.0, float(fake.submit_latency))
        wait = latency if sub.is_async or sub.callback_url else max(latency, duration)
        if fake._stopping.wait(max(0.0, arrived + wait - time.monotonic())):
            self.close_connection = True
            return None
        if sub.is_async or sub.callback_url:
            return json_response(
                200, {"success": True, "task_id": entry.id, "trace_id": entry.trace_id}
            )
        result = entry.response(fake.error_shape)
        return json_response(200 if entry.failure is None else 500, result)

    def _edit_size(self, image: str | None) -> tuple[int, int]:
        """Pixel size of the first edit input when the simulator can know it, else 1024x1024."""
        if image is None:
            return 1024, 1024
        if image[:5].lower() == "data:":
            return data_uri_png_size(image) or (1024, 1024)
        parts = urlsplit(image)
        try:
            port = parts.port
        except ValueError:
            return 1024, 1024
        own_port = cast(HTTPServer, self.server).server_address[1]
        if port == own_port and parts.hostname in ("127.0.0.1", "localhost", "::1", self.fake.host):
            if m := _FILE_RE.match(parts.path):
                spec = self.fake._state.get_file(m.group(1))
                if spec is not None:
                    return spec.width, spec.height
            elif _PADDED_RE.match(parts.path):
                return padded_size()
        return 1024, 1024

    def _tasks(self, payload: dict[str, Any]) -> Response:
        state = self.fake._state
        action = payload.get("action")
        if action == "retrieve":
            task_id = payload.get("id")
            if not isinstance(task_id, str) or not task_id:
                return self._error(
                    400, "token_mismatched", "Field 'id' is required (a task id string)."
                )
            record = state.task_record(task_id)
            if record is None:
                return self._error(404, "not_found", f"Task {task_id!r} not found.")
            return json_response(200, record)
        if action == "retrieve_batch":
            ids = payload.get("ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return self._error(
                    400, "token_mismatched", "Field 'ids' must be a list of task id strings."
                )
            found = [state.task_record(i) for i in ids]
            items = [r for r in found if r is not None]
            return json_response(200, {"items": items, "count": len(items)})
        return self._error(
            400,
            "api_not_implemented",
            f"Task action {action!r} is not implemented; use 'retrieve' or 'retrieve_batch'.",
        )
