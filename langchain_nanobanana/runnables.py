"""``NanoBananaImageGenerator``: the Runnable for LCEL chains (no HTTP code of its own).

.. code-block:: python

    from langchain_core.prompts import PromptTemplate
    from langchain_nanobanana import NanoBananaImageGenerator

    chain = PromptTemplate.from_template("A watercolor of {subject}") | NanoBananaImageGenerator(
        aspect_ratio="3:2"
    )
    result = chain.invoke({"subject": "a lighthouse at dawn"})
    result.urls

``batch`` / ``abatch`` submit every item (at most ``max_concurrency`` submissions in flight, the
client's connection pool grown to match), then poll all pending tasks together with
``retrieve_batch`` (50 ids per request), so N images cost one poll request per round (per 50), not
N. Each poll round dispatches the custom event ``nano_banana_progress`` with ``{"round": n,
"elapsed": seconds, "tasks": {task_id: "pending" | "succeeded" | "failed"}, "pending": count,
"succeeded": count, "failed": count}`` (every task being polled, not only those read this round),
visible to callback handlers (``on_custom_event``) and ``astream_events``. In a batch the event
belongs to the first input's run (one event per round, not one per input).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any, Union

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import get_executor_for_config
from pydantic import ConfigDict, Field

from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.images import to_image_urls
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult, TaskRecord

__all__ = ["PROGRESS_EVENT", "ImageGeneratorInput", "NanoBananaImageGenerator", "prompt_text"]

#: Name of the custom event dispatched after each poll round.
PROGRESS_EVENT = "nano_banana_progress"

ImageGeneratorInput = Union[str, PromptValue, BaseMessage, dict[str, Any]]  # noqa: UP007

_DICT_KEYS = frozenset(
    {"prompt", "images", "image_urls", "aspect_ratio", "resolution", "count", "model"}
)


def prompt_text(value: object) -> str:
    """The image prompt in ``value``: a ``str``; a ``PromptValue`` (a chat prompt value yields
    its messages' text joined by newlines, without the ``Human:`` prefixes that
    ``ChatPromptValue.to_string()`` adds); or a ``BaseMessage`` (its text).

    Raises:
        TypeError: Any other type, naming it and the accepted types.

    """
    if isinstance(value, str):
        return value
    if isinstance(value, ChatPromptValue):
        return "\n".join(m.text for m in value.messages if m.text)
    if isinstance(value, PromptValue):
        return value.to_string()
    if isinstance(value, BaseMessage):
        return value.text
    raise TypeError(
        f"prompt of type {type(value).__name__} is not supported; use str, a PromptValue "
        "(from a prompt template), a BaseMessage, or a dict with 'prompt'"
    )


class NanoBananaImageGenerator(RunnableSerializable[ImageGeneratorInput, ImageResult]):
    """A Runnable that turns a prompt into an :class:`ImageResult`.

    Input: ``str``; any ``PromptValue``; a ``BaseMessage`` (e.g. an LLM's answer); or a ``dict``
    with ``prompt`` and optional ``images`` / ``image_urls`` (-> ``action="edit"``),
    ``aspect_ratio``, ``resolution``, ``count``, ``model`` (per-item overrides of the fields).

    Fields:
        client: The shared :class:`NanoBananaClient` (default: from the environment).
        model: Model name (``MODELS``); ``None`` = API default ``nano-banana``.
        aspect_ratio, resolution, count: Defaults for generate requests (edit ignores
            ``aspect_ratio`` / ``resolution``: the first image decides, seed 001).
        callback_url: When set, every request carries it and the output is the ``pending``
            result (``task_id``) at once, without polling: the API POSTs the images there
            (parse them with ``ImageResult.from_callback``; ``testing.WebhookReceiver`` locally).

    Output: ``ImageResult`` with ``status="succeeded"`` (``"pending"`` with ``callback_url``).

    Raises:
        pydantic.ValidationError: Bad parameters, before any request.
        TaskFailedError, TaskTimeoutError, SubmissionUncertainError, NanoBananaAPIError: see
            ``NanoBananaClient.submit``. With ``batch(..., return_exceptions=True)`` they are
            returned in place of the failed items.

    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: NanoBananaClient = Field(default_factory=NanoBananaClient, exclude=True, repr=False)
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int | None = None
    callback_url: str | None = None

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serializable with ``dumpd`` (the client is excluded; the token never appears)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_nanobanana", "runnables"]``."""
        return ["langchain_nanobanana", "runnables"]

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        """Accepted input types."""
        return ImageGeneratorInput

    @property
    def OutputType(self) -> type[ImageResult]:  # noqa: N802 - LangChain's name
        """Always :class:`ImageResult`."""
        return ImageResult

    # -- input -> request -----------------------------------------------------------------------

    def to_request(self, value: ImageGeneratorInput) -> ImageRequest:
        """Build the validated :class:`ImageRequest` for one input (see the class docstring).

        Raises:
            TypeError: Unsupported input type.
            ValueError: A dict with unknown keys or without ``prompt``.
            pydantic.ValidationError / InvalidImageError: Bad values.

        """
        fields: dict[str, Any] = {
            "model": self.model,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "count": self.count,
            "callback_url": self.callback_url,
        }
        if isinstance(value, dict):
            unknown = set(value) - _DICT_KEYS
            if unknown or "prompt" not in value:
                raise ValueError(
                    f"input dict keys {sorted(value)} are not allowed; give 'prompt' and "
                    f"optionally: {', '.join(sorted(_DICT_KEYS - {'prompt'}))}"
                )
            if "images" in value and "image_urls" in value:
                raise ValueError("give the images as 'images' or as 'image_urls', not both")
            prompt = prompt_text(value["prompt"])
            explicit = {k: value[k] for k in fields if value.get(k) is not None}
            fields.update(explicit)
            images = value.get("images", value.get("image_urls"))
        else:
            prompt, images, explicit = prompt_text(value), None, {}
        if images is not None:
            fields.update(action="edit", image_urls=to_image_urls(images))
            # The first image decides the size of an edit (seed 001): the generator's defaults
            # do not apply, while a value given with this input is an error ImageRequest names.
            for name in ("aspect_ratio", "resolution"):
                if name not in explicit:
                    fields.pop(name)
        else:
            fields["action"] = "generate"
        return ImageRequest(prompt=prompt, **{k: v for k, v in fields.items() if v is not None})

    # -- single ---------------------------------------------------------------------------------

    def _progress(
        self, run_manager: Any, tracker: _Progress, records: list[TaskRecord], elapsed: float
    ) -> Any:
        data = tracker.update(records, elapsed)
        # What dispatch_custom_event does, without needing a config context: the event belongs to
        # this run (its handlers and astream_events see it as on_custom_event).
        child = run_manager.get_child()
        return child.on_custom_event(PROGRESS_EVENT, data, run_id=run_manager.run_id)

    def _generate(
        self, value: ImageGeneratorInput, run_manager: CallbackManagerForChainRun
    ) -> ImageResult:
        result: ImageResult = self._generate_batch([value], [run_manager], return_exceptions=False)[
            0
        ]
        return result

    def invoke(
        self, input: ImageGeneratorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> ImageResult:
        """Generate (or edit) one image set; waits for the task. See the class docstring."""
        return self._call_with_config(self._generate, input, config, **kwargs)

    async def _agenerate(
        self, value: ImageGeneratorInput, run_manager: AsyncCallbackManagerForChainRun
    ) -> ImageResult:
        results = await self._agenerate_batch([value], [run_manager], return_exceptions=False)
        return results[0]  # type: ignore[no-any-return]

    async def ainvoke(
        self, input: ImageGeneratorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> ImageResult:
        """Async :meth:`invoke`: never blocks the event loop while the task runs."""
        return await self._acall_with_config(self._agenerate, input, config, **kwargs)

    # -- batch ----------------------------------------------------------------------------------

    def _submit_one(self, value: ImageGeneratorInput) -> ImageResult:
        return self.client.submit(self.to_request(value), wait=self.client.mode == "sync")

    def _generate_batch(
        self,
        inputs: Sequence[ImageGeneratorInput],
        run_manager: Sequence[CallbackManagerForChainRun],
        config: Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = True,
    ) -> list[Any]:
        outputs: list[Any] = [None] * len(inputs)

        def submit(index: int) -> None:
            try:
                outputs[index] = self._submit_one(inputs[index])
            except Exception as exc:
                if not return_exceptions:
                    raise
                outputs[index] = exc

        if len(inputs) == 1:
            submit(0)
        else:
            self.client.ensure_pool_size(_concurrency(config, len(inputs)))
            with get_executor_for_config(config[0] if config else None) as executor:
                list(executor.map(submit, range(len(inputs))))
        return self._collect(outputs, run_manager[0], return_exceptions)

    def _collect(self, outputs: list[Any], manager: Any, return_exceptions: bool) -> list[Any]:
        # With a callback_url the API delivers the result there: nothing to poll.
        pending = [o.task_id for o in outputs if _is_pending(o) and not self.callback_url]
        if pending:
            tracker = _Progress(pending)
            polled = self.client.poll_tasks(
                pending,
                return_exceptions=return_exceptions,
                on_round=lambda records, elapsed: self._progress(
                    manager, tracker, records, elapsed
                ),
            )
            done = dict(zip(pending, polled, strict=True))
            outputs = [done[o.task_id] if _is_pending(o) else o for o in outputs]
        return outputs

    def batch(
        self,
        inputs: list[ImageGeneratorInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[ImageResult]:
        """Submit every input (``max_concurrency`` from ``config`` bounds submissions in flight),
        then poll all pending tasks together with ``retrieve_batch``. Results in input order.
        ``return_exceptions=True`` puts each failure in its slot instead of raising.
        """
        if not inputs:
            return []
        return self._batch_with_config(
            self._generate_batch, inputs, config, return_exceptions=return_exceptions, **kwargs
        )

    async def _agenerate_batch(
        self,
        inputs: Sequence[ImageGeneratorInput],
        run_manager: Sequence[AsyncCallbackManagerForChainRun],
        config: Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = True,
    ) -> list[Any]:
        limit = (config[0].get("max_concurrency") if config else None) or len(inputs)
        semaphore = asyncio.Semaphore(limit)
        if len(inputs) > 1:
            self.client.ensure_pool_size(_concurrency(config, len(inputs)))

        async def submit(value: ImageGeneratorInput) -> Any:
            async with semaphore:
                request = await asyncio.to_thread(self.to_request, value)
                return await self.client.asubmit(request, wait=self.client.mode == "sync")

        outputs: list[Any] = list(
            await asyncio.gather(*(submit(v) for v in inputs), return_exceptions=return_exceptions)
        )
        for output in outputs:
            if isinstance(output, BaseException) and not isinstance(output, Exception):
                raise output
        # With a callback_url the API delivers the result there: nothing to poll.
        pending = [o.task_id for o in outputs if _is_pending(o) and not self.callback_url]
        if pending:
            manager = run_manager[0]
            tracker = _Progress(pending)

            async def on_round(records: list[TaskRecord], elapsed: float) -> None:
                await self._progress(manager, tracker, records, elapsed)

            polled = await self.client.apoll_tasks(
                pending, return_exceptions=return_exceptions, on_round=on_round
            )
            done = dict(zip(pending, polled, strict=True))
            outputs = [done[o.task_id] if _is_pending(o) else o for o in outputs]
        return outputs

    async def abatch(
        self,
        inputs: list[ImageGeneratorInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[ImageResult]:
        """Async :meth:`batch`: submissions bounded by ``max_concurrency``, one poll loop."""
        if not inputs:
            return []
        return await self._abatch_with_config(
            self._agenerate_batch, inputs, config, return_exceptions=return_exceptions, **kwargs
        )


def _is_pending(output: object) -> bool:
    return isinstance(output, ImageResult) and output.status == "pending"


def _concurrency(config: Sequence[RunnableConfig] | None, n_inputs: int) -> int:
    """Requests a batch may have in flight: ``max_concurrency``, else the size of a default
    ``ThreadPoolExecutor`` (what ``batch`` and ``asyncio.to_thread`` use), at most one per input.
    """
    limit = config[0].get("max_concurrency") if config else None
    return min(n_inputs, limit or min(32, (os.cpu_count() or 1) + 4))


class _Progress:
    """The payload of the ``nano_banana_progress`` event: the status of every polled task."""

    def __init__(self, task_ids: Sequence[str]) -> None:
        self.round = 0
        self.statuses: dict[str, str] = dict.fromkeys(task_ids, "pending")

    def update(self, records: Sequence[TaskRecord], elapsed: float) -> dict[str, Any]:
        self.round += 1
        for record in records:
            if record.id in self.statuses:
                self.statuses[record.id] = record.status
        counts = {status: 0 for status in ("pending", "succeeded", "failed")}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return {
            "round": self.round,
            "elapsed": round(elapsed, 3),
            "tasks": dict(self.statuses),
            **counts,
        }
