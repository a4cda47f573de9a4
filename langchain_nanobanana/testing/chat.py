"""``ScriptedChatModel``: a tool-calling fake chat model for demos, notebooks and agent tests.

``langchain_core``'s ``GenericFakeChatModel`` has no ``bind_tools``, so agents
built with ``langchain.agents.create_agent`` or LangGraph cannot use it. This model answers from a
script: each step is an ``AIMessage`` or a function of the messages the model received (so a step
can call ``nano_banana_edit`` on the URL the previous tool call returned). Every list of messages
it receives is recorded in ``received``, for assertions on what the model saw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

__all__ = ["ScriptedChatModel", "Step", "last_image_urls", "tool_call"]

Step = AIMessage | Callable[[list[BaseMessage]], AIMessage]


def tool_call(name: str, args: dict[str, Any], *, id: str, content: str = "") -> AIMessage:
    """An ``AIMessage`` that calls tool ``name`` with ``args`` (tool call id ``id``)."""
    return AIMessage(
        content=content, tool_calls=[{"name": name, "args": args, "id": id, "type": "tool_call"}]
    )


def last_image_urls(messages: Sequence[BaseMessage]) -> list[str]:
    """The image URLs of the most recent ``ToolMessage`` whose artifact is an ``ImageResult``.

    Raises:
        LookupError: No such tool message in ``messages``.

    """
    from langchain_nanobanana.results import ImageResult

    for message in reversed(messages):
        if isinstance(message, ToolMessage) and isinstance(message.artifact, ImageResult):
            return message.artifact.urls
    raise LookupError("no ToolMessage with an ImageResult artifact among the messages")


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays ``steps`` in order, one per call, and records what it received.

    Args:
        steps: ``AIMessage`` or ``f(messages) -> AIMessage`` per model call.

    Attributes:
        received: The messages of every call, in call order.
        bound_tools: Names of the tools passed to the last ``bind_tools``.

    Raises:
        IndexError: Called more times than there are steps (the script ran out).

    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    steps: list[Any] = Field(default_factory=list)
    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-calling-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            index = len(self.received)
            self.received.append(list(messages))
        if index >= len(self.steps):
            raise IndexError(f"ScriptedChatModel has {len(self.steps)} steps; call {index + 1}")
        step = self.steps[index]
        message = step(list(messages)) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Record the tool names and return the model itself (the script decides the calls)."""
        self.bound_tools = [getattr(t, "name", None) or str(t) for t in tools]
        return self
