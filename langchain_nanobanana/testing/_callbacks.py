"""Delivery of ``callback_url`` POSTs (the API POSTs the result when the task finishes: Nano Banana
Images API Integration Guide, https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e).

One dispatcher thread per simulator, fed by a heap of due times. A delivery that cannot be made
(unreachable host, a URL ``urllib`` cannot parse such as a bad port or a space) is recorded with
``status=None``; nothing a submitted URL contains can end the thread.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_nanobanana.testing._state import SimState

__all__ = ["CallbackDispatcher", "post_json"]


def post_json(url: str, payload: dict[str, Any], timeout: float) -> int | None:
    """POST ``payload`` as JSON to ``url`` (urllib, no proxies, ``timeout`` seconds).

    Returns:
        The HTTP status (also for 4xx/5xx answers), or ``None`` when no answer was received: a
        network error, or a URL ``urllib`` refuses (``http.client.InvalidURL``, non-ASCII host,
        bad port, ...). Never raises for anything the URL or the server does.

    """
    data = json.dumps(payload).encode()
    try:
        req = urllib.request.Request(
            url, data=data, method="POST", headers={"content-type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except Exception:  # InvalidURL is no OSError; a URL must never end the thread
        return None


class CallbackDispatcher:
    """One background thread that POSTs finished tasks' payloads to their ``callback_url``.

    Tasks are scheduled with their due time (``time.monotonic()`` seconds); the thread starts on the
    first :meth:`schedule` and is stopped by :meth:`stop`. Each delivery is appended to
    ``state.callbacks_sent`` as ``{"url", "status" (int or None), "payload"}``.
    """

    def __init__(self, state: SimState, timeout: Callable[[], float]) -> None:
        self._state = state
        self._timeout = timeout
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._thread: threading.Thread | None = None
        self.stopped = False

    def schedule(self, due_mono: float, task_id: str) -> None:
        """Deliver the callback of ``task_id`` at ``due_mono`` (or when it finishes, if later)."""
        with self._cond:
            if self.stopped:
                return
            self._seq += 1
            heapq.heappush(self._heap, (due_mono, self._seq, task_id))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nanobanana-sim-callbacks", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _next(self) -> str | None:
        with self._cond:
            while not self.stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                return heapq.heappop(self._heap)[2]
        return None

    def _run(self) -> None:
        while (task_id := self._next()) is not None:
            try:
                self._deliver(task_id)
            except Exception as exc:  # keep delivering the others
                self._state.note_internal_error(f"callback {task_id}: {exc!r}")

    def _deliver(self, task_id: str) -> None:
        claim = self._state.take_callback(task_id)
        if claim is None:
            return
        url, payload = claim
        status = post_json(url, payload, self._timeout())
        with self._state.lock:
            self._state.callbacks_sent.append({"url": url, "status": status, "payload": payload})

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread (waits up to ``timeout`` seconds for a delivery in flight)."""
        with self._cond:
            self.stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
