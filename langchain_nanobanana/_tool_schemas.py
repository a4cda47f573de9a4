"""The tools' argument schemas (what the model sees) and the one formatter of their argument
errors. ``GenerateInput`` / ``EditInput`` use :class:`~langchain_nanobanana.models.ImageRequest`'s
types; :func:`schema_for_model` narrows ``resolution`` to what a tool's fixed model supports
(:data:`~langchain_nanobanana.models.MODELS`), so a model is never offered a value the API refuses.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
    model_validator,
)

from langchain_nanobanana._request import describe_validation_error
from langchain_nanobanana.models import (
    DEFAULT_MODEL,
    MAX_COUNT,
    MODELS,
    RESOLUTIONS,
    AspectRatio,
    Resolution,
)

__all__ = [
    "EditInput",
    "GenerateInput",
    "TaskInput",
    "format_validation_error",
    "resolutions_of",
    "schema_for_model",
]

_Count = Annotated[int, Strict()]


class _SizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aspect_ratio: AspectRatio | None = Field(
        default=None, description="Width:height of the image. Default 1:1."
    )
    resolution: Resolution | None = Field(
        default=None, description="1K (default), 2K or 4K; 2K/4K only with capable models."
    )
    count: _Count | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="How many images, 1-4. Default 1."
    )


class GenerateInput(_SizeInput):
    """Arguments the model gives ``nano_banana_generate``."""

    prompt: str = Field(
        description="Detailed description of the image: subject, setting, style, lighting, "
        "camera and mood."
    )


class EditInput(_SizeInput):
    """Arguments the model gives ``nano_banana_edit``."""

    prompt: str = Field(description="What to change, or how to combine the images.")
    image_urls: list[str] = Field(
        min_length=1,
        description="Images to edit: http(s) URLs (e.g. from nano_banana_generate) or "
        "data:image/...;base64 URIs.",
    )


def resolutions_of(model: str | None) -> tuple[str, ...]:
    """The ``resolution`` values ``model`` accepts (``None``: the API default ``nano-banana``),
    from :data:`~langchain_nanobanana.models.MODELS`.
    """
    info = MODELS.get(model or DEFAULT_MODEL)
    return tuple(RESOLUTIONS) if info is not None and info.high_resolution else (RESOLUTIONS[0],)


@functools.cache
def schema_for_model(schema: type[BaseModel], model: str | None) -> type[BaseModel]:
    """``schema`` (an ``*Input`` model with a ``resolution`` field) with ``resolution`` limited
    to what ``model`` accepts, or without the field when only ``1K`` exists. Cached per pair.
    """
    allowed = resolutions_of(model)
    if "resolution" not in schema.model_fields or allowed == tuple(RESOLUTIONS):
        return schema
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in schema.model_fields.items()
        if name != "resolution"
    }
    if len(allowed) > 1:
        fields["resolution"] = (
            Literal[allowed] | None,
            Field(default=None, description=f"{', '.join(allowed)}; default 1K."),
        )
    narrowed: type[BaseModel] = create_model(
        schema.__name__,
        __config__=ConfigDict(extra="forbid"),
        __doc__=schema.__doc__,
        __module__=schema.__module__,
        **fields,
    )
    return narrowed


class TaskInput(BaseModel):
    """Arguments the model gives ``nano_banana_task``: ``task_id`` or ``task_ids``."""

    model_config = ConfigDict(extra="forbid")

    task_id: str | None = Field(
        default=None, min_length=1, description="task_id returned by an earlier image call."
    )
    task_ids: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1, description="Several task_ids to look up at once."
    )

    @model_validator(mode="after")
    def _one_of(self) -> TaskInput:
        if (self.task_id is None) == (self.task_ids is None):
            raise ValueError("give exactly one of task_id (one id) or task_ids (a list of ids)")
        return self


def format_validation_error(error: ValidationError) -> str:
    """Turn a pydantic ``ValidationError`` into one line per problem for the model.

    Each line names the field, the bad value (shortened) and the allowed values, e.g.
    ``aspect_ratio='5:4' is not allowed; use one of: 1:1, 3:2, ...`` (the package's one
    message-maker). Used as the tools' ``handle_validation_error``, so the model never sees
    LangChain's generic text.
    """
    lines = [message for _, message in describe_validation_error(error)]
    return "Invalid arguments, fix and call again:\n" + "\n".join(lines)
