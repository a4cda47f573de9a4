"""The async twins of :class:`~langchain_nanobanana.client.NanoBananaClient`'s methods: each HTTP
exchange runs in the default thread pool and waits on the client's poller with ``asyncio``
futures, never blocking the event loop. They differ from the sync methods only in how they wait.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_nanobanana._client_base import ClientBase, _Gather, _number
from langchain_nanobanana._core.polling import Outcome
from langchain_nanobanana._inputs import ImageInput
from langchain_nanobanana._request import build_request
from langchain_nanobanana._waits import aiter_outcomes
from langchain_nanobanana.models import ImageRequest
from langchain_nanobanana.results import ImageResult, TaskRecord

__all__ = ["AsyncMethods"]


class AsyncMethods(ClientBase):
    """``agenerate``, ``aedit``, ``asubmit``, ``aget_task(s)``, ``apoll_task(s)``,
    ``aiter_outcomes``: the async API of ``NanoBananaClient``.
    """

    if TYPE_CHECKING:  # the sync reads they run in a thread, defined by NanoBananaClient

        def get_task(self, task_id: str) -> TaskRecord:
            """See ``NanoBananaClient.get_task``."""

        def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
            """See ``NanoBananaClient.get_tasks``."""

    async def agenerate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
        idempotency_key: str | None = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
    ) -> ImageResult:
        """Async :meth:`generate`: HTTP in the default thread pool, waits on the poller."""
        request = build_request(
            "generate",
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            callback_url=callback_url,
        )
        return await self.asubmit(
            request,
            wait=wait,
            idempotency_key=idempotency_key,
            resubmit_uncertain=resubmit_uncertain,
            retry_failed=retry_failed,
        )

    async def aedit(
        self,
        prompt: str,
        images: Sequence[ImageInput] | ImageInput,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int | None = None,
        callback_url: str | None = None,
        wait: bool = True,
        idempotency_key: str | None = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        allowed_image_dir: str | os.PathLike[str] | None = None,
    ) -> ImageResult:
        """Async :meth:`edit` (local files are read in a worker thread)."""
        request = await asyncio.to_thread(
            build_request,
            "edit",
            prompt,
            images,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            callback_url=callback_url,
            allowed_image_dir=allowed_image_dir,
        )
        return await self.asubmit(
            request,
            wait=wait,
            idempotency_key=idempotency_key,
            resubmit_uncertain=resubmit_uncertain,
            retry_failed=retry_failed,
        )

    async def asubmit(
        self,
        request: ImageRequest,
        *,
        wait: bool = True,
        idempotency_key: str | None = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
        busy_wait: float | None = None,
    ) -> ImageResult:
        """Async :meth:`submit`; same errors. A cancellation while the POST is in flight logs
        the task_id at WARNING when the answer arrives (and the journal records it).
        ``on_progress`` may be a coroutine function.
        """
        options = dict(
            resubmit_uncertain=resubmit_uncertain, retry_failed=retry_failed, busy_wait=busy_wait
        )
        result = await self._in_thread(self._start, request, wait, idempotency_key, **options)
        if result.status != "pending" or not wait or request.callback_url is not None:
            return result.raise_for_status()
        assert result.task_id is not None
        return await self.apoll_task(result.task_id, on_progress=on_progress)

    async def aget_task(self, task_id: str) -> TaskRecord:
        """Async :meth:`get_task`."""
        return await self._in_thread(self.get_task, task_id)

    async def aget_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Async :meth:`get_tasks`."""
        return await self._in_thread(self.get_tasks, task_ids)

    async def apoll_task(
        self,
        task_id: str,
        *,
        max_wait: float | None = None,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
    ) -> ImageResult:
        """Async :meth:`poll_task`: waits on a future, never blocks the event loop."""
        async for _, outcome in self.aiter_outcomes(
            [task_id], max_wait=max_wait, on_progress=on_progress
        ):
            return self._outcome(outcome)
        raise AssertionError("unreachable: a wait always ends with an outcome")

    async def aiter_outcomes(
        self,
        task_ids: Sequence[str],
        *,
        max_wait: float | None = None,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
        since: float | None = None,
    ) -> AsyncIterator[tuple[str, Outcome]]:
        """Async :meth:`iter_outcomes`; ``on_progress`` may be a coroutine function."""
        budget = self.max_wait if max_wait is None else _number("max_wait", max_wait)
        async for task_id, outcome in aiter_outcomes(
            self._poller, list(task_ids), max_wait=budget, on_progress=on_progress, since=since
        ):
            self._record(task_id, outcome)
            yield task_id, outcome

    async def apoll_tasks(
        self,
        task_ids: Sequence[str],
        *,
        max_wait: float | None = None,
        return_exceptions: bool = True,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
    ) -> list[Any]:
        """Async :meth:`poll_tasks`."""
        gather = _Gather(task_ids, return_exceptions)
        async for task_id, outcome in self.aiter_outcomes(
            gather.ids, max_wait=max_wait, on_progress=on_progress
        ):
            gather.add(task_id, outcome)
        return gather.results()
