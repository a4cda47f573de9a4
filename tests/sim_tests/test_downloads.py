"""``langchain_nanobanana.images.download_image`` against a small loopback HTTP server.

Downloads go through a client's transport (``client._transport``: its pooled session, never the
token); the server here serves the odd answers an image host may give.
"""

from __future__ import annotations

import os
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from langchain_nanobanana import NanoBananaClient
from langchain_nanobanana._transport import Transport
from langchain_nanobanana.errors import APIConnectionError, InvalidImageError, NanoBananaError
from langchain_nanobanana.images import download_image
from tests.images import GIF_1X1, PNG, make_jpeg, make_webp, padded_png

# --------------------------------------------------------------------------- download_image

BIG_BODY = padded_png(8 * 2**20)
SMALL_LIMIT = 100_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # no Content-Length means "until the connection closes"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, ctype: str, body: bytes, length: int | None = -1) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(len(body) if length == -1 else length))
        self.end_headers()
        try:
            view = memoryview(body)
            for start in range(0, len(body), 64 * 1024):
                self.wfile.write(view[start : start + 64 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        path = self.path
        if path == "/img/cat.png":
            self._send(200, "image/png", PNG)
        elif path == "/img/photo.jpg":
            self._send(200, "image/png; charset=binary", PNG)  # lying extension
        elif path == "/img/real.jpeg":
            self._send(200, "image/jpeg", make_jpeg(2, 2))
        elif path == "/page.html":
            self._send(200, "text/html; charset=utf-8", b"<html><body>hi</body></html>")
        elif path == "/octet/pic":
            self._send(200, "application/octet-stream", GIF_1X1)
        elif path == "/no-type":
            self._send(200, "", make_webp(b"VP8X", 2, 2))
        elif path == "/octet/page":
            self._send(200, "application/octet-stream", b"<html>" + bytes(100))
        elif path == "/liar.png":
            self._send(200, "image/png", b"<html><script>alert(1)</script></html>" * 5)
        elif path == "/huge-length.png":
            self._send(200, "image/png", PNG, length=10**12)  # refuse before reading
        elif path == "/big-length.png":
            self._send(200, "image/png", padded_png(SMALL_LIMIT * 3))
        elif path == "/big-nolength.png":
            self._send(200, "image/png", padded_png(SMALL_LIMIT * 3), length=None)
        elif path == "/stream.png":
            self._send(200, "image/png", BIG_BODY, length=None)
        elif path.startswith("/x/"):
            self._send(200, "image/png", PNG)
        elif path == "/server-error.png":
            self._send(503, "text/plain", b"busy")
        else:
            self._send(404, "text/plain", b"not found")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def transport(server: str) -> Iterator[Transport]:
    """The transport of a token-less client (what ``ImageResult.download`` uses by default)."""
    with NanoBananaClient(api_token="", base_url=server, max_retries=0) as client:
        client.session.trust_env = False  # no proxies for loopback
        yield client._transport


def all_entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))  # includes hidden temporary files


def test_download_png(server: str, transport: Transport, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"  # created with parents
    path = download_image(transport, f"{server}/img/cat.png", target)
    assert path == target / "cat.png"
    assert path.read_bytes() == PNG
    assert all_entries(target) == ["cat.png"]


def test_download_fixes_extension(server: str, transport: Transport, tmp_path: Path) -> None:
    assert download_image(transport, f"{server}/img/photo.jpg", tmp_path).name == "photo.png"
    assert download_image(transport, f"{server}/img/real.jpeg", tmp_path).name == "real.jpeg"
    assert download_image(transport, f"{server}/octet/pic", tmp_path).name == "pic.gif"
    assert download_image(transport, f"{server}/no-type", tmp_path).name == "no-type.webp"
    named = download_image(transport, f"{server}/img/cat.png", tmp_path, filename="../../evil.sh")
    assert named == tmp_path / "evil.png"


def test_download_small_chunks(server: str, transport: Transport, tmp_path: Path) -> None:
    path = download_image(transport, f"{server}/img/cat.png", tmp_path, chunk_size=1)
    assert path.read_bytes() == PNG


def test_download_never_overwrites(server: str, transport: Transport, tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"precious")
    first = download_image(transport, f"{server}/img/cat.png", tmp_path)
    second = download_image(transport, f"{server}/img/cat.png", tmp_path)
    assert (first.name, second.name) == ("cat-1.png", "cat-2.png")
    assert (tmp_path / "cat.png").read_bytes() == b"precious"
    assert first.read_bytes() == second.read_bytes() == PNG
    assert all_entries(tmp_path) == ["cat-1.png", "cat-2.png", "cat.png"]


def test_download_same_name_twice(server: str, transport: Transport, tmp_path: Path) -> None:
    paths = [download_image(transport, f"{server}/img/cat.png", tmp_path) for _ in range(2)]
    assert [p.name for p in paths] == ["cat.png", "cat-1.png"]


def test_download_traversal_name_sanitised(
    server: str, transport: Transport, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    path = download_image(transport, f"{server}/x/..%2F..%2Fetc%2Fpasswd", target)
    assert path.parent == target
    assert path.name == "passwd.png"
    assert all_entries(target) == ["passwd.png"]
    assert all_entries(tmp_path) == ["out"]


def test_download_refuses_html(server: str, transport: Transport, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="text/html") as err:
        download_image(transport, f"{server}/page.html", tmp_path)
    assert "/page.html" in str(err.value)
    for path in ("/octet/page", "/liar.png"):
        with pytest.raises(InvalidImageError, match="not a PNG"):
            download_image(transport, server + path, tmp_path)
    assert all_entries(tmp_path) == []


def test_download_refuses_large_content_length(
    server: str, transport: Transport, tmp_path: Path
) -> None:
    with pytest.raises(NanoBananaError, match="max_bytes") as err:
        download_image(transport, f"{server}/huge-length.png", tmp_path)
    assert "refused" in str(err.value) and str(10**12) in str(err.value)
    with pytest.raises(NanoBananaError, match="refused"):
        download_image(transport, f"{server}/big-length.png", tmp_path, max_bytes=SMALL_LIMIT)
    assert all_entries(tmp_path) == []


def test_download_aborts_stream_over_limit(
    server: str, transport: Transport, tmp_path: Path
) -> None:
    with pytest.raises(NanoBananaError, match="aborted") as err:
        download_image(transport, f"{server}/big-nolength.png", tmp_path, max_bytes=SMALL_LIMIT)
    assert not isinstance(err.value, InvalidImageError)
    assert all_entries(tmp_path) == []
    # the same body fits a larger cap
    path = download_image(transport, f"{server}/big-nolength.png", tmp_path)
    assert path.stat().st_size == SMALL_LIMIT * 3


def test_download_memory_stays_flat(server: str, transport: Transport, tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        path = download_image(transport, f"{server}/stream.png", tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size == len(BIG_BODY)
    assert peak < 2 * 2**20, f"peak {peak} bytes for an {len(BIG_BODY)}-byte download"


def test_download_http_errors(server: str, transport: Transport, tmp_path: Path) -> None:
    with pytest.raises(NanoBananaError, match="HTTP 404") as err:
        download_image(transport, f"{server}/nope.png", tmp_path)
    assert f"{server}/nope.png" in str(err.value)
    assert not isinstance(err.value, InvalidImageError)
    with pytest.raises(NanoBananaError, match="HTTP 503"):
        download_image(transport, f"{server}/server-error.png", tmp_path)
    assert all_entries(tmp_path) == []


def test_download_connection_refused(transport: Transport, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(APIConnectionError, match="ConnectionError") as err:
        download_image(transport, f"http://127.0.0.1:{port}/a.png", tmp_path, timeout=(2, 2))
    assert f"127.0.0.1:{port}" in str(err.value)
    # Transport errors are scrubbed, never chained (nothing reachable holds a request or header).
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert all_entries(tmp_path) == []


class _NoNetwork:
    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no request should be made")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.png", "data:image/png;base64,AAAA", "x"]
)
def test_download_only_http(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="url: "):
        download_image(_NoNetwork(), url, tmp_path)  # type: ignore[arg-type]
