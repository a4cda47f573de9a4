"""Image inputs -> validated ``image_urls`` items, without I/O beyond reading a local file.

Each ``image_urls`` item is "a accessible http or https url or a base64 encoded image string like
data:image/png;base64,iVBORw0KG... The image size should not exceed 10MB for each" (the Nano
Banana Images API reference, https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d);
"10MB" is read as 10 x 2**20 bytes. Local files and raw bytes become data URIs here, before any
request; the declared type of a data URI must match its bytes (magic bytes).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import struct
import sys
from collections.abc import Iterable, Sequence
from functools import partial
from typing import TypeAlias
from urllib.parse import urlsplit

from langchain_nanobanana.errors import InvalidImageError

__all__ = [
    "MAX_IMAGE_BYTES",
    "ImageInput",
    "data_uri",
    "data_uri_header",
    "http_url_problem",
    "shorten",
    "sniff_image_mime",
    "to_image_url",
    "to_image_urls",
    "validate_image_url",
]

MAX_IMAGE_BYTES: int = 10 * 2**20
"""Largest image the API accepts, in bytes ("should not exceed 10MB for each": the Nano Banana
Images API reference, https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d)."""
ImageInput: TypeAlias = str | os.PathLike[str] | bytes
"""An http(s) URL or data URI (``str``), a local file (``str`` or ``PathLike``), or raw bytes."""

_ALLOWED_URL = (
    "an http(s) URL with a host, or a data URI 'data:image/<type>;base64,<payload>', "
    "each image at most 10 MiB"
)
_ALLOWED_INPUT = _ALLOWED_URL + "; also raw image bytes or a local image file"
_KINDS = "PNG, JPEG, GIF, WEBP, BMP, HEIC/HEIF or AVIF"
_DATA_HEADER = re.compile(r"data:image/[a-z0-9][a-z0-9.+-]{0,40};base64", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # 2+ letters, so "C:\\x.png" stays a path
_FTYP = {b"avif": "image/avif", b"avis": "image/avif", b"mif1": "image/heif", b"msf1": "image/heif"}
_FTYP.update(dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"), "image/heic"))
_BMP_HEADERS = {struct.pack("<I", n) for n in (12, 40, 52, 56, 64, 108, 124)}  # DIB header sizes
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-ms-bmp": "image/bmp"}


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters for an error message (never a whole base64
    blob; bytes are shown as ``<N bytes>``, a path as its text).
    """
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = repr(os.fspath(value) if isinstance(value, os.PathLike) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _invalid(
    field: str, problem: str, value: object, allowed: str = _ALLOWED_URL
) -> InvalidImageError:
    return InvalidImageError(f"{field}: {problem}: {shorten(value)}. Allowed: {allowed}")


def sniff_image_mime(data: bytes) -> str | None:
    """Identify an image from its magic bytes (only the first 64 bytes are read).

    Returns:
        ``"image/png"``, ``"image/jpeg"``, ``"image/gif"``, ``"image/webp"`` (``RIFF....WEBP``),
        ``"image/bmp"`` (``BM`` plus a known DIB header size), ``"image/heic"``, ``"image/heif"`` or
        ``"image/avif"`` (ISO-BMFF ``ftyp`` major or compatible brands), else ``None``.

    """
    head = bytes(data[:64])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:2] == b"BM" and head[14:18] in _BMP_HEADERS:
        return "image/bmp"
    if head[4:8] == b"ftyp":
        end = min(len(head), int.from_bytes(head[:4], "big"))
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
        found = [_FTYP[b] for b in brands if b in _FTYP]
        specific = [m for m in found if m != "image/heif"]
        return (specific or found)[0] if found else None
    return None


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host, or ``None`` when it is."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return "malformed URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "only http and https URLs are allowed"
    if not parts.hostname:
        return "URL has no host"
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in url):
        return "URL contains whitespace or control characters"
    return None


def _b64decode_strict(payload: str) -> bytes:
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(payload, strict_mode=True)
    if len(payload) % 4:  # pragma: no cover - Python 3.10 only
        raise binascii.Error("base64 length is not a multiple of 4")
    return base64.b64decode(payload, validate=True)  # pragma: no cover - Python 3.10 only


def data_uri_header(value: str) -> tuple[str, int] | None:
    """``(mime, index of the comma)`` of a ``data:image/<type>;base64,`` URI, else ``None``."""
    comma = value.find(",", 0, 64)
    if comma < 0 or not _DATA_HEADER.fullmatch(value[:comma]):
        return None
    return value[5 : comma - 7].lower(), comma


def _check_data_uri(value: str, field: str) -> None:
    header = data_uri_header(value)
    if header is None:
        raise _invalid(field, "malformed data URI", value)
    comma = header[1]
    payload_chars = len(value) - comma - 1
    padding = 2 if value.endswith("==") else 1 if value.endswith("=") else 0
    size = payload_chars // 4 * 3 - padding  # decoded size, known before decoding anything
    if size > MAX_IMAGE_BYTES:
        raise _invalid(field, f"image is {size} bytes, over {MAX_IMAGE_BYTES} bytes", value)
    try:
        data = _b64decode_strict(value[comma + 1 :])
    except (binascii.Error, ValueError):
        raise _invalid(field, "payload is not valid standard base64", value) from None
    found = sniff_image_mime(data)
    if found is None:
        raise _invalid(field, f"decoded payload is not a {_KINDS} image", value)
    declared = _ALIASES.get(header[0], header[0])
    if declared != found and {declared, found} != {"image/heic", "image/heif"}:
        raise _invalid(
            field, f"declares {header[0]} but its bytes are {found}; declare data:{found}", value
        )


def validate_image_url(value: str, *, field: str = "image_urls") -> str:
    """Check one ``image_urls`` item and return it unchanged.

    Args:
        value: ``http(s)://host/...``, or ``data:image/<subtype>;base64,<payload>`` with strict
            standard base64 (no whitespace, exact padding) decoding to at most ``MAX_IMAGE_BYTES``
            (10 x 2**20) bytes of a recognised image (magic bytes). Forms and limit: the Nano Banana
            Images API reference,
            https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d. The
            decoded size is computed from the string length first: a huge string fails at once.
        field: Name used in error messages (``image_urls`` or ``image_urls[2]``).

    Raises:
        InvalidImageError: Naming the field, the value (cut to 60 characters) and the allowed forms.

    """
    if not isinstance(value, str):
        raise _invalid(field, "expected a string", value)
    head = value[:8].lower()
    if head.startswith(("http://", "https://")):
        problem = http_url_problem(value)
        if problem:
            raise _invalid(field, problem, value)
    elif head.startswith("data:"):
        _check_data_uri(value, field)
    else:
        raise _invalid(field, "not an http(s) URL nor an image data URI", value)
    return value


def data_uri(data: bytes, mime: str | None = None) -> str:
    """Encode ``data`` as ``data:<mime>;base64,<payload>``.

    Args:
        data: Raw bytes. No size check here (see :func:`to_image_url`).
        mime: MIME type; default: sniffed with :func:`sniff_image_mime`.

    Raises:
        InvalidImageError: ``mime`` is ``None`` and the bytes are not a recognised image.

    """
    mime = mime or sniff_image_mime(data)
    if mime is None:
        raise _invalid("image", f"bytes are not a {_KINDS} image", data, _ALLOWED_INPUT)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _encode(data: bytes, field: str, value: object) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        too_big = f"image is {len(data)} bytes, over {MAX_IMAGE_BYTES} bytes"
        raise _invalid(field, too_big, value, _ALLOWED_INPUT)
    mime = sniff_image_mime(data)
    if mime is None:
        raise _invalid(field, f"content is not a {_KINDS} image", value, _ALLOWED_INPUT)
    return data_uri(data, mime)


def _read_local(
    path: str, field: str, allowed_dir: str | os.PathLike[str] | None, allow_local_paths: bool
) -> str:
    if not allow_local_paths:
        raise _invalid(field, "local file paths are not allowed here", path)
    if allowed_dir is not None and not os.path.isabs(path):
        path = os.path.join(allowed_dir, path)  # relative to the allowed folder, not the cwd
    real = os.path.realpath(path)  # resolves symlinks and "..": the check applies to the target
    if allowed_dir is not None:
        root = os.path.realpath(allowed_dir)
        try:
            inside = os.path.commonpath([real, root]) == root
        except ValueError:  # different drives (Windows)
            inside = False
        if not inside:
            where = f"local files must be inside {shorten(root)}; this path resolves outside it"
            raise _invalid(field, where, path, _ALLOWED_INPUT)
    try:
        info = os.stat(real)
        if not stat.S_ISREG(info.st_mode):
            raise _invalid(field, "not a regular file", path, _ALLOWED_INPUT)
        if info.st_size > MAX_IMAGE_BYTES:
            too_big = f"file is {info.st_size} bytes, over {MAX_IMAGE_BYTES} bytes"
            raise _invalid(field, too_big, path, _ALLOWED_INPUT)
        chunks, total = [], 0
        with open(real, "rb") as fh:
            while chunk := fh.read(2**20):
                total += len(chunk)
                if total > MAX_IMAGE_BYTES:  # the file grew after stat
                    raise _invalid(field, "file is over 10 MiB", path, _ALLOWED_INPUT)
                chunks.append(chunk)
    except OSError as exc:
        raise _invalid(field, f"cannot read file ({exc.strerror})", path, _ALLOWED_INPUT) from None
    return _encode(b"".join(chunks), field, path)


def to_image_url(
    image: ImageInput,
    *,
    allowed_image_dir: str | os.PathLike[str] | None = None,
    allow_local_paths: bool = True,
    field: str = "image_urls",
) -> str:
    """Turn one image input into an ``image_urls`` item (the forms of the Images API reference).

    Args:
        image: An http(s) URL or data URI ``str`` (see :func:`validate_image_url`); raw ``bytes``
            (sniffed, at most 10 MiB, become a data URI); or a local file, as ``PathLike`` or any
            other ``str`` without a URL scheme (size checked with ``stat`` before reading, read in
            chunks, sniffed, becomes a data URI). Other schemes (``file:``, ``ftp:``) are refused.
        allowed_image_dir: When set, a local file's real path (symlinks and ``..`` resolved)
            must lie inside this directory's real path. Default ``None``: no restriction.
        allow_local_paths: ``False`` refuses local files altogether (default ``True``).
        field: Name used in error messages.

    Returns:
        An http(s) URL unchanged, or ``data:image/<type>;base64,<payload>``.

    Raises:
        InvalidImageError: Naming the field, the value (cut to 60 characters) and what is allowed.

    """
    if isinstance(image, (bytes, bytearray)):
        return _encode(bytes(image), field, image)
    if isinstance(image, str):
        if image[:8].lower().startswith(("http://", "https://", "data:")):
            return validate_image_url(image, field=field)
        if _SCHEME.match(image):
            raise _invalid(field, "unsupported URL scheme", image, _ALLOWED_INPUT)
        if not image.strip():
            raise _invalid(field, "empty value", image, _ALLOWED_INPUT)
        path = image
    elif isinstance(image, os.PathLike):
        fspath = os.fspath(image)
        if not isinstance(fspath, str):
            raise _invalid(field, "bytes paths are not supported", image, _ALLOWED_INPUT)
        path = fspath
    else:
        raise _invalid(field, "unsupported type", image, _ALLOWED_INPUT)
    return _read_local(path, field, allowed_image_dir, allow_local_paths)


def to_image_urls(
    images: Sequence[ImageInput] | ImageInput,
    *,
    allowed_image_dir: str | os.PathLike[str] | None = None,
    allow_local_paths: bool = True,
    field: str = "image_urls",
) -> list[str]:
    """Apply :func:`to_image_url` to each image; a single ``str``/``bytes``/path is one image.

    Errors name the index (``image_urls[2]``). An empty sequence gives ``[]`` (whether ``edit`` may
    run without images is ``ImageRequest``'s rule, not this function's).
    """
    one = partial(
        to_image_url, allowed_image_dir=allowed_image_dir, allow_local_paths=allow_local_paths
    )
    if isinstance(images, (str, bytes, bytearray, os.PathLike)):
        return [one(images, field=field)]
    if not isinstance(images, Iterable):
        raise _invalid(field, "expected a list of images", images, _ALLOWED_INPUT)
    return [one(image, field=f"{field}[{i}]") for i, image in enumerate(images)]
