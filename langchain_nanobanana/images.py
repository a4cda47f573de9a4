"""Image inputs, downloads and LangChain content blocks for the Nano Banana Images API.

In: each ``image_urls`` item is "a accessible http or https url or a base64 encoded image string
like data:image/png;base64,iVBORw0KG... The image size should not exceed 10MB for each" (seed 001).
"10MB" is read as 10 x 2**20 bytes (SPEC Part 2). Local files and raw bytes become data URIs here,
before any request. Out: result images are saved with :func:`download_image` (streamed, size-capped,
http(s) only) and shown to models with :func:`image_content_block`.

No client and no HTTP session of its own; ``requests`` is imported for typing only. (Over 400
lines because every input form and the download path guard the 10 MiB cap, the magic bytes and
the file names themselves: one security surface, kept in one reviewable place.)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import stat
import struct
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote, urlsplit

from langchain_nanobanana.errors import InvalidImageError, NanoBananaError

if TYPE_CHECKING:
    import requests

MAX_IMAGE_BYTES: int = 10 * 2**20
"""Largest image the API accepts, in bytes (seed 001: "should not exceed 10MB for each")."""
DEFAULT_MAX_DOWNLOAD_BYTES: int = 64 * 2**20
"""Default cap, in bytes, on one downloaded result image (a 4K PNG is well below it)."""
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
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}
_FTYP = {b"avif": "image/avif", b"avis": "image/avif", b"mif1": "image/heif", b"msf1": "image/heif"}
_FTYP.update(dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"), "image/heic"))
_EXTRA_EXTENSIONS = {"image/jpeg": (".jpg", ".jpeg")}  # others: "." + subtype
_BMP_HEADERS = {struct.pack("<I", n) for n in (12, 40, 52, 56, 64, 108, 124)}  # DIB header sizes
_OCTET_TYPES = ("", "application/octet-stream", "binary/octet-stream")


def _short(value: object, limit: int = 60) -> str:
    """Quote ``value`` for a message, cut to ``limit`` characters (never a whole base64 blob)."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if not isinstance(value, (str, os.PathLike)):
        return f"<{type(value).__name__}>"
    text = str(os.fspath(value))
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _invalid(
    field: str, problem: str, value: object, allowed: str = _ALLOWED_URL
) -> InvalidImageError:
    return InvalidImageError(f"{field}: {problem}: {_short(value)}. Allowed: {allowed}")


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


def _http_url_problem(url: str) -> str | None:
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


def _data_uri_header(value: str) -> tuple[str, int] | None:
    """``(mime, index of the comma)`` of a ``data:image/<type>;base64,`` URI, else ``None``."""
    comma = value.find(",", 0, 64)
    if comma < 0 or not _DATA_HEADER.fullmatch(value[:comma]):
        return None
    return value[5 : comma - 7].lower(), comma


def _check_data_uri(value: str, field: str) -> None:
    header = _data_uri_header(value)
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
    if sniff_image_mime(data) is None:
        raise _invalid(field, f"decoded payload is not a {_KINDS} image", value)


def validate_image_url(value: str, *, field: str = "image_urls") -> str:
    """Check one ``image_urls`` item and return it unchanged.

    Args:
        value: ``http(s)://host/...``, or ``data:image/<subtype>;base64,<payload>`` with strict
            standard base64 (no whitespace, exact padding) decoding to at most ``MAX_IMAGE_BYTES``
            (10 x 2**20) bytes of a recognised image (magic bytes). Forms and limit: seed 001. The
            decoded size is computed from the string length first: a huge string fails at once.
        field: Name used in error messages (``image_urls`` or ``image_urls[2]``).

    Raises:
        InvalidImageError: Naming the field, the value (cut to 60 characters) and the allowed forms.

    """
    if not isinstance(value, str):
        raise _invalid(field, "expected a string", value)
    head = value[:8].lower()
    if head.startswith(("http://", "https://")):
        problem = _http_url_problem(value)
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
    real = os.path.realpath(path)  # resolves symlinks and "..": the check applies to the target
    if allowed_dir is not None:
        root = os.path.realpath(allowed_dir)
        try:
            inside = os.path.commonpath([real, root]) == root
        except ValueError:  # different drives (Windows)
            inside = False
        if not inside:
            where = f"local files must be inside {_short(root)}; this path resolves outside it"
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
    """Turn one image input into an ``image_urls`` item (seed 001 forms).

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


def image_content_block(url: str) -> dict[str, Any]:
    """Build a LangChain standard image content block (``create_image_block``) for one image.

    Returns:
        For http(s): ``{"type": "image", "url": url, "id": ...}``; for a data URI:
        ``{"type": "image", "base64": payload, "mime_type": "image/<type>", "id": ...}``.

    Raises:
        InvalidImageError: Neither an http(s) URL nor a ``data:image/...;base64,`` URI (the payload
        is not decoded here).

    """
    from langchain_core.messages.content import create_image_block

    head = url[:8].lower() if isinstance(url, str) else ""
    if head.startswith(("http://", "https://")):
        problem = _http_url_problem(url)
        if problem:
            raise _invalid("url", problem, url)
        return dict(create_image_block(url=url))
    header = _data_uri_header(url) if head.startswith("data:") else None
    if header is None:
        raise _invalid("url", "not an http(s) URL nor an image data URI", url)
    mime, comma = header
    return dict(create_image_block(base64=url[comma + 1 :], mime_type=mime))


def safe_filename(name: str, default: str = "image") -> str:
    r"""Reduce ``name`` to a safe file name for the current directory.

    Keeps only the last path segment (``/`` and ``\\`` are separators, so ``..`` traversal is gone),
    drops NUL and control characters, replaces anything but ``[A-Za-z0-9._-]`` with ``_``, strips
    leading/trailing dots, prefixes Windows device names (``CON``), keeps the extension when cutting
    to 100 characters. Never empty: falls back to ``default`` (itself sanitised), then ``"image"``.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_CHARS.sub("_", "".join(c for c in base if c.isprintable())).strip(".")
    if len(base) > 100:
        stem, ext = os.path.splitext(base)
        base = stem[: 100 - len(ext)] + ext if len(ext) <= 16 else base[:100]
    if not base:
        return safe_filename(default) if default and default != "image" else "image"
    if base.split(".", 1)[0].upper() in _RESERVED:
        base = "_" + base[:99]
    return base


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


def download_image(
    session: requests.Session,
    url: str,
    directory: str | os.PathLike[str],
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    timeout: float | tuple[float, float] = (10.0, 60.0),
    chunk_size: int = 64 * 1024,
) -> Path:
    """Stream one image from an http(s) URL into ``directory`` (created with parents).

    Memory stays flat in the image size: the body goes chunk by chunk to a hidden temporary file in
    ``directory``, which is renamed atomically at the end and deleted on any failure. No host is
    whitelisted (results come from several CDN hosts, SPEC Part 1); only the scheme is checked.

    Args:
        session: The caller's ``requests.Session`` (``get(url, stream=True, timeout=timeout)``).
        url: ``http://`` or ``https://`` URL with a host.
        directory: Target directory.
        filename: File name to use; default: the URL's last path segment (percent-decoded). Always
            passed through :func:`safe_filename`; the extension is set to match the sniffed type.
            An existing file is never overwritten: ``name-1.png``, ``name-2.png``, ... are tried.
        max_bytes: Cap on the body in bytes (default 64 MiB); a larger ``Content-Length`` is refused
            before reading, and the stream is aborted once the running total passes it.
        timeout: Seconds, ``(connect, read)`` or one number, per socket operation.
        chunk_size: Bytes per read (default 64 KiB).

    Returns:
        The path of the saved file.

    Raises:
        InvalidImageError: Not an http(s) URL; ``Content-Type`` neither ``image/*`` nor
            ``application/octet-stream`` (or absent); or the body's magic bytes are not an image.
        NanoBananaError: Network error, non-2xx status (named, with the URL), body > ``max_bytes``.

    """
    import requests  # the caller built a Session, so this import is free

    head = url[:8].lower() if isinstance(url, str) else ""
    problem = _http_url_problem(url) if head.startswith(("http://", "https://")) else "not http(s)"
    if problem:
        raise _invalid("url", problem, url, "an http(s) URL with a host")
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    where = f"Download of {_short(url, 120)}"
    try:
        response = session.get(url, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise NanoBananaError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
    with response:
        if not 200 <= response.status_code < 300:
            raise NanoBananaError(f"{where} failed: HTTP {response.status_code}")
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not ctype.startswith("image/") and ctype not in _OCTET_TYPES:
            raise InvalidImageError(f"{where}: Content-Type {ctype!r} is not image/*")
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise NanoBananaError(f"{where} refused: {length} bytes, over max_bytes={max_bytes}")
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".nanobanana-", suffix=".part")
        try:
            mime = _stream_to(fd, response.iter_content(chunk_size), max_bytes, where)
            os.chmod(tmp, 0o644)
            return _publish(tmp, target, _target_name(filename, url, mime))
        except requests.RequestException as exc:
            raise NanoBananaError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _stream_to(fd: int, chunks: Iterator[bytes], max_bytes: int, where: str) -> str:
    head, total, mime = b"", 0, None
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            total += len(chunk)
            if total > max_bytes:
                raise NanoBananaError(f"{where} aborted: body passed max_bytes={max_bytes}")
            if mime is None:
                head += chunk[: 64 - len(head)]
                if len(head) >= 64:
                    mime = _require_image(head, where)
            out.write(chunk)
    return mime or _require_image(head, where)


def _require_image(head: bytes, where: str) -> str:
    mime = sniff_image_mime(head)
    if mime is None:
        raise InvalidImageError(f"{where}: the body is not a {_KINDS} image")
    return mime


def _target_name(filename: str | None, url: str, mime: str) -> str:
    raw = filename if filename is not None else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    stem, ext = os.path.splitext(safe_filename(raw))
    exts = _EXTRA_EXTENSIONS.get(mime, ("." + mime.split("/")[1],))
    ext = ext if ext.lower() in exts else exts[0]
    return stem[: 100 - len(ext)] + ext


def _publish(tmp: str, directory: Path, name: str) -> Path:
    """Give ``tmp`` its final name atomically without ever replacing an existing file."""
    stem, ext = os.path.splitext(name)
    for n in range(10_000):
        candidate = directory / (name if n == 0 else f"{stem}-{n}{ext}")
        try:
            os.link(tmp, candidate)  # fails when candidate exists; tmp is unlinked by the caller
            return candidate
        except FileExistsError:
            continue
        except OSError:  # no hard links here: reserve the name, then replace it atomically
            try:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, candidate)
            return candidate
    raise NanoBananaError(f"No free file name for {name!r} in {directory}")
