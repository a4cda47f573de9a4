"""Images in tool results, for chat APIs that accept images only from the user.

With ``include_image_blocks=True`` the image tools answer with a ``ToolMessage`` whose content
holds LangChain standard image blocks (``{"type": "image", "url": ...}`` or ``{"type": "image",
"base64": ..., "mime_type": ...}``). Anthropic, Google Gemini and the OpenAI Responses API take
images in a tool result; OpenAI **Chat Completions** (``ChatOpenAI`` without
``use_responses_api``, and most OpenAI-compatible servers) refuses them: ``langchain-openai`` turns
the blocks into ``image_url`` parts of a ``role: "tool"`` message, and the API answers 400 (image
URLs are allowed only in ``role: "user"`` messages).

:func:`move_tool_images_to_user` rewrites a history so that it is valid there: the tool messages
keep their text (plus a note that the images follow) and the images move into one
``HumanMessage`` placed right after the tool messages of that AI turn.
``ToolImagesToUserMiddleware`` applies it before every model call of a
``langchain.agents.create_agent`` agent (``pip install 'langchain-nanobanana[agents]'``); the
agent's state keeps the original messages.

.. code-block:: python

    from langchain.agents import create_agent
    from langchain_nanobanana import NanoBananaToolkit
    from langchain_nanobanana.middleware import ToolImagesToUserMiddleware

    agent = create_agent(
        "openai:gpt-4.1",
        NanoBananaToolkit(include_image_blocks=True).get_tools(),
        middleware=[ToolImagesToUserMiddleware()],
    )

Importing this module needs only ``langchain-core``; ``ToolImagesToUserMiddleware`` imports
``langchain`` on first access and raises ``ImportError`` (naming the ``agents`` extra) without it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
    from langchain.agents.middleware.types import AgentState
    from langchain_core.messages import AnyMessage

__all__ = ["IMAGE_BLOCK_TYPES", "ToolImagesToUserMiddleware", "move_tool_images_to_user"]

#: Content block ``type`` values moved out of tool messages: LangChain standard (and legacy v0 /
#: Anthropic-style) ``"image"`` blocks, and OpenAI Chat Completions ``"image_url"`` parts.
IMAGE_BLOCK_TYPES = frozenset({"image", "image_url"})

_HEADER = (
    "Images returned by the tool calls above (tool results cannot carry images here, so they "
    "are attached to this message; they were not sent by the user)."
)


def _is_image_block(block: object) -> bool:
    return isinstance(block, dict) and block.get("type") in IMAGE_BLOCK_TYPES


def _note(count: int) -> dict[str, str]:
    what = "image" if count == 1 else f"{count} images"
    return {"type": "text", "text": f"({what} attached in the next message)"}


def _has_tool_images(message: BaseMessage) -> bool:
    return (
        isinstance(message, ToolMessage)
        and not isinstance(message.content, str)
        and any(map(_is_image_block, message.content))
    )


def _split(message: ToolMessage) -> tuple[ToolMessage, list[dict[str, Any]]]:
    """The tool message without its image blocks (plus a note), and those blocks (copied)."""
    if not _has_tool_images(message):
        return message, []
    kept: list[str | dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for block in message.content:
        if _is_image_block(block):
            images.append(dict(block))  # type: ignore[arg-type]  # a dict, checked above
        else:
            kept.append(block)
    kept.append(_note(len(images)))
    return message.model_copy(update={"content": kept}), images


def _images_message(moved: list[tuple[ToolMessage, list[dict[str, Any]]]]) -> HumanMessage:
    content: list[str | dict[str, Any]] = [{"type": "text", "text": _HEADER}]
    for tool_message, images in moved:
        label = f"{tool_message.name} " if tool_message.name else ""
        content.append(
            {"type": "text", "text": f"From {label}(tool_call_id {tool_message.tool_call_id}):"}
        )
        content.extend(images)
    return HumanMessage(content=content)


def move_tool_images_to_user(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Move image blocks out of tool messages into a user message that follows them.

    For each run of consecutive ``ToolMessage`` objects (the answers to one ``AIMessage``'s tool
    calls), every image block (``type`` in :data:`IMAGE_BLOCK_TYPES`) leaves its tool message,
    which keeps its other blocks and gains a text block ``"(N images attached in the next
    message)"``. One ``HumanMessage`` inserted right after the run carries the images, each group
    labelled with its tool name and ``tool_call_id``. The run stays contiguous after its AI
    message, so every ``tool_call_id`` is answered before the next non-tool message (as OpenAI
    requires). Tool messages keep their ``tool_call_id``, ``name``, ``id``, ``status`` and
    ``artifact``.

    Args:
        messages: A chat history (any message types; not modified).

    Returns:
        A new list. Messages without image blocks are the same objects, so a history without any
        is returned as an equal list. Idempotent: applying it again changes nothing.

    """
    result: list[BaseMessage] = []
    moved: list[tuple[ToolMessage, list[dict[str, Any]]]] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            stripped, images = _split(message)
            result.append(stripped)
            if images:
                moved.append((message, images))
            continue
        if moved:  # the run of tool messages just ended
            result.append(_images_message(moved))
            moved = []
        result.append(message)
    if moved:
        result.append(_images_message(moved))
    return result


def _moved(request: ModelRequest[Any]) -> ModelRequest[Any]:
    """``request`` with :func:`move_tool_images_to_user` applied (itself when nothing moves)."""
    if not any(map(_has_tool_images, request.messages)):
        return request
    messages = move_tool_images_to_user(request.messages)
    return request.override(messages=cast("list[AnyMessage]", messages))


_MISSING_LANGCHAIN = (
    "ToolImagesToUserMiddleware needs langchain>=1.0 (langchain.agents.middleware): "
    "pip install 'langchain-nanobanana[agents]'. "
    "Without it, apply move_tool_images_to_user(messages) yourself before calling the model."
)

if TYPE_CHECKING:

    class ToolImagesToUserMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
        """Agent middleware: :func:`move_tool_images_to_user` before every model call."""

        def wrap_model_call(
            self,
            request: ModelRequest[Any],
            handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
        ) -> ModelResponse[Any]:
            """Call the model with the images of tool messages moved to a user message."""
            ...

        async def awrap_model_call(
            self,
            request: ModelRequest[Any],
            handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
        ) -> ModelResponse[Any]:
            """Async :meth:`wrap_model_call`."""
            ...


def _define_middleware() -> type[ToolImagesToUserMiddleware]:
    """Build the middleware class (imports ``langchain``); see ``ToolImagesToUserMiddleware``."""
    try:
        from langchain.agents.middleware import AgentMiddleware
    except ImportError as exc:
        raise ImportError(_MISSING_LANGCHAIN) from exc

    class ToolImagesToUserMiddleware(AgentMiddleware):
        """Agent middleware that moves images out of tool messages before every model call.

        A ``langchain.agents.create_agent`` middleware (``langchain>=1.0``, the ``agents``
        extra). Before each model call it sends the model
        ``move_tool_images_to_user(request.messages)`` (``request.override(messages=...)``);
        the agent's state, checkpoints and streamed messages keep the original tool messages.
        Requests without images in tool messages pass through unchanged.

        Use it for models behind OpenAI Chat Completions (``ChatOpenAI`` without
        ``use_responses_api=True``, OpenAI-compatible servers) when the tools return image
        blocks (``include_image_blocks=True``). Harmless elsewhere, but Anthropic, Gemini and the
        Responses API take images in tool results as they are.

        Takes no arguments. Sync (``invoke``/``stream``) and async (``ainvoke``/``astream``).

        Raises:
            ImportError: On access, when ``langchain`` is not installed (names the ``agents``
                extra).

        """

        __qualname__ = "ToolImagesToUserMiddleware"

        def wrap_model_call(
            self,
            request: ModelRequest[Any],
            handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
        ) -> ModelResponse[Any]:
            """Call the model with the images of tool messages moved to a user message."""
            return handler(_moved(request))

        async def awrap_model_call(
            self,
            request: ModelRequest[Any],
            handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
        ) -> ModelResponse[Any]:
            """Async :meth:`wrap_model_call`."""
            return await handler(_moved(request))

    ToolImagesToUserMiddleware.__module__ = __name__
    return ToolImagesToUserMiddleware  # type: ignore[return-value]


def __getattr__(name: str) -> Any:
    """Build ``ToolImagesToUserMiddleware`` on first access (PEP 562), importing ``langchain``."""
    if name == "ToolImagesToUserMiddleware":
        cls = _define_middleware()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
