"""``NanoBananaImageGenerator``: the Runnable for LCEL chains (no HTTP code of its own).

.. code-block:: python

    from langchain_core.prompts import PromptTemplate
    from langchain_nanobanana import NanoBananaImageGenerator

    chain = PromptTemplate.from_template("A watercolor of {subject}") | NanoBananaImageGenerator(
        aspect_ratio="3:2"
    )
    result = chain.invoke({"subject": "a lighthouse at dawn"})
    result.urls

``batch`` / ``abatch`` / ``batch_as_completed`` / ``abatch_as_completed`` validate every input
first, submit them (at most ``max_concurrency`` submissions in flight), then wait on the client's
one poller, which reads every pending task of every caller in shared ``retrieve_batch`` rounds (50
ids per request). After each round the custom event ``nano_banana_progress`` (payload:
``langchain_nanobanana.progress``) is dispatched to the first input's run. When a call ends early
(an error, a cancellation, ``KeyboardInterrupt``, ``break``), nothing new is submitted and the
task_ids already submitted (billed, still running) are on the raised error and logged at WARNING.
Cancelling locally never cancels the remote task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Union

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    get_config_list,
    get_executor_for_config,
)

from langchain_nanobanana._batching import (
    Batch,
    Runs,
    awaited,
    batch_args,
    concurrency,
    key_of,
    start_run,
)
from langchain_nanobanana._config import Configured
from langchain_nanobanana._core.polling import Outcome
from langchain_nanobanana._request import build_request
from langchain_nanobanana.errors import (
    SAFE_TO_RETRY,
    ConfigurationError,
    InvalidRequestError,
)
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.progress import PROGRESS_EVENT, dispatcher
from langchain_nanobanana.results import ImageResult

__all__ = ["PROGRESS_EVENT", "ImageGeneratorInput", "NanoBananaImageGenerator", "prompt_text"]

logger = logging.getLogger(__name__)

ImageGeneratorInput = Union[str, PromptValue, BaseMessage, dict[str, Any]]  # noqa: UP007

_DICT_KEYS = frozenset(
    {"prompt", "images", "image_urls", "aspect_ratio", "resolution", "count", "model", "id"}
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


class NanoBananaImageGenerator(Configured, RunnableSerializable[ImageGeneratorInput, ImageResult]):
    """A Runnable that turns a prompt into an :class:`ImageResult`.

    Input: ``str``; any ``PromptValue``; a ``BaseMessage`` (e.g. an LLM's answer); or a ``dict``
    with ``prompt`` and optional ``images`` / ``image_urls`` (-> ``action="edit"``),
    ``aspect_ratio``, ``resolution``, ``count``, ``model`` (per-item overrides).

    Fields:
        client: The shared :class:`NanoBananaClient` (default: built from ``api_token`` /
            ``base_url``, each defaulting to the environment).
        api_token: ``SecretStr``; default ``$ACEDATACLOUD_API_TOKEN`` (``lc_secrets``).
        base_url: Default ``$ACEDATACLOUD_API_BASE_URL``, else the vendor's.
        model: Model name (``MODELS``); ``None`` = API default ``nano-banana``.
        aspect_ratio, resolution, count: Defaults for every request, edits included.
        callback_url: Every request carries it; the output is the ``pending`` result at once.
        allowed_image_dir: Folder local image paths in dict inputs may come from; ``None``
            (default) refuses paths (URLs, data URIs and bytes are always accepted).

    Checked when built: unknown keywords ("did you mean"), and ``model`` / ``aspect_ratio`` /
    ``resolution`` / ``count`` / ``callback_url`` as :class:`ImageRequest` would.

    Output: ``ImageResult`` with ``status="succeeded"`` (``"pending"`` with ``callback_url``).

    Raises:
        InvalidRequestError: Bad parameters, before any request.
        TaskFailedError, TaskTimeoutError, SubmissionUncertainError, NanoBananaAPIError: see
            ``NanoBananaClient.submit``; with ``return_exceptions=True`` returned in place.

    """

    FIXED = ("model", "aspect_ratio", "resolution", "count", "callback_url")

    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int | None = None
    callback_url: str | None = None
    allowed_image_dir: str | None = None

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

    def with_safe_retry(self, *, stop_after_attempt: int = 3) -> Runnable[Any, ImageResult]:
        """``with_retry`` limited to errors after which nothing was billed (``SAFE_TO_RETRY``:
        a 429 after the client's own retries, a connection that never reached the API). A failed
        task, a timeout (the task still runs) or an uncertain submission is never retried, so a
        retry can never pay twice.

        Args:
            stop_after_attempt: Attempts in all (default 3).

        """
        return self.with_retry(
            retry_if_exception_type=SAFE_TO_RETRY, stop_after_attempt=stop_after_attempt
        )

    # -- input -> request -----------------------------------------------------------------------

    def to_request(self, value: ImageGeneratorInput) -> ImageRequest:
        """Build the validated :class:`ImageRequest` for one input (see the class docstring).

        Raises:
            TypeError: Unsupported input type.
            InvalidRequestError: A dict with unknown keys or without ``prompt``, or bad values
                (:class:`InvalidImageError` for an image); a ``ValueError``.
            ConfigurationError: A dict with an ``id`` while the client has no journal.

        """
        fields: dict[str, Any] = {
            "model": self.model,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "count": self.count,
            "callback_url": self.callback_url,
        }
        images = None
        if isinstance(value, dict):
            unknown = set(value) - _DICT_KEYS
            if unknown or "prompt" not in value:
                raise InvalidRequestError(
                    f"input dict keys {sorted(map(str, value))} are not allowed; give 'prompt' "
                    f"and optionally: {', '.join(sorted(_DICT_KEYS - {'prompt'}))}",
                    field="input",
                )
            if "images" in value and "image_urls" in value:
                raise InvalidRequestError(
                    "give the images as 'images' or as 'image_urls', not both", field="images"
                )
            if "id" in value and getattr(self.client, "journal", None) is None:
                raise ConfigurationError(
                    f"id={value['id']!r} is an idempotency key and needs a journal: use "
                    "NanoBananaClient(journal='runs.sqlite'), or leave 'id' out"
                )
            prompt = prompt_text(value["prompt"])
            fields.update({k: value[k] for k in fields if value.get(k) is not None})
            images = value.get("images", value.get("image_urls"))
        else:
            prompt = prompt_text(value)
        return build_request(
            "generate" if images is None else "edit",
            prompt,
            images,
            allowed_image_dir=self.allowed_image_dir,
            allow_local_paths=self.allowed_image_dir is not None,
            **fields,
        )

    # -- the drivers ----------------------------------------------------------------------------

    def _iter_batch(
        self,
        inputs: Sequence[ImageGeneratorInput],
        config: RunnableConfig | None,
        return_exceptions: bool,
        run_manager: CallbackManagerForChainRun | None,
    ) -> Iterator[tuple[int, Outcome]]:
        batch = Batch(self, inputs, return_exceptions)
        try:
            self._submit_all(batch, config)
            batch.check()
            yield from batch.take_ready()
            if batch.open:
                for task_id, outcome in self.client.iter_outcomes(
                    list(batch.open), on_progress=dispatcher(run_manager), since=batch.since
                ):
                    yield from batch.finished(task_id, outcome)
        except BaseException as exc:
            batch.ended_early(exc)
            raise

    def _submit_all(self, batch: Batch, config: RunnableConfig | None) -> None:
        def submit(item: tuple[int, ImageRequest]) -> None:
            index, request = item
            if batch.stopped.is_set():
                batch.skipped(index)
                return
            try:
                result = self.client.submit(
                    request, wait=batch.wait_in_line, idempotency_key=batch.keys[index]
                )
                batch.submitted(index, result)
            except Exception as exc:
                batch.submitted(index, exc)

        items = batch.to_submit()
        if len(items) <= 1:
            for item in items:
                submit(item)
            return
        self.client.ensure_pool_size(concurrency(config, len(items)))
        with get_executor_for_config(config) as executor:
            try:
                list(executor.map(submit, items))
            except BaseException:
                batch.stopped.set()  # queued submissions see it before they send
                raise

    async def _aiter_batch(
        self,
        inputs: Sequence[ImageGeneratorInput],
        config: RunnableConfig | None,
        return_exceptions: bool,
        run_manager: AsyncCallbackManagerForChainRun | None,
    ) -> AsyncIterator[tuple[int, Outcome]]:
        batch = await asyncio.to_thread(Batch, self, inputs, return_exceptions)
        try:
            await self._asubmit_all(batch, config)
            batch.check()
            for item in batch.take_ready():
                yield item
            if batch.open:
                async for task_id, outcome in self.client.aiter_outcomes(
                    list(batch.open), on_progress=dispatcher(run_manager), since=batch.since
                ):
                    for item in batch.finished(task_id, outcome):
                        yield item
        except BaseException as exc:
            batch.ended_early(exc)
            raise

    async def _asubmit_all(self, batch: Batch, config: RunnableConfig | None) -> None:
        items = batch.to_submit()
        semaphore = asyncio.Semaphore(concurrency(config, len(items)))
        if len(items) > 1:
            self.client.ensure_pool_size(concurrency(config, len(items)))

        async def submit(index: int, request: ImageRequest) -> None:
            async with semaphore:
                if batch.stopped.is_set():
                    batch.skipped(index)
                    return
                try:
                    result = await self.client.asubmit(
                        request, wait=batch.wait_in_line, idempotency_key=batch.keys[index]
                    )
                except Exception as exc:
                    batch.submitted(index, exc)
                else:
                    batch.submitted(index, result)

        try:
            await asyncio.gather(*(submit(i, r) for i, r in items))
        except BaseException:
            batch.stopped.set()
            raise

    # -- LangChain entry points -----------------------------------------------------------------

    def _collect(
        self, inputs: list[Any], run_manager: list[Any], config: list[Any], **kw: Any
    ) -> list[Any]:
        outputs: list[Any] = [None] * len(inputs)
        for index, outcome in self._iter_batch(inputs, *batch_args(run_manager, config, kw)):
            outputs[index] = outcome
        return outputs

    async def _acollect(
        self, inputs: list[Any], run_manager: list[Any], config: list[Any], **kw: Any
    ) -> list[Any]:
        outputs: list[Any] = [None] * len(inputs)
        async for index, outcome in self._aiter_batch(inputs, *batch_args(run_manager, config, kw)):
            outputs[index] = outcome
        return outputs

    def _invoke_one(
        self,
        value: ImageGeneratorInput,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> ImageResult:
        request = self.to_request(value)  # the client's one submit-and-wait path from here on
        return self.client.submit(
            request, idempotency_key=key_of(value), on_progress=dispatcher(run_manager)
        )

    async def _ainvoke_one(
        self,
        value: ImageGeneratorInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> ImageResult:
        request = await asyncio.to_thread(self.to_request, value)
        return await self.client.asubmit(
            request, idempotency_key=key_of(value), on_progress=dispatcher(run_manager)
        )

    def invoke(
        self, input: ImageGeneratorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> ImageResult:
        """Generate (or edit) one image set; waits for the task. See the class docstring."""
        return self._call_with_config(self._invoke_one, input, config, **kwargs)

    async def ainvoke(
        self, input: ImageGeneratorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> ImageResult:
        """Async :meth:`invoke`: never blocks the event loop while the task runs."""
        return await self._acall_with_config(self._ainvoke_one, input, config, **kwargs)

    def batch(
        self,
        inputs: list[ImageGeneratorInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[ImageResult]:
        """Validate every input, submit them (``max_concurrency`` bounds submissions in flight),
        then wait for all on the shared poller. Results in input order. ``return_exceptions``:
        ``False`` -> a bad input raises before anything is sent and the first failure raises at
        once (naming the siblings' task_ids); ``True`` -> each failure in its slot.
        """
        if not inputs:
            return []
        return self._batch_with_config(  # which keeps return_exceptions to itself: pass it on
            self._collect,
            inputs,
            config,
            return_exceptions=return_exceptions,
            collect_exceptions=return_exceptions,
            **kwargs,
        )

    async def abatch(
        self,
        inputs: list[ImageGeneratorInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[ImageResult]:
        """Async :meth:`batch`."""
        if not inputs:
            return []
        return await self._abatch_with_config(
            self._acollect,
            inputs,
            config,
            return_exceptions=return_exceptions,
            collect_exceptions=return_exceptions,
            **kwargs,
        )

    def batch_as_completed(  # type: ignore[override]
        self,
        inputs: Sequence[ImageGeneratorInput],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> Iterator[tuple[int, ImageResult | Exception]]:
        """Yield ``(index, result)`` as each task finishes (within about one poll interval),
        after validating every input and submitting them all. Each input has its own run
        (callbacks, tracing). ``break`` stops waiting (the tasks keep running; their ids are
        logged at WARNING) and submits nothing new.
        """
        if not inputs:
            return
        configs = get_config_list(config, len(inputs))
        runs = Runs(
            [
                start_run(get_callback_manager_for_config(c), self, v, c)
                for v, c in zip(inputs, configs, strict=True)
            ]
        )
        try:
            for index, outcome in self._iter_batch(
                inputs, configs[0], return_exceptions, runs.first()
            ):
                runs.end(index, outcome)
                yield index, outcome  # type: ignore[misc]
        except BaseException as exc:
            runs.fail_open(exc)
            raise

    async def abatch_as_completed(  # type: ignore[override]
        self,
        inputs: Sequence[ImageGeneratorInput],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> AsyncIterator[tuple[int, ImageResult | Exception]]:
        """Async :meth:`batch_as_completed`."""
        if not inputs:
            return
        configs = get_config_list(config, len(inputs))
        runs = Runs(
            [
                await start_run(get_async_callback_manager_for_config(c), self, v, c)
                for v, c in zip(inputs, configs, strict=True)
            ]
        )
        try:
            async for index, outcome in self._aiter_batch(
                inputs, configs[0], return_exceptions, runs.first()
            ):
                await awaited(runs.end(index, outcome))
                yield index, outcome  # type: ignore[misc]
        except BaseException as exc:
            for pending in runs.fail_open(exc):
                await awaited(pending)
            raise
