"""Helpers shared by the test modules: constants, simulator clients and small checks.

Everything here talks to the loopback ``FakeNanoBananaServer``; nothing mocks ``requests``.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from langchain_nanobanana import NanoBananaClient
from langchain_nanobanana.images import sniff_image_mime
from langchain_nanobanana.testing import FakeNanoBananaServer

__all__ = [
    "SIM_TOKEN",
    "SIZES_1K",
    "eventually",
    "fast_client",
    "free_port",
    "image_size",
    "invoke_tool",
    "json_bodies",
    "make_image_dirs",
    "tool_call_input",
]

SIM_TOKEN = "sim-token-do-not-leak-7f3a9c"
"""The token of the ``sim`` fixture's simulator (and of the ``client`` fixture)."""

SIZES_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
}
"""Gemini's documented 1K output sizes per aspect ratio, ``(width, height)``; 2K doubles both
sides, 4K quadruples them. Written out here on purpose: the tests' own oracle, independent of the
simulator's table (``langchain_nanobanana.testing.ASPECT_SIZES``)."""


def fast_client(
    sim: FakeNanoBananaServer, token: str | None = None, **overrides: Any
) -> NanoBananaClient:
    """A poll-mode client on ``sim`` that does not wait out production delays.

    Polls every 20 ms growing to 100 ms, gives up after 20 s and backs off 20 ms between retries.
    ``token`` defaults to the simulator's own; ``overrides`` replace any client option (including
    ``base_url``).
    """
    options: dict[str, Any] = {
        "base_url": sim.base_url,
        "poll_interval": 0.02,
        "max_poll_interval": 0.1,
        "max_wait": 20.0,
        "backoff_factor": 0.02,
    }
    options.update(overrides)
    return NanoBananaClient(token or sim.token, **options)


def json_bodies(sim: FakeNanoBananaServer, path: str) -> list[dict[str, Any]]:
    """The JSON object bodies of every request ``sim`` received on ``path``, in order."""
    out = []
    for request in sim.requests_to(path):
        assert isinstance(request.json, dict)
        out.append(request.json)
    return out


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released): connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def eventually(predicate: Callable[[], bool], within: float = 5.0) -> bool:
    """Wait until ``predicate()`` holds (at most ``within`` seconds); not a timing assertion."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def tool_call_input(
    tool: BaseTool, args: dict[str, Any], call_id: str = "call-1"
) -> dict[str, Any]:
    """A ``ToolCall`` dict for ``tool`` (what an agent passes), so the tool answers a
    ``ToolMessage``."""
    return {"type": "tool_call", "id": call_id, "name": tool.name, "args": args}


def invoke_tool(
    tool: BaseTool, args: dict[str, Any], config: RunnableConfig | None = None
) -> ToolMessage:
    """Invoke ``tool`` with a ``ToolCall`` (id ``call-1``) and return its ``ToolMessage``."""
    message = tool.invoke(tool_call_input(tool, args), config=config)
    assert isinstance(message, ToolMessage)
    return message


def make_image_dirs(
    root: Path, inside: str, inside_png: bytes, secret_png: bytes
) -> tuple[Path, Path]:
    """Create ``root/allowed`` holding the PNG ``inside`` and ``root/outside`` holding
    ``secret.png``; return ``(allowed, outside)``."""
    allowed, outside = root / "allowed", root / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / inside).write_bytes(inside_png)
    (outside / "secret.png").write_bytes(secret_png)
    return allowed, outside


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return ``(width, height)`` in pixels, best effort from the header; ``None`` when unknown.

    Reads PNG (IHDR), GIF (screen descriptor), JPEG (first SOFn), WEBP (VP8/VP8L/VP8X) and BMP.
    """
    mime = sniff_image_mime(data)
    try:
        if mime == "image/png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if mime == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if mime == "image/bmp":
            if struct.unpack("<I", data[14:18])[0] == 12:
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if mime == "image/webp":
            return _webp_size(data)
        if mime == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # standalone markers: no length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None
