"""The one builder of :class:`~langchain_nanobanana.models.ImageRequest` from loose arguments, and
the one message-maker for a pydantic ``ValidationError``.

Every face calls :func:`build_request`: the client's ``generate``/``edit``, the Runnable's inputs,
the tools' arguments and the command line's arguments and rows. Whatever breaks a rule becomes one
:class:`~langchain_nanobanana.errors.InvalidRequestError` (field, bad value, what is allowed) before
any HTTP request; :func:`describe_validation_error` writes that message, and the tools and the
configuration checks use it too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from langchain_nanobanana._inputs import ImageInput, to_image_urls
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.models import ASPECT_RATIOS, MAX_COUNT, MODELS, RESOLUTIONS, ImageRequest

__all__ = ["ALLOWED_BY_FIELD", "build_request", "describe_validation_error", "invalid_request"]

#: What each field allows, in words (appended to a message that names a bad value).
ALLOWED_BY_FIELD: dict[str, str] = {
    "model": "one of: " + ", ".join(MODELS),
    "aspect_ratio": "one of: " + ", ".join(ASPECT_RATIOS),
    "resolution": "one of: " + ", ".join(RESOLUTIONS),
    "count": f"a whole number from 1 to {MAX_COUNT}",
    "image_urls": "a list of at least one http(s) URL or data:image/...;base64 URI",
    "prompt": "a non-empty text",
    "callback_url": "an absolute http(s) URL",
    "task_id": "the task_id string returned by an image call",
    "task_ids": "a list of task_id strings returned by image calls",
}
_VALUE_CHARS = 80
_NAMED = re.compile(r"([a-z_]+)(?:\[\d+\])?(?:=|:| )")


def describe_validation_error(error: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` for each problem of ``error``: the message names the field, the bad
    value (at most 80 characters) and what is allowed, e.g.
    ``("aspect_ratio", "aspect_ratio='5:4' is not allowed (...); use one of: 1:1, 3:2, ...")``.

    A rule of ``ImageRequest`` already words its own message (field, value, allowed); a type error
    from pydantic gets the value and :data:`ALLOWED_BY_FIELD`. A missing field never shows the
    whole input (it may hold other arguments).
    """
    problems: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item.get("loc", ())) or "input"
        top = field.split(".")[0]
        message = str(item.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
            named = _NAMED.match(message)  # a rule over several fields names its own field
            if top == "input" and named and named.group(1) in ImageRequest.model_fields:
                top = named.group(1)
            problems.append((top, message))
            continue
        allowed = ALLOWED_BY_FIELD.get(top)
        hint = f"; use {allowed}" if allowed else ""
        if item.get("type") == "extra_forbidden":
            hint = "; this argument does not exist, leave it out"
            if top == "resolution":  # left out of a tool's schema: its model makes 1K only
                hint = "; this tool's model makes 1K images only: leave resolution out"
        if item.get("type") == "missing":
            problems.append((top, f"{field} is missing (required){hint}"))
            continue
        value = repr(item.get("input"))
        value = value if len(value) <= _VALUE_CHARS else value[: _VALUE_CHARS - 3] + "..."
        problems.append((top, f"{field}={value} is not allowed ({message}){hint}"))
    return problems


def invalid_request(error: ValidationError) -> InvalidRequestError:
    """The :class:`InvalidRequestError` for ``error`` (one line per problem; ``field`` is the first
    field named). pydantic's error list is kept without its ``input`` values.
    """
    problems = describe_validation_error(error)
    errors = [
        {k: v for k, v in item.items() if k not in ("input", "ctx", "url")}
        for item in error.errors(include_url=False)
    ]
    return InvalidRequestError(
        "; ".join(message for _, message in problems) or "invalid request",
        field=problems[0][0] if problems else None,
        errors=errors,
    )


def build_request(
    action: str,
    prompt: Any,
    images: Sequence[ImageInput] | ImageInput | None = None,
    *,
    model: str | None = None,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    count: int | None = None,
    callback_url: str | None = None,
    allowed_image_dir: str | os.PathLike[str] | None = None,
    allow_local_paths: bool = True,
    images_field: str = "image_urls",
) -> ImageRequest:
    """Build and validate one request; ``None`` arguments are left out (the API's defaults).

    Args:
        action: ``"generate"`` or ``"edit"``.
        prompt: The prompt text.
        images: Images of an edit: http(s) URLs, data URIs, local paths (``str`` or
            ``os.PathLike``) or raw ``bytes``; paths and bytes become data URIs (each at most
            10 MiB). Given with ``generate`` it is refused, as the API documents.
        model, aspect_ratio, resolution, count, callback_url: The request's fields.
        allowed_image_dir: Local paths only under this folder; ``None`` with
            ``allow_local_paths=True``: any path (a developer's call), with
            ``allow_local_paths=False``: none (a model's call).
        images_field: How errors name the images (``image_urls`` or the CLI's ``images``).

    Returns:
        The validated :class:`ImageRequest`.

    Raises:
        InvalidRequestError: A broken rule, naming the field, the value and what is allowed
            (:class:`~langchain_nanobanana.errors.InvalidImageError` for an image). Nothing is
            sent.

    """
    fields: dict[str, Any] = {
        "model": model,
        "aspect_ratio": aspect_ratio,
        "resolution": resolution,
        "count": count,
        "callback_url": callback_url,
    }
    if images is not None:
        fields["image_urls"] = to_image_urls(
            images,
            allowed_image_dir=allowed_image_dir,
            allow_local_paths=allow_local_paths,
            field=images_field,
        )
    try:
        return ImageRequest(
            action=action,
            prompt=prompt,
            **{k: v for k, v in fields.items() if v is not None},
        )
    except ValidationError as exc:
        raise invalid_request(exc) from None
