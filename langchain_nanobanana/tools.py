"""LangChain tools: ``nano_banana_generate``, ``nano_banana_edit``, ``nano_banana_task``, and the
toolkit that shares one client between them. No HTTP code here: everything goes through
:class:`~langchain_nanobanana.client.NanoBananaClient`. Over 400 lines because each tool carries
its LLM-visible input schema, its sync and async run and its user docstring side by side.

Every tool uses ``response_format="content_and_artifact"``: the content is short text for the
model (status, ids, image URLs; never base64, never account fields), optionally followed by
standard image content blocks (``include_image_blocks=True``); the artifact is the
:class:`~langchain_nanobanana.results.ImageResult`.

Errors the model can fix (bad arguments, 400, 429, a failed task, an image it may not use) come
back as a ``ToolMessage`` with ``status="error"`` whose text names the field, the bad value and
the allowed values, and keeps ``task_id`` / ``trace_id``. Authentication and configuration
errors raise.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.errors import (
    BadRequestError,
    InvalidImageError,
    NanoBananaAPIError,
    RateLimitError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana.images import to_image_urls
from langchain_nanobanana.models import (
    ASPECT_RATIOS,
    MAX_COUNT,
    RESOLUTIONS,
    AspectRatio,
    ImageRequest,
    Resolution,
)
from langchain_nanobanana.results import ImageResult

__all__ = [
    "EditInput",
    "GenerateInput",
    "NanoBananaEditTool",
    "NanoBananaGenerateTool",
    "NanoBananaTaskTool",
    "NanoBananaToolkit",
    "TaskInput",
    "format_validation_error",
]

#: Errors whose message helps the model correct its call (returned as a tool message).
_MODEL_FIXABLE = (
    BadRequestError,
    RateLimitError,
    TaskFailedError,
    TaskTimeoutError,
    SubmissionUncertainError,
    InvalidImageError,
)

ToolOutput = tuple[str | list[str | dict[str, Any]], ImageResult]


class GenerateInput(BaseModel):
    """Arguments the model gives ``nano_banana_generate``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        description="Detailed description of the image: subject, setting, style, lighting, "
        "camera and mood."
    )
    aspect_ratio: AspectRatio | None = Field(
        default=None, description="Width:height of the image. Default 1:1."
    )
    resolution: Resolution | None = Field(
        default=None, description="1K (default), 2K or 4K; 2K/4K only with capable models."
    )
    count: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="How many images, 1-4. Default 1."
    )


class EditInput(BaseModel):
    """Arguments the model gives ``nano_banana_edit``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="What to change, or how to combine the images.")
    image_urls: list[str] = Field(
        min_length=1,
        description="Images to edit: http(s) URLs (e.g. from nano_banana_generate) or "
        "data:image/...;base64 URIs. The first image sets the output size.",
    )
    count: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="How many images, 1-4. Default 1."
    )


class TaskInput(BaseModel):
    """Arguments the model gives ``nano_banana_task``."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, description="task_id returned by an earlier image call.")


_ALLOWED_BY_FIELD = {
    "aspect_ratio": ", ".join(ASPECT_RATIOS),
    "resolution": ", ".join(RESOLUTIONS),
    "count": f"a whole number from 1 to {MAX_COUNT}",
    "image_urls": "a list of at least one http(s) URL or data:image/...;base64 URI",
    "prompt": "a non-empty text",
    "task_id": "the task_id string returned by an image call",
}


def format_validation_error(error: ValidationError) -> str:
    """Turn a pydantic ``ValidationError`` into one line per problem for the model.

    Each line names the field, the bad value (shortened) and the allowed values, e.g.
    ``aspect_ratio='5:4' is not allowed; use one of: 1:1, 3:2, ...``. Used as the tools'
    ``handle_validation_error``, so the model never sees LangChain's generic text.
    """
    lines = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item.get("loc", ())) or "input"
        message = str(item.get("msg", "invalid"))
        if message.startswith("Value error, "):
            lines.append(message.removeprefix("Value error, "))
            continue
        top = field.split(".")[0]
        value = repr(item.get("input"))
        value = value if len(value) <= 80 else value[:77] + "..."
        allowed = _ALLOWED_BY_FIELD.get(top)
        hint = f"; use {allowed}" if allowed else ""
        if item.get("type") == "extra_forbidden":
            hint = "; this argument does not exist, leave it out"
        if item.get("type") == "missing":  # its "input" is the whole argument dict: not shown
            lines.append(f"{field} is missing (required){hint}")
            continue
        lines.append(f"{field}={value} is not allowed ({message}){hint}")
    return "Invalid arguments, fix and call again:\n" + "\n".join(lines)


class _NanoBananaTool(BaseTool):
    """Shared fields and plumbing of the Nano Banana tools (not LLM-visible)."""

    client: NanoBananaClient = Field(default_factory=NanoBananaClient, exclude=True, repr=False)
    """The HTTP client (default: from ``ACEDATACLOUD_API_TOKEN`` / ``..._BASE_URL``)."""
    include_image_blocks: bool = False
    """Append standard image content blocks to the tool message (off: several chat APIs reject
    images in tool messages, and images cost tokens)."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Any = True
    handle_validation_error: bool | str | Any = format_validation_error

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _content(self, result: ImageResult, extra: str = "") -> str | list[str | dict[str, Any]]:
        text = result.to_text() + extra
        if not self.include_image_blocks or not result.images:
            return text
        return [{"type": "text", "text": text}, *result.to_content_blocks()]

    @staticmethod
    def _fixable(exc: Exception) -> ToolException:
        if isinstance(exc, RateLimitError):
            wait = f"{exc.retry_after:g} s" if exc.retry_after is not None else "a little"
            return ToolException(f"{exc}. Rate limited: wait {wait} before calling again.")
        if isinstance(exc, TaskTimeoutError):  # the model has no poll_task: name its tool
            return ToolException(
                f"{exc}. Do not submit it again: look it up later with "
                f"nano_banana_task(task_id={exc.task_id!r})."
            )
        return ToolException(str(exc))


class _ImageTool(_NanoBananaTool):
    """Fields shared by the generate and edit tools."""

    model: str | None = None
    """Model for every call (``MODELS``); ``None`` uses the API default ``nano-banana``."""
    callback_url: str | None = None
    """When set, the API POSTs results there and the tool returns the pending ``task_id``."""
    wait: bool = True
    """``False``: return the pending ``task_id`` at once (look it up with ``nano_banana_task``)."""
    download_dir: str | None = None
    """When set, finished images are also saved there and the content lists the files."""
    metadata: dict[str, Any] | None = Field(default_factory=lambda: {"billable": True})

    def _request(self, **fields: Any) -> ImageRequest:
        fields = {k: v for k, v in fields.items() if v is not None}
        if self.model is not None:
            fields["model"] = self.model
        if self.callback_url is not None:
            fields["callback_url"] = self.callback_url
        return ImageRequest(**fields)

    def _saved(self, result: ImageResult) -> str:
        if not self.download_dir or not result.images:
            return ""
        paths = result.download(self.download_dir, session=self.client.session)
        return "\nSaved to: " + ", ".join(str(p) for p in paths)

    def _finish(self, request: ImageRequest) -> ToolOutput:
        try:
            result = self.client.submit(request, wait=self.wait)
        except _MODEL_FIXABLE as exc:
            raise self._fixable(exc) from exc
        return self._content(result, self._saved(result)), result

    async def _afinish(self, request: ImageRequest) -> ToolOutput:
        try:
            result = await self.client.asubmit(request, wait=self.wait)
        except _MODEL_FIXABLE as exc:
            raise self._fixable(exc) from exc
        saved = await asyncio.to_thread(self._saved, result)
        return self._content(result, saved), result


class NanoBananaGenerateTool(_ImageTool):
    r"""Generate images from a text prompt with Nano Banana (Gemini image models).

    Setup:
        ``pip install langchain-nanobanana`` and ``export ACEDATACLOUD_API_TOKEN=...``.

    Instantiate:
        .. code-block:: python

            from langchain_nanobanana import NanoBananaGenerateTool

            tool = NanoBananaGenerateTool(model="nano-banana-pro", download_dir="out")

    Invoke with a tool call (returns a ``ToolMessage`` whose ``artifact`` is the ImageResult):
        .. code-block:: python

            msg = tool.invoke({"type": "tool_call", "id": "1", "name": tool.name,
                               "args": {"prompt": "a white siamese cat", "aspect_ratio": "2:3"}})
            msg.content   # "Generated 1 image(s) (task_id=..., trace_id=...):\\n- https://..."
            msg.artifact  # ImageResult(status='succeeded', ...)

    LLM-visible args: ``prompt``, ``aspect_ratio?``, ``resolution?``, ``count?`` (SPEC "Tools").
    Billable: tagged ``metadata={"billable": True}``.
    """

    name: str = "nano_banana_generate"
    description: str = (
        "Generate new images from a text prompt. Returns the image URLs and a task_id. "
        "Describe subject, setting, style and lighting in the prompt. Each call is billed: "
        "call it once per image request, and do not retry a call whose error says it may "
        "have run."
    )
    args_schema: type[BaseModel] = GenerateInput

    def _run(
        self,
        prompt: str,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ToolOutput:
        request = self._request(
            action="generate",
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
        )
        return self._finish(request)

    async def _arun(
        self,
        prompt: str,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ToolOutput:
        request = self._request(
            action="generate",
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
        )
        return await self._afinish(request)


class NanoBananaEditTool(_ImageTool):
    """Edit or combine existing images as a prompt says, with Nano Banana.

    Instantiate:
        .. code-block:: python

            from langchain_nanobanana import NanoBananaEditTool

            tool = NanoBananaEditTool(allowed_image_dir="./inputs")  # local files only there

    LLM-visible args: ``prompt``, ``image_urls`` (1..n), ``count?``. ``image_urls`` items are
    http(s) URLs or image data URIs; a local path is accepted only when the developer set
    ``allowed_image_dir`` and the path resolves inside it (symlinks and ``..`` resolved first).
    """

    name: str = "nano_banana_edit"
    description: str = (
        "Edit existing images, or combine several, following a text prompt (e.g. 'give the "
        "cat a small red bow tie'). Pass the images as URLs, such as those returned by "
        "nano_banana_generate. Returns the new image URLs and a task_id. Each call is billed."
    )
    args_schema: type[BaseModel] = EditInput
    allowed_image_dir: str | None = None
    """Folder the model may name local image files from; ``None`` (default) refuses paths."""

    def _edit_request(self, prompt: str, image_urls: list[str], count: int | None) -> ImageRequest:
        urls = to_image_urls(
            image_urls,
            allowed_image_dir=self.allowed_image_dir,
            allow_local_paths=self.allowed_image_dir is not None,
        )
        return self._request(action="edit", prompt=prompt, image_urls=urls, count=count)

    def _run(
        self,
        prompt: str,
        image_urls: list[str],
        count: int | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ToolOutput:
        try:
            request = self._edit_request(prompt, image_urls, count)
        except InvalidImageError as exc:
            raise self._fixable(exc) from exc
        return self._finish(request)

    async def _arun(
        self,
        prompt: str,
        image_urls: list[str],
        count: int | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ToolOutput:
        try:
            request = await asyncio.to_thread(self._edit_request, prompt, image_urls, count)
        except InvalidImageError as exc:
            raise self._fixable(exc) from exc
        return await self._afinish(request)


class NanoBananaTaskTool(_NanoBananaTool):
    """Look up an image task by ``task_id`` (``POST /nano-banana/tasks``, ``retrieve``).

    For results submitted with ``wait=False`` or a ``callback_url``. Not billable. The content
    says whether the task is still running, failed (code and message) or finished (URLs).
    """

    name: str = "nano_banana_task"
    description: str = (
        "Look up an earlier image task by its task_id: says whether it is still running, "
        "failed, or finished, and gives the image URLs when finished."
    )
    args_schema: type[BaseModel] = TaskInput

    @staticmethod
    def _unknown_task(task_id: str, exc: NanoBananaAPIError) -> ToolException:
        """A 404 means the model passed a task_id that does not exist: it can fix that."""
        return ToolException(
            f"task_id={task_id!r} was not found; use {_ALLOWED_BY_FIELD['task_id']} ({exc})"
        )

    def _run(
        self, task_id: str, run_manager: CallbackManagerForToolRun | None = None
    ) -> ToolOutput:
        try:
            record = self.client.get_task(task_id)
        except _MODEL_FIXABLE as exc:
            raise self._fixable(exc) from exc
        except NanoBananaAPIError as exc:
            if exc.status_code != 404:
                raise
            raise self._unknown_task(task_id, exc) from exc
        result = record.to_result()
        return self._content(result), result

    async def _arun(
        self, task_id: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> ToolOutput:
        try:
            record = await self.client.aget_task(task_id)
        except _MODEL_FIXABLE as exc:
            raise self._fixable(exc) from exc
        except NanoBananaAPIError as exc:
            if exc.status_code != 404:
                raise
            raise self._unknown_task(task_id, exc) from exc
        result = record.to_result()
        return self._content(result), result


class NanoBananaToolkit(BaseToolkit):
    """The three Nano Banana tools sharing one :class:`NanoBananaClient`.

    .. code-block:: python

        from langchain.agents import create_agent
        from langchain_nanobanana import NanoBananaToolkit

        tools = NanoBananaToolkit(model="nano-banana-2").get_tools()
        agent = create_agent("openai:gpt-4.1", tools)

    Fields: ``client``, ``model``, ``callback_url``, ``wait``, ``download_dir``,
    ``allowed_image_dir``, ``include_image_blocks`` — passed to the tools that take them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: NanoBananaClient = Field(default_factory=NanoBananaClient, exclude=True, repr=False)
    model: str | None = None
    callback_url: str | None = None
    wait: bool = True
    download_dir: str | os.PathLike[str] | None = None
    allowed_image_dir: str | os.PathLike[str] | None = None
    include_image_blocks: bool = False

    def get_tools(self) -> list[BaseTool]:
        """``[NanoBananaGenerateTool, NanoBananaEditTool, NanoBananaTaskTool]``, one client."""
        shared: dict[str, Any] = {
            "client": self.client,
            "include_image_blocks": self.include_image_blocks,
        }
        image: dict[str, Any] = {
            **shared,
            "model": self.model,
            "callback_url": self.callback_url,
            "wait": self.wait,
            "download_dir": os.fspath(self.download_dir) if self.download_dir else None,
        }
        allowed = os.fspath(self.allowed_image_dir) if self.allowed_image_dir else None
        return [
            NanoBananaGenerateTool(**image),
            NanoBananaEditTool(**image, allowed_image_dir=allowed),
            NanoBananaTaskTool(**shared),
        ]
