"""Result images out: streamed downloads through the client's transport, safe file names, and
LangChain standard image content blocks.

Downloads are http(s) only, size-capped, content-type and magic-byte checked, written to a
temporary file and renamed atomically, never overwriting a file; no host is whitelisted (results
come from several CDN hosts, vendor Tasks API guide). Image inputs live in ``_inputs``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from langchain_nanobanana._inputs import (
    MAX_IMAGE_BYTES,
    ImageInput,
    data_uri,
    data_uri_header,
    http_url_problem,
    shorten,
    sniff_image_mime,
    to_image_url,
    to_image_urls,
    validate_image_url,
)
from langchain_nanobanana.errors import InvalidImageError, NanoBananaError

if TYPE_CHECKING:
    from langchain_nanobanana._transport import Transport

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "MAX_IMAGE_BYTES",
    "ImageInput",
    "data_uri",
    "download_image",
    "image_content_block",
    "safe_filename",
    "sniff_image_mime",
    "to_image_url",
    "to_image_urls",
    "validate_image_url",
]

DEFAULT_MAX_DOWNLOAD_BYTES: int = 64 * 2**20
"""Default cap, in bytes, on one downloaded result image (a 4K PNG is well below it)."""
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}
_EXTRA_EXTENSIONS = {"image/jpeg": (".jpg", ".jpeg")}  # others: "." + subtype
_OCTET_TYPES = ("", "application/octet-stream", "binary/octet-stream")
_KINDS = "PNG, JPEG, GIF, WEBP, BMP, HEIC/HEIF or AVIF"


def _invalid(field: str, problem: str, value: object) -> InvalidImageError:
    return InvalidImageError(f"{field}: {problem}: {shorten(value)}")


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
        problem = http_url_problem(url)
        if problem:
            raise _invalid("url", problem, url)
        return dict(create_image_block(url=url))
    header = data_uri_header(url) if head.startswith("data:") else None
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


class ResultImages(Protocol):
    """What :func:`download_result` reads of an ``ImageResult``."""

    @property
    def status(self) -> str:
        """``succeeded``, ``pending`` or ``failed``."""

    @property
    def task_id(self) -> str | None:
        """The task of the images."""

    @property
    def urls(self) -> list[str]:
        """The image URLs, in order."""


def download_result(
    result: ResultImages,
    directory: str | os.PathLike[str] = "out",
    *,
    prefix: str | None = None,
    max_bytes: int | None = None,
    transport: Transport | None = None,
    timeout: tuple[float, float] = (10.0, 60.0),
) -> list[Path]:
    """Download every image of ``result`` into ``directory`` (see ``ImageResult.download``):
    files ``<prefix or task_id>[-n]<ext>``, each streamed, capped at ``max_bytes`` (default
    64 MiB), http(s) only, never with the token.

    Args:
        transport: The client's transport (its pools); ``None``: a short-lived one of its own,
            which needs no environment (downloads never send the token).
        timeout: ``(connect, read)`` seconds.

    Raises:
        NanoBananaError: The result has no images (pending / failed), or a download failed.
        InvalidImageError: A URL that is not http(s), or a body that is not an image.

    """
    if not result.urls:
        raise NanoBananaError(
            f"Nothing to download: status={result.status!r}", task_id=result.task_id
        )
    if transport is None:
        from langchain_nanobanana._env import DEFAULT_BASE_URL
        from langchain_nanobanana._transport import Transport

        own = Transport(DEFAULT_BASE_URL, max_retries=2, backoff_factor=0.5, pool_maxsize=10)
        with contextlib.closing(own):
            return download_result(
                result,
                directory,
                prefix=prefix,
                max_bytes=max_bytes,
                transport=own,
                timeout=timeout,
            )
    stem = prefix or result.task_id or "image"
    many = len(result.urls) > 1
    return [
        download_image(
            transport,
            url,
            directory,
            filename=f"{stem}-{n}" if many else stem,
            max_bytes=max_bytes or DEFAULT_MAX_DOWNLOAD_BYTES,
            timeout=timeout,
        )
        for n, url in enumerate(result.urls, start=1)
    ]


def download_image(
    transport: Transport,
    url: str,
    directory: str | os.PathLike[str],
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    timeout: tuple[float, float] = (10.0, 60.0),
    chunk_size: int = 64 * 1024,
) -> Path:
    """Stream one image from an http(s) URL into ``directory`` (created with parents).

    Memory stays flat in the image size: the body goes chunk by chunk to a hidden temporary file in
    ``directory``, which is renamed atomically at the end and deleted on any failure. No host is
    whitelisted (results come from several CDN hosts: the vendor's documents show
    ``platform.cdn.acedata.cloud`` and ``cdn.acedata.cloud``); only the scheme is checked.

    Args:
        transport: The client's transport (its session and pools; the token is never sent).
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
    import requests

    head = url[:8].lower() if isinstance(url, str) else ""
    problem = http_url_problem(url) if head.startswith(("http://", "https://")) else "not http(s)"
    if problem:
        raise _invalid("url", problem + " (only http(s) URLs with a host are downloaded)", url)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    where = f"Download of {shorten(url, 120)}"
    response = transport.get(url, timeout=timeout)
    with response:
        if not 200 <= response.status_code < 300:
            raise NanoBananaError(f"{where} failed: HTTP {response.status_code}")
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not ctype.startswith("image/") and ctype not in _OCTET_TYPES:
            raise InvalidImageError(f"{where}: Content-Type {ctype!r} is not image/*")
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise NanoBananaError(f"{where} refused: {length} bytes, over max_bytes={max_bytes}")
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".nanobanana-{os.getpid()}-", suffix=".part")
        try:
            mime = _stream_to(fd, response.iter_content(chunk_size), max_bytes, where)
            os.chmod(tmp, 0o644)
            return _publish(tmp, target, _target_name(filename, url, mime))
        except requests.RequestException as exc:
            failure = f"{where} failed: {type(exc).__name__}"
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    raise NanoBananaError(failure)  # outside the except block: nothing chained


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
