"""The documented parameter tables and :class:`ImageRequest`, the validated request body.

Every rule here comes from the vendor's documents -- the Nano Banana Images API reference
(https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d) and the Nano Banana
Images API Integration Guide
(https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e) -- or, where marked
*[vendor SDK]* / *[vendor MCP/CLI]*, from the vendor's packages: the Python SDK ``acedatacloud``
(https://github.com/AceDataCloud/SDK/tree/main/python), the MCP server ``mcp-nanobanana-pro``
(https://github.com/AceDataCloud/MCPs/tree/main/nanobanana) and the CLI ``nano-banana-pro-cli``
(https://github.com/AceDataCloud/NanoBananaCli). Validation happens when an :class:`ImageRequest` is
built, so a bad value fails before any HTTP request is sent, with a message that names the field,
the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from langchain_nanobanana._inputs import (
    MAX_IMAGE_BYTES,
    http_url_problem,
    shorten,
    validate_image_url,
)

__all__ = [
    "ACTIONS",
    "ASPECT_RATIOS",
    "DEFAULT_ASPECT_RATIO",
    "DEFAULT_MODEL",
    "DEFAULT_RESOLUTION",
    "MAX_COUNT",
    "MAX_IMAGE_BYTES",
    "MODELS",
    "RESOLUTIONS",
    "Action",
    "AspectRatio",
    "ImageRequest",
    "ModelInfo",
    "Resolution",
]


@dataclass(frozen=True)
class ModelInfo:
    """One row of :data:`MODELS`.

    Attributes:
        name: The API's ``model`` value.
        description: What it is for.
        gemini_model: The underlying Gemini image model.
        high_resolution: Whether ``resolution`` ``2K`` / ``4K`` is accepted (``1K`` always is).
        source: Where the row comes from (a vendor document's title or a vendor package).

    """

    name: str
    description: str
    gemini_model: str
    high_resolution: bool
    source: str


def _rows(*rows: ModelInfo) -> dict[str, ModelInfo]:
    return {row.name: row for row in rows}


#: Every model the API accepts: name -> :class:`ModelInfo`. The first three are documented in the
#: Images API reference and Integration Guide; the rest are named by the vendor's packages (SDK,
#: MCP server). 2K/4K: the Images API reference says ``nano-banana-pro`` only; the vendor's MCP
#: server, CLI and LangChain package add ``nano-banana-2`` and ``nano-banana-2.1`` (the SDK has no
#: such rule); we follow them. For the ``:official`` variants no vendor source says which take
#: 2K/4K: this table assumes they match their base model.
MODELS: dict[str, ModelInfo] = _rows(
    ModelInfo(
        "nano-banana",
        "Default: fast and low cost",
        "gemini-2.5-flash-image",
        False,
        "Images API reference",
    ),
    ModelInfo(
        "nano-banana-2",
        "Pro-level quality at Flash speed",
        "gemini-3.1-flash-image",
        True,
        "Images API reference; 2K/4K: vendor MCP server, CLI, LangChain package",
    ),
    ModelInfo(
        "nano-banana-pro", "Highest quality", "gemini-3-pro-image", True, "Images API reference"
    ),
    ModelInfo(
        "nano-banana-2-lite",
        "Lighter, cheaper nano-banana-2",
        "gemini-3.1-flash-image (lite)",
        False,
        "vendor SDK",
    ),
    ModelInfo(
        "nano-banana-2.1",
        "nano-banana-2 revision",
        "gemini-3.1-flash-image",
        True,
        "vendor SDK; 2K/4K: vendor MCP server, CLI, LangChain package",
    ),
    ModelInfo(
        "nano-banana:official",
        "nano-banana on the official channel",
        "gemini-2.5-flash-image",
        False,
        "vendor SDK",
    ),
    ModelInfo(
        "nano-banana-2-lite:official",
        "nano-banana-2-lite on the official channel",
        "gemini-3.1-flash-image (lite)",
        False,
        "vendor SDK",
    ),
    ModelInfo(
        "nano-banana-2:official",
        "nano-banana-2 on the official channel",
        "gemini-3.1-flash-image",
        True,
        "vendor SDK; 2K/4K: no vendor source (assumed from the base model)",
    ),
    ModelInfo(
        "nano-banana-pro:official",
        "nano-banana-pro on the official channel",
        "gemini-3-pro-image",
        True,
        "vendor SDK; 2K/4K: no vendor source (assumed from the base model)",
    ),
)

Action = Literal["generate", "edit"]
AspectRatio = Literal["1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4"]
Resolution = Literal["1K", "2K", "4K"]

#: ``action`` values (Images API reference).
ACTIONS: tuple[str, ...] = ("generate", "edit")
#: ``aspect_ratio`` values (Images API reference). Default ``1:1``.
ASPECT_RATIOS: tuple[str, ...] = ("1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4")
#: ``resolution`` values (Images API reference). Default ``1K``.
RESOLUTIONS: tuple[str, ...] = ("1K", "2K", "4K")
DEFAULT_MODEL = "nano-banana"
DEFAULT_ASPECT_RATIO = "1:1"
DEFAULT_RESOLUTION = "1K"
#: ``count`` is 1..4 *[vendor MCP/CLI]* (the MCP server, CLI and LangChain package bound it; the
#: SDK does not); the Integration Guide's examples send 1.
MAX_COUNT = 4


#: Zero-width and format characters that make a prompt look non-blank while saying nothing.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")


def _allowed(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


class ImageRequest(BaseModel):
    """The body of ``POST /nano-banana/images``, validated before anything is sent.

    Fields (the Images API reference,
    https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d, unless noted):
        action: ``"generate"`` or ``"edit"`` (required).
        prompt: Non-blank text (required).
        model: One of :data:`MODELS`; ``None`` sends nothing and the API uses ``nano-banana``.
        image_urls: ``edit`` only, at least one; each an http(s) URL or a
            ``data:image/...;base64,...`` URI of at most 10 MiB decoded (10 x 2**20 bytes).
        aspect_ratio: One of :data:`ASPECT_RATIOS` (API default ``1:1``). The reference documents it
            for ``generate``; the vendor's MCP server and CLI send it on ``edit`` too (older
            models ignore it there and keep the first image's shape), so both actions accept it.
        resolution: One of :data:`RESOLUTIONS` (API default ``1K``), both actions (the vendor
            MCP server documents 4K edits with ``nano-banana-2.1``); ``2K``/``4K`` only with a
            model whose :attr:`ModelInfo.high_resolution` is true.
        count: Number of images, 1..4 *[vendor MCP/CLI]*.
        callback_url: Absolute http(s) URL the API POSTs the result to (Integration Guide).

    Raises:
        pydantic.ValidationError: on any rule above; each message names the field, the bad value
            and the allowed values. (``ValidationError`` is a ``ValueError``.)

    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    action: Action
    prompt: str
    model: str | None = None
    image_urls: list[str] | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int | None = None
    callback_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [f"{k}={shorten(v)}" for k, v in data.items() if k not in cls.model_fields]
            if unknown:
                raise ValueError(
                    f"unknown field(s) {', '.join(unknown)} are not allowed; "
                    f"use only: {_allowed(list(cls.model_fields))}"
                )
        return data

    @field_validator("action", mode="before")
    @classmethod
    def _check_action(cls, value: Any) -> Any:
        if value not in ACTIONS:
            raise ValueError(
                f"action={shorten(value)} is not allowed; use one of: {_allowed(ACTIONS)}"
            )
        return value

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        # the first visible character ends the scan (a prompt usually starts with one)
        if not any(c.isprintable() and c not in _INVISIBLE and not c.isspace() for c in value):
            raise ValueError(
                f"prompt={shorten(value)} is blank (only spaces, zero-width or control "
                "characters); give a non-empty text prompt"
            )
        try:
            value.encode("utf-8")  # fails exactly on a lone surrogate
        except UnicodeEncodeError:
            raise ValueError(
                f"prompt={shorten(value)} contains a lone surrogate (not valid Unicode text); "
                "give UTF-8 text"
            ) from None
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is not None and value not in MODELS:
            close = difflib.get_close_matches(str(value), list(MODELS), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"model={shorten(value)} is not a known model{hint}; "
                f"use one of: {_allowed(list(MODELS))}"
            )
        return value

    @field_validator("aspect_ratio")
    @classmethod
    def _check_aspect_ratio(cls, value: str | None) -> str | None:
        if value is not None and value not in ASPECT_RATIOS:
            raise ValueError(
                f"aspect_ratio={shorten(value)} is not allowed; "
                f"use one of: {_allowed(ASPECT_RATIOS)}"
            )
        return value

    @field_validator("resolution")
    @classmethod
    def _check_resolution(cls, value: str | None) -> str | None:
        if value is not None and value not in RESOLUTIONS:
            raise ValueError(
                f"resolution={shorten(value)} is not allowed; use one of: {_allowed(RESOLUTIONS)}"
            )
        return value

    @field_validator("count", mode="before")
    @classmethod
    def _check_count(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
            raise ValueError(
                f"count={shorten(value)} is not allowed; use a whole number from 1 to {MAX_COUNT}"
            )
        return value

    @field_validator("callback_url")
    @classmethod
    def _check_callback_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if http_url_problem(value) is not None:
            raise ValueError(
                f"callback_url={shorten(value)} is not allowed; use an absolute http:// or "
                "https:// URL that the API can POST the result to"
            )
        return value

    @field_validator("image_urls")
    @classmethod
    def _check_image_urls(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        for index, url in enumerate(value):
            validate_image_url(url, field=f"image_urls[{index}]")
        return value

    @model_validator(mode="after")
    def _check_action_rules(self) -> ImageRequest:
        if self.action == "edit":
            if not self.image_urls:
                raise ValueError(
                    f"image_urls={shorten(self.image_urls)} is not allowed with action='edit'; "
                    "give at least one http(s) URL or data:image/...;base64 URI"
                )
        elif self.image_urls is not None:
            raise ValueError(
                f"image_urls (list of {len(self.image_urls)}) is not allowed with "
                "action='generate'; use action='edit' to change existing images"
            )
        if self.resolution not in (None, DEFAULT_RESOLUTION):
            model = self.model or DEFAULT_MODEL
            if not MODELS[model].high_resolution:
                capable = [name for name, info in MODELS.items() if info.high_resolution]
                raise ValueError(
                    f"resolution={self.resolution!r} is not allowed with model={model!r}; "
                    f"use resolution='1K' or one of these models: {_allowed(capable)}"
                )
        return self

    def to_payload(self, *, async_: bool = False) -> dict[str, Any]:
        """The JSON body: only the fields that are set (no ``null``s, no undocumented keys).

        Args:
            async_: Add ``"async": true`` (*[vendor SDK]*: answer at once with a ``task_id``).

        Returns:
            A ``dict`` ready for ``json=``.

        """
        payload = self.model_dump(exclude_none=True)
        if async_:
            payload["async"] = True
        return payload

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "image_urls" and value:
                yield name, [u if not u.startswith("data:") else f"{u[:30]}..." for u in value]
            else:
                yield name, value
