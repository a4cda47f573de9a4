"""Validation of ``POST /nano-banana/images`` bodies, as the real API does it (SPEC Part 1).

Every violation is a 400 ``token_mismatched`` (the documented code for bad parameters) whose message
names the field, the bad value and the allowed values.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from langchain_nanobanana.testing._png import png_size

__all__ = [
    "ASPECT_SIZES",
    "HIRES_MODELS",
    "MAX_IMAGE_BYTES",
    "MODELS",
    "ApiError",
    "Submission",
    "data_uri_png_size",
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
"""Documented models plus the vendor SDK's extra names."""

HIRES_MODELS = frozenset(
    {
        "nano-banana-2",
        "nano-banana-2.1",
        "nano-banana-pro",
        "nano-banana-2:official",
        "nano-banana-pro:official",
    }
)
"""Models that accept ``resolution`` 2K / 4K."""

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
MAX_IMAGE_BYTES = 10 * 2**20
"""Largest accepted decoded image (10 MB)."""

_FIELDS = frozenset(
    {"action", "prompt", "model", "image_urls", "aspect_ratio", "resolution", "count"}
    | {"callback_url", "async"}
)
_DATA_URI = re.compile(r"^data:image/([A-Za-z0-9.+-]+);base64,(.*)$", re.DOTALL)


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
        prompt: the prompt (echoed in results).
        count: number of images, 1..4.
        size: ``(width, height)`` pixels for ``generate``; ``None`` for ``edit`` (the first
            image decides).
        first_image: the first ``image_urls`` item, or ``None``.
        callback_url: where to POST the result, or ``None``.
        is_async: ``async: true`` was sent.

    """

    prompt: str
    count: int
    size: tuple[int, int] | None
    first_image: str | None
    callback_url: str | None
    is_async: bool


def _bad(message: str) -> ApiError:
    return ApiError(400, "token_mismatched", message)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _enum(body: dict[str, Any], name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    value = body.get(name)
    if value is None and name not in body:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise _bad(f"Invalid value for '{name}': {value!r}; allowed values: {', '.join(allowed)}.")
    return value


def _decode_data_uri(value: str, where: str) -> bytes:
    m = _DATA_URI.match(value)
    if m is None:
        raise _bad(
            f"Invalid value for '{where}': {value[:60]!r}; expected an http(s) URL or a "
            "'data:image/<type>;base64,<data>' string."
        )
    payload = m.group(2)
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
        raise _bad(f"Image '{where}' is larger than {MAX_IMAGE_BYTES} bytes (10 MB).")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"Invalid value for '{where}': the base64 data cannot be decoded.") from None
    if not data:
        raise _bad(f"Invalid value for '{where}': the image data is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _bad(f"Image '{where}' is larger than {MAX_IMAGE_BYTES} bytes (10 MB).")
    return data


def data_uri_png_size(value: str) -> tuple[int, int] | None:
    """Pixel size of a PNG data URI, or ``None`` when it is not a decodable PNG."""
    m = _DATA_URI.match(value)
    if m is None:
        return None
    try:
        return png_size(base64.b64decode(m.group(2)[:64]))
    except (binascii.Error, ValueError):
        return None


def _image_urls(body: dict[str, Any], action: str) -> list[str]:
    if "image_urls" not in body:
        if action == "edit":
            raise _bad("Field 'image_urls' is required for action 'edit' (at least 1 image).")
        return []
    urls = body["image_urls"]
    if not isinstance(urls, list) or (action == "edit" and not urls):
        raise _bad(
            f"Invalid value for 'image_urls': {urls!r}; expected a list of at least 1 image."
        )
    for i, url in enumerate(urls):
        where = f"image_urls[{i}]"
        if not isinstance(url, str):
            raise _bad(f"Invalid value for '{where}': {url!r}; expected a string.")
        if not _is_http_url(url):
            _decode_data_uri(url, where)
    return urls


def validate_submission(body: dict[str, Any]) -> Submission:
    """Check a ``/nano-banana/images`` body against SPEC Part 1.

    Unknown keys, a missing/invalid ``action``, a blank ``prompt``, an unknown ``model``, bad
    ``image_urls`` (``edit`` needs >= 1; each an http(s) URL or an image data URI of at most 10 MB),
    a bad ``aspect_ratio`` / ``resolution`` (2K/4K only with :data:`HIRES_MODELS`), ``count``
    outside 1..4, a non-absolute-http(s) ``callback_url`` or a non-bool ``async`` raise.
    ``aspect_ratio`` and ``resolution`` are accepted but ignored for ``edit``.

    Raises:
        ApiError: 400 ``token_mismatched`` naming the field.

    """
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _bad(
            f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}."
        )
    if "action" not in body:
        raise _bad("Field 'action' is required; allowed values: generate, edit.")
    action = _enum(body, "action", ("generate", "edit")) or "generate"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _bad(f"Field 'prompt' is required and must be a non-blank string, got {prompt!r}.")
    model = _enum(body, "model", MODELS) or "nano-banana"
    urls = _image_urls(body, action)
    aspect = _enum(body, "aspect_ratio", list(ASPECT_SIZES)) or "1:1"
    resolution = _enum(body, "resolution", list(RESOLUTION_SCALE)) or "1K"
    if resolution != "1K" and model not in HIRES_MODELS:
        raise _bad(
            f"Invalid value for 'resolution': {resolution!r} is not supported by model {model!r}; "
            f"2K/4K need one of: {', '.join(sorted(HIRES_MODELS))}."
        )
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4:
        raise _bad(f"Invalid value for 'count': {count!r}; expected an integer from 1 to 4.")
    callback = body.get("callback_url")
    if "callback_url" in body and (not isinstance(callback, str) or not _is_http_url(callback)):
        raise _bad(
            f"Invalid value for 'callback_url': {callback!r}; expected an absolute http(s) URL."
        )
    is_async = body.get("async", False)
    if not isinstance(is_async, bool):
        raise _bad(f"Invalid value for 'async': {is_async!r}; expected true or false.")
    size: tuple[int, int] | None = None
    if action == "generate":
        w, h = ASPECT_SIZES[aspect]
        scale = RESOLUTION_SCALE[resolution]
        size = (w * scale, h * scale)
    return Submission(
        prompt=prompt,
        count=count,
        size=size,
        first_image=urls[0] if urls else None,
        callback_url=callback,
        is_async=is_async,
    )
