"""Hand-built images for the tests (PNG, GIF, JPEG, WEBP, BMP, ISO-BMFF headers) and the check
of an ``InvalidImageError`` message, shared by the image-input and download tests.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib

import pytest

from langchain_nanobanana.errors import InvalidImageError


def make_png(width: int = 3, height: int = 2) -> bytes:
    """A real, decodable RGB PNG built with zlib and struct."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([255, 0, 0]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# The classic 1x1 transparent GIF89a (header, palette, GCE, image descriptor, LZW data, trailer).
GIF_1X1 = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def make_gif_header(width: int, height: int) -> bytes:
    return b"GIF87a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg_segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def make_jpeg(width: int, height: int, sof: int = 0xC0) -> bytes:
    """JPEG marker structure: SOI, APP0 JFIF, DQT, DHT, fill bytes, SOFn, EOI."""
    sof_body = (
        b"\x08" + struct.pack(">HH", height, width) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    return (
        b"\xff\xd8"
        + jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + jpeg_segment(0xDB, b"\x00" + bytes(range(64)))
        + jpeg_segment(0xC4, b"\x00" + bytes(16) + b"")
        + b"\xff\xff"  # fill bytes before a marker are allowed
        + jpeg_segment(sof, sof_body)
        + b"\xff\xd9"
    )


def make_webp(kind: bytes, width: int, height: int) -> bytes:
    if kind == b"VP8X":
        body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
        body += (height - 1).to_bytes(3, "little")
    elif kind == b"VP8L":
        body = b"\x2f" + struct.pack("<I", (width - 1) | ((height - 1) << 14)) + bytes(8)
    else:
        body = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) + bytes(8)
    riff_body = b"WEBP" + kind + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(riff_body)) + riff_body


def make_bmp(width: int, height: int) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40, 0, 0, 54) + dib


def make_ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(16)


PNG = make_png()
PNG_B64 = base64.b64encode(PNG).decode()
LONG_B64 = re.compile(r"[A-Za-z0-9+/=]{50,}")


def padded_png(size: int) -> bytes:
    """A PNG signature followed by zeros: exactly ``size`` bytes that sniff as PNG."""
    return PNG + bytes(size - len(PNG))


def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def assert_good_message(err: pytest.ExceptionInfo[InvalidImageError], field: str) -> str:
    message = str(err.value)
    assert message.startswith(f"{field}: ")
    assert "Allowed:" in message and "http(s) URL" in message and "data:image/" in message
    assert "10 MiB" in message
    assert LONG_B64.search(message) is None, message
    assert len(message) < 400
    return message
