"""Validation of ``POST /nano-banana/images`` bodies (the Nano Banana Images API reference,
https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d).

Every violation is a 400 ``token_mismatched`` (the documented code for bad parameters) whose message
names the field, the bad value and the allowed values. Where the vendor's documents are silent the
simulator refuses exactly what the package's ``ImageRequest`` refuses (an independent
implementation: the agreement test ``tests/sim_tests/test_sim_agreement.py`` holds the two
together); the remaining differences are listed in ``docs/simulator.md``.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from langchain_nanobanana.testing._png import png_size

__all__ = [
    "ASPECT_SIZES",
    "HIRES_MODELS",
    "MAX_IMAGE_BYTES",
    "MODELS",
    "RESOLUTION_SCALE",
    "ApiError",
    "Submission",
    "data_uri_png_size",
    "image_kind",
    "validate_submission",
]

MODELS = (
    "nano-banana",
    "nano-banana-2",
    "nano-banana-pro",
    "nano-banana-2-lite",
    "nano-banana-2.1",
    "nano-banana:official",
    "nano-banana-2-lite:official",
    "nano-banana-2:official",
    "nano-banana-pro:official",
)
"""Documented models (Images API reference and Integration Guide) plus the vendor's extra names
(MCP server ``mcp-nanobanana-pro``, SDK ``acedatacloud``)."""

HIRES_MODELS = frozenset(
    {
        "nano-banana-2",
        "nano-banana-2.1",
        "nano-banana-pro",
        "nano-banana-2:official",
        "nano-banana-pro:official",
    }
)
"""Models that accept ``resolution`` 2K / 4K: ``nano-banana-pro`` (Images API reference);
``nano-banana-2``, ``nano-banana-2.1`` (the vendor's MCP server, CLI and LangChain package, not its
SDK); the two ``:official`` variants: no vendor source, the simulator follows ``ImageRequest``."""

ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
}
"""Pixel ``(width, height)`` at 1K per aspect ratio; 2K doubles and 4K quadruples both sides."""

RESOLUTION_SCALE = {"1K": 1, "2K": 2, "4K": 4}
"""Side multiplier per ``resolution``."""

MAX_IMAGE_BYTES = 10 * 2**20
"""Largest accepted decoded image in bytes ("10MB" in the Images API reference, read as 10 MiB)."""

_FIELDS = frozenset(
    {"action", "prompt", "model", "image_urls", "aspect_ratio", "resolution", "count"}
    | {"callback_url", "async"}
)
_DATA_HEADER = re.compile(r"data:image/[a-z0-9][a-z0-9.+-]{0,40};base64", re.IGNORECASE)
_BMP_DIB_SIZES = {struct.pack("<I", n) for n in (12, 40, 52, 56, 64, 108, 124)}
_ISO_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"mif1": "image/heif"}
_ISO_BRANDS.update({b"msf1": "image/heif"})
_ISO_BRANDS.update(
    dict.fromkeys([b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"], "image/heic")
)
_MIME_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-ms-bmp": "image/bmp",
}
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")  # zero-width, format


class ApiError(Exception):
    """An error answer: HTTP ``status``, documented ``code`` and a human ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Submission:
    """A validated submission.

    Attributes:
        action: ``"generate"`` or ``"edit"``.
        prompt: the prompt (echoed in results).
        model: the model name (default ``nano-banana``).
        count: number of images, 1..4.
        aspect_ratio: the ``aspect_ratio`` sent, or ``None``.
        resolution: the ``resolution`` sent, or ``None``.
        size: ``(width, height)`` pixels for ``generate``; ``None`` for ``edit`` (the handler
            derives it from the first image, see ``docs/simulator.md``).
        first_image: the first ``image_urls`` item, or ``None``.
        callback_url: where to POST the result, or ``None``.
        is_async: ``async: true`` was sent.

    """

    action: str
    prompt: str
    model: str
    count: int
    aspect_ratio: str | None
    resolution: str | None
    size: tuple[int, int] | None
    first_image: str | None
    callback_url: str | None
    is_async: bool


def _bad(message: str) -> ApiError:
    return ApiError(400, "token_mismatched", message)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host and a valid port, else ``None``."""
    if not url[:8].lower().startswith(("http://", "https://")):
        return "not an http(s) URL"
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError on a bad port
    except ValueError:
        return "malformed URL"
    if not parts.hostname:
        return "URL has no host"
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in url):
        return "URL contains whitespace or control characters"
    return None


def image_kind(data: bytes) -> str | None:
    """The MIME type of ``data`` from its magic bytes (first 64 bytes), else ``None``.

    Recognised: ``image/png``, ``image/jpeg``, ``image/gif``, ``image/webp`` (``RIFF....WEBP``),
    ``image/bmp`` (``BM`` + a known DIB header size), and ISO-BMFF ``ftyp`` boxes whose major or
    compatible brands name ``image/heic``, ``image/avif`` or (only generic brands) ``image/heif``.
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
    if head[:2] == b"BM" and head[14:18] in _BMP_DIB_SIZES:
        return "image/bmp"
    if head[4:8] == b"ftyp":
        box_end = min(len(head), int.from_bytes(head[:4], "big"))
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
        kinds = [_ISO_BRANDS[brand] for brand in brands if brand in _ISO_BRANDS]
        specific = [kind for kind in kinds if kind != "image/heif"]
        return (specific or kinds)[0] if kinds else None
    return None


def _strict_b64decode(payload: str) -> bytes:
    """Standard base64, no whitespace, exact padding, nothing after the padding."""
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(payload, strict_mode=True)
    if len(payload) % 4:  # pragma: no cover - Python 3.10 only
        raise binascii.Error("length is not a multiple of 4")
    return base64.b64decode(payload, validate=True)  # pragma: no cover - Python 3.10 only


def _check_data_uri(value: str, where: str) -> None:
    comma = value.find(",", 0, 64)
    if comma < 0 or not _DATA_HEADER.fullmatch(value[:comma]):
        raise _bad(
            f"Invalid value for '{where}': {_short(value)}; expected an http(s) URL or a "
            "'data:image/<type>;base64,<data>' string."
        )
    padding = 2 if value.endswith("==") else 1 if value.endswith("=") else 0
    size = (len(value) - comma - 1) // 4 * 3 - padding  # known before decoding anything
    if size > MAX_IMAGE_BYTES:
        raise _bad(f"Image '{where}' is {size} bytes, larger than {MAX_IMAGE_BYTES} (10 MB).")
    try:
        data = _strict_b64decode(value[comma + 1 :])
    except (binascii.Error, ValueError):
        raise _bad(f"Invalid value for '{where}': the base64 data cannot be decoded.") from None
    found = image_kind(data)
    if found is None:
        raise _bad(
            f"Invalid value for '{where}': the decoded data is not an image "
            "(PNG, JPEG, GIF, WEBP, BMP, HEIC/HEIF or AVIF)."
        )
    declared = value[5 : comma - 7].lower()
    declared = _MIME_ALIASES.get(declared, declared)
    if declared != found and {declared, found} != {"image/heic", "image/heif"}:
        raise _bad(
            f"Invalid value for '{where}': it declares {declared} but its bytes are {found}."
        )


def data_uri_png_size(value: str) -> tuple[int, int] | None:
    """Pixel size of a PNG data URI, or ``None`` when it is not a decodable PNG."""
    comma = value.find(",", 0, 64)
    if comma < 0 or value[:5].lower() != "data:":
        return None
    try:
        return png_size(base64.b64decode(value[comma + 1 : comma + 65]))
    except (binascii.Error, ValueError):
        return None


def _optional(body: dict[str, Any], name: str) -> Any:
    """The value of an optional field; ``null`` counts as absent (as in ``ImageRequest``)."""
    return body.get(name)


def _enum(body: dict[str, Any], name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    value = _optional(body, name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise _bad(
            f"Invalid value for '{name}': {_short(value)}; allowed values: {', '.join(allowed)}."
        )
    return value


def _image_urls(body: dict[str, Any], action: str) -> list[str]:
    urls = _optional(body, "image_urls")
    if urls is None:
        if action == "edit":
            raise _bad("Field 'image_urls' is required for action 'edit' (at least 1 image).")
        return []
    if action == "generate":
        raise _bad("Field 'image_urls' is not allowed with action 'generate'; use 'edit'.")
    if not isinstance(urls, list) or not urls:
        raise _bad(
            f"Invalid value for 'image_urls': {_short(urls)}; expected a list of at least 1 image."
        )
    for i, url in enumerate(urls):
        where = f"image_urls[{i}]"
        if not isinstance(url, str):
            raise _bad(f"Invalid value for '{where}': {_short(url)}; expected a string.")
        if url[:5].lower() == "data:":
            _check_data_uri(url, where)
        elif (problem := _http_url_problem(url)) is not None:
            raise _bad(
                f"Invalid value for '{where}': {_short(url)} ({problem}); expected an http(s) "
                "URL or a 'data:image/<type>;base64,<data>' string."
            )
    return urls


def _callback_url(body: dict[str, Any]) -> str | None:
    callback = _optional(body, "callback_url")
    if callback is None:
        return None
    # Same rule as image URLs: "http://[::1", a bad port or a space in the host are refused.
    problem = _http_url_problem(callback) if isinstance(callback, str) else "not a string"
    if problem is not None:
        raise _bad(
            f"Invalid value for 'callback_url': {_short(callback)} ({problem}); "
            "expected an absolute http(s) URL."
        )
    return str(callback)


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise _bad(f"Field 'prompt' is required and must be a string, got {_short(prompt)}.")
    visible = "".join(c for c in prompt if c.isprintable() and c not in _INVISIBLE)
    if not visible.strip():
        raise _bad(
            f"Invalid value for 'prompt': {_short(prompt)} is blank (only spaces, zero-width or "
            "control characters)."
        )
    if any("\ud800" <= c <= "\udfff" for c in prompt):  # JSON "\ud800" parses to one
        raise _bad(
            f"Invalid value for 'prompt': {_short(prompt)} contains a lone surrogate "
            "(not valid Unicode text)."
        )
    return prompt


def validate_submission(body: dict[str, Any]) -> Submission:
    """Check a ``/nano-banana/images`` body against the vendor's documented rules.

    Refused: unknown keys; a missing/invalid ``action``; a missing ``prompt``, one without a
    visible character (spaces, zero-width and control characters only) or with a lone surrogate;
    an unknown ``model``; ``image_urls`` missing/empty for ``edit`` or present for ``generate``;
    an item that is not an http(s) URL with a host nor a ``data:image/<type>;base64,`` URI whose
    strict base64 payload decodes to at most 10 MiB of a recognised image (magic bytes) of the
    declared type (aliases jpg/pjpeg/x-ms-bmp; heic and heif interchangeable); a bad
    ``aspect_ratio`` / ``resolution`` (2K/4K only with :data:`HIRES_MODELS`, both actions);
    ``count`` outside 1..4 (booleans and floats too); a ``callback_url`` that is not an absolute
    http(s) URL with a host, a valid port and no whitespace; a non-bool ``async``. ``null`` for an
    optional field counts as absent.

    Args:
        body: the parsed JSON object.

    Raises:
        ApiError: 400 ``token_mismatched`` naming the field.

    """
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _bad(
            f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}."
        )
    if body.get("action") not in ("generate", "edit"):
        raise _bad(
            f"Invalid value for 'action': {_short(body.get('action'))}; "
            "allowed values: generate, edit."
        )
    action = str(body["action"])
    prompt = _prompt(body)
    model = _enum(body, "model", MODELS) or "nano-banana"
    urls = _image_urls(body, action)
    aspect = _enum(body, "aspect_ratio", list(ASPECT_SIZES))
    resolution = _enum(body, "resolution", list(RESOLUTION_SCALE))
    if resolution not in (None, "1K") and model not in HIRES_MODELS:
        raise _bad(
            f"Invalid value for 'resolution': {resolution!r} is not supported by model {model!r}; "
            f"2K/4K need one of: {', '.join(sorted(HIRES_MODELS))}."
        )
    count = _optional(body, "count")
    count = 1 if count is None else count
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4:
        raise _bad(f"Invalid value for 'count': {_short(count)}; expected an integer from 1 to 4.")
    callback = _callback_url(body)
    is_async = _optional(body, "async")
    is_async = False if is_async is None else is_async
    if not isinstance(is_async, bool):
        raise _bad(f"Invalid value for 'async': {_short(is_async)}; expected true or false.")
    size: tuple[int, int] | None = None
    if action == "generate":
        w, h = ASPECT_SIZES[aspect or "1:1"]
        scale = RESOLUTION_SCALE[resolution or "1K"]
        size = (w * scale, h * scale)
    return Submission(
        action=action,
        prompt=prompt,
        model=model,
        count=count,
        aspect_ratio=aspect,
        resolution=resolution,
        size=size,
        first_image=urls[0] if urls else None,
        callback_url=callback,
        is_async=is_async,
    )
