"""Real, cheap PNG images for the simulator (standard library only: ``zlib`` and ``struct``).

Images are 8-bit RGB (colour type 2), a vertical gradient whose colour is derived from a seed (the
prompt), encoded with ``zlib`` level 1. Rows are built with ``bytes`` multiplication, never a Python
loop per pixel, so a 4096x4096 image encodes in a fraction of a second. Encoded images are cached by
``(width, height, colour)``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

__all__ = ["PNG_SIGNATURE", "make_png", "padded_png", "png_size"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The 8 bytes every PNG file starts with."""

_MAX_SIDE = 16384
_GRADIENT_BANDS = 64
_PAD_CHUNK_TYPE = b"pdDg"  # ancillary, private, reserved-bit clear, safe-to-copy
_PADDED_BASE_SIDE = 16


def _chunk(kind: bytes, data: bytes) -> bytes:
    """Encode one PNG chunk: length, type, data, CRC-32 of type + data."""
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def colour_for(seed: bytes) -> tuple[int, int, int]:
    """Derive a stable RGB colour (each channel 0..255) from arbitrary seed bytes."""
    digest = hashlib.sha256(seed).digest()
    return digest[0], digest[1], digest[2]


@lru_cache(maxsize=64)
def _encode(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """Encode a ``width`` x ``height`` RGB gradient from ``colour`` (top) to its half (bottom)."""
    r, g, b = colour
    bands = min(_GRADIENT_BANDS, height)
    rows: list[bytes] = []
    for band in range(bands):
        # Linear fade from the full colour to half its brightness.
        f = 1.0 - 0.5 * band / max(1, bands - 1)
        pixel = bytes((int(r * f), int(g * f), int(b * f)))
        rows.append(b"\x00" + pixel * width)  # filter type 0 (None) + pixels
    compressor = zlib.compressobj(1)
    parts: list[bytes] = []
    # Feed the compressor one band at a time: a band is the same row repeated.
    for band in range(bands):
        start = band * height // bands
        stop = (band + 1) * height // bands
        parts.append(compressor.compress(rows[band] * (stop - start)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def make_png(width: int, height: int, seed_bytes: bytes = b"") -> bytes:
    """Return a valid PNG of ``width`` x ``height`` pixels (8-bit RGB) coloured from ``seed_bytes``.

    Args:
        width: image width in pixels, 1..16384.
        height: image height in pixels, 1..16384.
        seed_bytes: any bytes (typically the UTF-8 prompt); the same seed gives the same colour.

    Returns:
        The encoded PNG file (bytes). Results are cached by ``(width, height, colour)``.

    Raises:
        ValueError: a side is outside 1..16384.

    """
    if not (1 <= width <= _MAX_SIDE and 1 <= height <= _MAX_SIDE):
        raise ValueError(f"PNG sides must be 1..{_MAX_SIDE}, got {width}x{height}")
    return _encode(width, height, colour_for(seed_bytes))


def png_size(data: bytes) -> tuple[int, int]:
    """Read ``(width, height)`` in pixels from a PNG's IHDR chunk.

    Args:
        data: the PNG file, or at least its first 24 bytes.

    Raises:
        ValueError: ``data`` does not start with a PNG signature followed by an IHDR chunk.

    """
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file (missing signature or IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def padded_size() -> tuple[int, int]:
    """Pixel size ``(width, height)`` of the images :func:`padded_png` returns."""
    return _PADDED_BASE_SIDE, _PADDED_BASE_SIDE


@lru_cache(maxsize=4)
def padded_png(nbytes: int) -> bytes:
    """Return a valid PNG of exactly ``nbytes`` bytes (for download benchmarks).

    A small 16x16 image is padded with one private ancillary chunk (type ``pdDg``, zero bytes) that
    decoders skip. When ``nbytes`` is smaller than the unpadded image plus one chunk header (about
    100 bytes), the unpadded image is returned as is (so the result is then larger than ``nbytes``).

    Args:
        nbytes: wanted file size in bytes.

    """
    base = make_png(_PADDED_BASE_SIDE, _PADDED_BASE_SIDE, b"padded")
    pad = nbytes - len(base) - 12  # 12 = length + type + CRC of the padding chunk
    if pad < 0:
        return base
    iend = base[-12:]
    return base[:-12] + _chunk(_PAD_CHUNK_TYPE, bytes(pad)) + iend
