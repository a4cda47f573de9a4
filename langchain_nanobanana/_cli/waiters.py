"""Waiting for task ids that arrive one by one (a batch submits while it waits): groups of ids
share the client's one poller through ``NanoBananaClient.iter_outcomes``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from langchain_nanobanana.client import NanoBananaClient

__all__ = ["Waiters"]


class Waiters:
    """Waits for task ids that arrive one by one: groups them (up to ``window`` seconds, at most
    ``max_group`` ids) and runs ``client.iter_outcomes`` for each group in its own thread (at most
    ``max_groups`` at once), calling ``on_outcome(task_id, outcome)`` from that thread as each task
    ends. All groups share the client's one poller.

    Args:
        client: The client.
        on_outcome: Called with ``(task_id, ImageResult | exception)`` once per task.
        max_wait: Seconds each group waits at most (then ``TaskTimeoutError`` outcomes).
        window: Seconds to gather ids into one group.
        max_group: Ids per group at most.
        max_groups: Groups waiting at once at most.

    """

    def __init__(
        self,
        client: NanoBananaClient,
        on_outcome: Callable[[str, Any], None],
        *,
        max_wait: float,
        window: float = 0.2,
        max_group: int = 200,
        max_groups: int = 64,
    ) -> None:
        self._client = client
        self._on_outcome = on_outcome
        self._max_wait = max_wait
        self._window = window
        self._max_group = max_group
        self._max_groups = max_groups
        self._ids: list[str] = []
        self._live = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._dispatch, name="nanobanana-cli-wait", daemon=True
        )
        self._thread.start()

    def add(self, task_id: str) -> None:
        """Wait for ``task_id`` (from any thread)."""
        with self._cond:
            self._ids.append(task_id)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop dispatching (groups already waiting end with their waits or the client)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(2.0)

    def _is_closed(self) -> bool:
        return self._closed  # a method: other threads set it while this one waits

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._ids and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                first = time.monotonic()
                while len(self._ids) < self._max_group and not self._closed:
                    left = self._window - (time.monotonic() - first)
                    if left <= 0:
                        break
                    self._cond.wait(left)
                while self._live >= self._max_groups and not self._closed:
                    self._cond.wait(0.5)
                if self._is_closed():
                    return
                group = self._ids[: self._max_group]
                del self._ids[: self._max_group]
                self._live += 1
            threading.Thread(
                target=self._group, args=(group,), name="nanobanana-cli-group", daemon=True
            ).start()

    def _group(self, ids: list[str]) -> None:
        left = set(ids)
        try:
            for task_id, outcome in self._client.iter_outcomes(ids, max_wait=self._max_wait):
                left.discard(task_id)
                self._on_outcome(task_id, outcome)
        except Exception as exc:  # the client was closed, or a journal write failed
            for task_id in left:
                self._on_outcome(task_id, exc)
        finally:
            with self._cond:
                self._live -= 1
                self._cond.notify_all()
