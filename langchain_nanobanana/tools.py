"""LangChain tools: ``nano_banana_generate``, ``nano_banana_edit``, ``nano_banana_task``, and the
toolkit that shares one client between them. No HTTP code here: everything goes through
:class:`~langchain_nanobanana.client.NanoBananaClient`, and every request is built and checked by
:class:`~langchain_nanobanana.models.ImageRequest` (the input schemas use its types).

Every tool uses ``response_format="content_and_artifact"``: the content is short text for the
model (status, ids, image URLs; never base64, never account fields), optionally followed by
standard image content blocks (``include_image_blocks=True``); the artifact is the
:class:`~langchain_nanobanana.results.ImageResult` (a list of them for ``task_ids``).

Who handles which error: back to the model as a ``ToolMessage`` with
``status="error"`` — its own bad arguments, 400, 429, a failed task, content moderation, a wait
that timed out (with the task_id and "look it up with nano_banana_task"); raised — authentication,
balance, permission (``disabled``), configuration, ``SubmissionUncertainError`` (the model must not
resubmit) and server or connection errors after retries. A paid result is never turned into an
exception by a later local step (download, content blocks): the tool returns it with a note.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal, NoReturn

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import (
    BaseModel,
    Field,
)

from langchain_nanobanana._config import Configured
from langchain_nanobanana._request import build_request
from langchain_nanobanana._tool_schemas import (
    EditInput,
    GenerateInput,
    TaskInput,
    format_validation_error,
    schema_for_model,
)
from langchain_nanobanana.errors import InvalidRequestError, NanoBananaError
from langchain_nanobanana.models import (
    ImageRequest,
)
from langchain_nanobanana.progress import dispatcher
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

logger = logging.getLogger(__name__)

ToolOutput = tuple[Any, Any]
#: The ``tool_call_id`` of the tool call being run (the journal's default idempotency key).
_TOOL_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "nanobanana_tool_call_id", default=None
)


class _NanoBananaTool(Configured, BaseTool):
    """Shared fields and plumbing of the Nano Banana tools (not LLM-visible)."""

    include_image_blocks: bool = False
    """Append standard image content blocks to the tool message (off: several chat APIs reject
    images in tool messages, and images cost tokens)."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Any = True
    handle_validation_error: bool | str | Any = format_validation_error

    def _content(self, result: ImageResult, extra: str = "") -> Any:
        text = result.to_text() + extra
        if not self.include_image_blocks or not result.images:
            return text
        try:
            blocks = result.to_content_blocks()
        except Exception as exc:  # the result was paid for: never lose it to a local step
            return text + _note(result, f"image blocks could not be built ({exc})")
        return [{"type": "text", "text": text}, *blocks]

    @staticmethod
    def _route(exc: NanoBananaError) -> NoReturn:
        """Raise ``exc`` out of the run, or as a ``ToolException`` (the model reads it) when the
        error's facts say the model can fix it (``model_fixable``).
        """
        if not exc.model_fixable:
            raise exc
        text = exc.for_model()
        if isinstance(exc, InvalidRequestError):  # the model's own arguments
            text = "Invalid arguments, fix and call again:\n" + text
        raise ToolException(text) from exc


def _note(result: ImageResult, what: str) -> str:
    return f"\nNote: {what}; the images above are still available (task_id={result.task_id})."


class _ImageTool(_NanoBananaTool):
    """Fields and the one run path shared by the generate and edit tools."""

    model: str | None = None
    """Model for every call (``MODELS``); ``None`` uses the API default ``nano-banana``."""
    callback_url: str | None = None
    """When set, the API POSTs results there and the tool returns the pending ``task_id``."""
    wait: bool = True
    """``False``: return the pending ``task_id`` at once (look it up with ``nano_banana_task``)."""
    download_dir: str | None = None
    """When set, finished images are also saved there and the content lists the files."""
    metadata: dict[str, Any] | None = Field(default_factory=lambda: {"billable": True})

    def model_post_init(self, context: Any, /) -> None:
        """Offer the model only what the fixed ``model`` supports: ``resolution`` lists 2K/4K
        only for a model that takes them, and is left out where only 1K exists (a model that
        cannot change ``model`` should never be offered a value that will be refused).
        """
        super().model_post_init(context)
        if isinstance(self.args_schema, type) and issubclass(self.args_schema, BaseModel):
            self.args_schema = schema_for_model(self.args_schema, self.model)

    def _build(self, fields: dict[str, Any]) -> ImageRequest:
        """The request for one call (local files read here, in a worker thread when async)."""
        images = fields.pop("image_urls", None)
        allowed = getattr(self, "allowed_image_dir", None)
        return build_request(
            "generate" if images is None else "edit",
            fields.pop("prompt", None),
            images,
            model=self.model,
            callback_url=self.callback_url,
            allowed_image_dir=allowed,
            allow_local_paths=allowed is not None,
            **{k: v for k, v in fields.items() if v is not None},
        )

    def run(self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kw: Any) -> Any:
        """``BaseTool.run``, remembering the run's thread and ``tool_call_id``: with a journal on
        the client they make the idempotency key, so replaying an agent graph from a checkpoint
        pays nothing and another conversation's reused id ("0", "call-1") is a new request.
        """
        token = _TOOL_CALL_ID.set(_call_scope(tool_call_id, kw.get("config")))
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kw)
        finally:
            _TOOL_CALL_ID.reset(token)

    async def arun(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kw: Any
    ) -> Any:
        """Async :meth:`run`."""
        token = _TOOL_CALL_ID.set(_call_scope(tool_call_id, kw.get("config")))
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kw)
        finally:
            _TOOL_CALL_ID.reset(token)

    def _key(self) -> str | None:
        """The default idempotency key: ``tool:<name>:<call>`` where ``<call>`` is the
        ``tool_call_id``, prefixed by the run's thread (``configurable.thread_id``, as LangGraph
        passes it) when there is one: ``<len(thread)>:<thread>:<tool_call_id>``. ``None``
        without a journal or a ``tool_call_id``.
        """
        if self.client.journal is None:
            return None
        call = _TOOL_CALL_ID.get()
        return f"tool:{self.name}:{call}" if call else None

    def _saved(self, result: ImageResult) -> str:
        if not self.download_dir or not result.images:
            return ""
        try:
            paths = self.client.download(result, self.download_dir)
        except Exception as exc:  # the result was paid for: never lose it to a local step
            logger.warning("Download of task %s failed: %s", result.task_id, exc)
            return _note(result, f"saving to {self.download_dir!r} failed ({exc})")
        return "\nSaved to: " + ", ".join(str(p) for p in paths)

    def _run(
        self, run_manager: CallbackManagerForToolRun | None = None, **fields: Any
    ) -> ToolOutput:
        """Build, submit and wait (arguments as validated by ``args_schema``)."""
        return self._call(fields, run_manager)

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **fields: Any
    ) -> ToolOutput:
        """Async ``_run``: file reads and downloads in worker threads, waits on the poller."""
        return await self._acall(fields, run_manager)

    def _call(self, fields: dict[str, Any], run_manager: Any) -> ToolOutput:
        try:
            request = self._build(fields)
            result = self.client.submit(
                request,
                wait=self.wait,
                idempotency_key=self._key(),
                on_progress=dispatcher(run_manager),
            )
        except NanoBananaError as exc:
            self._route(exc)
        return self._content(result, self._saved(result)), result

    async def _acall(self, fields: dict[str, Any], run_manager: Any) -> ToolOutput:
        try:
            request = await asyncio.to_thread(self._build, fields)
            result = await self.client.asubmit(
                request,
                wait=self.wait,
                idempotency_key=self._key(),
                on_progress=dispatcher(run_manager),
            )
        except NanoBananaError as exc:
            self._route(exc)
        return self._content(result, await asyncio.to_thread(self._saved, result)), result


def _call_scope(tool_call_id: str | None, config: Any) -> str | None:
    """The tool call's identity for its key: the ``tool_call_id``, prefixed by the thread of
    the run (``config["configurable"]["thread_id"]``, else the run's current config) so that a
    ``tool_call_id`` reused by another conversation names another request.
    """
    if not tool_call_id:
        return None
    if not isinstance(config, Mapping):
        config = var_child_runnable_config.get() or {}
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    thread = configurable.get("thread_id") if isinstance(configurable, Mapping) else None
    if thread is None or thread == "":
        return tool_call_id
    thread = str(thread)
    return f"{len(thread)}:{thread}:{tool_call_id}"


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

    LLM-visible args: ``prompt``, ``aspect_ratio?``, ``resolution?``, ``count?``.
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


class NanoBananaEditTool(_ImageTool):
    """Edit or combine existing images as a prompt says, with Nano Banana.

    Instantiate:
        .. code-block:: python

            from langchain_nanobanana import NanoBananaEditTool

            tool = NanoBananaEditTool(allowed_image_dir="./inputs")  # local files only there

    LLM-visible args: ``prompt``, ``image_urls`` (1..n), ``aspect_ratio?``, ``resolution?``,
    ``count?``. ``image_urls`` items are
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


class NanoBananaTaskTool(_NanoBananaTool):
    """Look up image tasks by ``task_id`` or ``task_ids`` (``POST /nano-banana/tasks``).

    For results submitted with ``wait=False`` or a ``callback_url``. Not billable. The content
    says whether each task is still running, failed (code and message) or finished (URLs);
    ``task_ids`` are read with ``retrieve_batch`` (50 per request) and the artifact is then a
    list of results, in the order given.
    """

    name: str = "nano_banana_task"
    description: str = (
        "Look up earlier image tasks by task_id (or several at once with task_ids): says "
        "whether each is still running, failed, or finished, and gives the image URLs when "
        "finished."
    )
    args_schema: type[BaseModel] = TaskInput

    def _lookup(self, task_id: str | None, task_ids: list[str] | None) -> ToolOutput:
        try:
            if task_id is not None:
                result = self.client.get_task(task_id).to_result()
                return self._content(result), result
            assert task_ids is not None
            records = {r.id: r for r in self.client.get_tasks(task_ids)}
        except NanoBananaError as exc:
            self._route(exc)
        results = [
            records[t].to_result()
            if t in records
            else ImageResult(status="failed", task_id=t, error=_unknown())
            for t in task_ids
        ]
        text = "\n\n".join(r.to_text() for r in results)
        return text, results

    def _run(
        self,
        task_id: str | None = None,
        task_ids: list[str] | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ToolOutput:
        return self._lookup(task_id, task_ids)

    async def _arun(
        self,
        task_id: str | None = None,
        task_ids: list[str] | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ToolOutput:
        return await asyncio.to_thread(self._lookup, task_id, task_ids)


def _unknown() -> Any:
    from langchain_nanobanana.results import ResultError

    return ResultError(code="not_found", message="no such task_id (check the id you were given)")


class NanoBananaToolkit(Configured, BaseToolkit):
    """The three Nano Banana tools sharing one :class:`NanoBananaClient`.

    .. code-block:: python

        from langchain.agents import create_agent
        from langchain_nanobanana import NanoBananaToolkit

        tools = NanoBananaToolkit(model="nano-banana-2").get_tools()
        agent = create_agent("openai:gpt-4.1", tools)

    Fields: ``client`` (or ``api_token`` / ``base_url``), ``model``, ``callback_url``, ``wait``,
    ``download_dir``, ``allowed_image_dir``, ``include_image_blocks`` — passed to the tools that
    take them. Checked when built (unknown keywords, ``model``, ``callback_url``).
    """

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
