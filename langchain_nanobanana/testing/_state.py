"""Shared state of one simulator: tasks, faults, rate limiter, request log, files, callbacks.

Everything here is guarded by one ``threading.Lock`` (``SimState.lock``). Tasks need no thread of
their own: a task is done when ``time.monotonic() >= created + duration`` (or when forced), and its
record is computed on demand. Callbacks are delivered by a single dispatcher thread fed by a heap.
"""

from __future__ import annotations

import copy
import heapq
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallbackDispatcher", "Fault", "FileSpec", "RecordedRequest", "SimState", "TaskEntry"]

FAULT_KINDS = frozenset(
    {"400", "429", "500", "502", "503", "html", "malformed", "truncated", "drop", "timeout"}
)
"""Every ``kind`` accepted by ``FakeNanoBananaServer.inject_fault``."""


class Headers(dict[str, str]):
    """HTTP headers as a ``dict``: keys stored lower-case, looked up case-insensitively."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for key, value in dict(items).items():
            super().__setitem__(str(key).lower(), str(value))

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of header ``key`` (any case), else ``default``."""
        return super().get(key.lower(), default)


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the simulator received, in arrival order.

    Attributes:
        method: HTTP method, e.g. ``"POST"``.
        path: URL path without the query string, e.g. ``"/nano-banana/images"``.
        headers: request headers; keys lower-case, looked up case-insensitively. The
            ``authorization`` header is kept verbatim (this is a test double).
        body: raw request body (``b""`` when none).
        json: the body parsed as JSON, or ``None`` when empty or not JSON.
        time: arrival time, ``time.monotonic()`` seconds.
        fault: the injected fault kind that answered this request (see ``inject_fault``),
            else ``None``.

    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: object | None
    time: float
    fault: str | None = None


@dataclass
class Fault:
    """A pending injected fault: the next ``remaining`` requests matching ``path`` get ``kind``."""

    kind: str
    remaining: int
    path: str | None = None
    retry_after: str | None = None
    create_task: bool = True


@dataclass(frozen=True)
class FileSpec:
    """An image the simulator serves at ``/files/<id>.png``: ``width`` x ``height`` pixels."""

    width: int
    height: int
    seed: bytes


@dataclass
class TaskEntry:
    """Internal task: what is needed to build its record at any moment.

    ``images`` holds ``(prompt, image_url)`` pairs fixed at creation; ``failure`` is ``(code,
    message)`` for a task that will fail; ``forced_at`` is the wall time of ``complete_task``.
    """

    id: str
    trace_id: str
    request: dict[str, Any]
    created_at: float
    created_mono: float
    duration: float
    images: list[tuple[str, str]]
    failure: tuple[str, str] | None = None
    callback_url: str | None = None
    forced_at: float | None = None
    callback_done: bool = False

    def is_done(self, now_mono: float) -> bool:
        """Tell whether the task has its response (forced, or ``duration`` seconds passed)."""
        return self.forced_at is not None or now_mono >= self.created_mono + self.duration

    def response(self) -> dict[str, Any]:
        """Build the finished task's answer: the sync success shape, or the failure body."""
        if self.failure is not None:
            code, message = self.failure
            return {
                "success": False,
                "task_id": self.id,
                "trace_id": self.trace_id,
                "error": {"code": code, "message": message},
            }
        return {
            "success": True,
            "task_id": self.id,
            "trace_id": self.trace_id,
            "data": [{"prompt": p, "image_url": u} for p, u in self.images],
        }


@dataclass
class SimState:
    """All mutable state of one simulator, guarded by :attr:`lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tasks: dict[str, TaskEntry] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    failures: deque[tuple[str, str]] = field(default_factory=deque)
    log: list[RecordedRequest] = field(default_factory=list)
    files: dict[str, FileSpec] = field(default_factory=dict)
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)
    connections_accepted: int = 0
    _window: deque[float] = field(default_factory=deque)
    account: dict[str, str] = field(
        default_factory=lambda: {
            k: str(uuid.uuid4()) for k in ("user_id", "credential_id", "application_id", "api_id")
        }
    )

    # -- request log ---------------------------------------------------------------------------
    def record(self, request: RecordedRequest) -> None:
        """Append ``request`` to the log."""
        with self.lock:
            self.log.append(request)

    def count_connection(self) -> None:
        """Count one accepted TCP connection."""
        with self.lock:
            self.connections_accepted += 1

    # -- faults --------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """Queue ``fault`` after the ones already pending."""
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str) -> Fault | None:
        """Consume one use of the first pending fault matching ``path`` (prefix match), if any."""
        with self.lock:
            for fault in self.faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return copy.copy(fault)
        return None

    # -- rate limiter --------------------------------------------------------------------------
    def allow(self, rate_limit: float | None, now_mono: float) -> bool:
        """Sliding 1 s window: True (and count it) when fewer than ``rate_limit`` were accepted."""
        if rate_limit is None:
            return True
        with self.lock:
            while self._window and self._window[0] <= now_mono - 1.0:
                self._window.popleft()
            if len(self._window) >= rate_limit:
                return False
            self._window.append(now_mono)
            return True

    # -- files ---------------------------------------------------------------------------------
    def add_file(self, spec: FileSpec) -> str:
        """Register an image to serve; returns its id (a uuid4 string)."""
        file_id = str(uuid.uuid4())
        with self.lock:
            self.files[file_id] = spec
        return file_id

    def get_file(self, file_id: str) -> FileSpec | None:
        """Return the image registered under ``file_id``, if any."""
        with self.lock:
            return self.files.get(file_id)

    # -- tasks ---------------------------------------------------------------------------------
    def add_task(self, entry: TaskEntry) -> None:
        """Store a new task; it takes the next pending failure from ``fail_next_tasks``, if any."""
        with self.lock:
            if self.failures:
                entry.failure = self.failures.popleft()
            self.tasks[entry.id] = entry

    def add_failures(self, count: int, code: str, message: str) -> None:
        """Make the next ``count`` created tasks fail with ``(code, message)``."""
        with self.lock:
            self.failures.extend([(code, message)] * count)

    def force_complete(self, task_id: str) -> TaskEntry:
        """Finish ``task_id`` now. Raises ``KeyError`` for an unknown id."""
        with self.lock:
            entry = self.tasks[task_id]
            if entry.forced_at is None and not entry.is_done(time.monotonic()):
                entry.forced_at = time.time()
            return entry

    def task_record(self, task_id: str) -> dict[str, Any] | None:
        """Return the task record as ``/nano-banana/tasks`` does (a fresh copy), or ``None``."""
        with self.lock:
            entry = self.tasks.get(task_id)
            return None if entry is None else self._record(entry, time.monotonic())

    def all_records(self) -> dict[str, dict[str, Any]]:
        """Every task record by id (fresh copies)."""
        now = time.monotonic()
        with self.lock:
            return {tid: self._record(e, now) for tid, e in self.tasks.items()}

    def _record(self, entry: TaskEntry, now_mono: float) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": entry.id,
            "created_at": entry.created_at,
            "request": copy.deepcopy(entry.request),
            "trace_id": entry.trace_id,
            "type": "images",
            **self.account,
        }
        if entry.is_done(now_mono):
            finished = (
                entry.forced_at
                if entry.forced_at is not None
                else entry.created_at + entry.duration
            )
            record["response"] = entry.response()
            record["finished_at"] = finished
            record["duration"] = round(finished - entry.created_at, 6)
        return record

    def take_callback(self, task_id: str) -> tuple[str, dict[str, Any]] | None:
        """Claim the callback of a finished task once: ``(url, payload)``, else ``None``."""
        with self.lock:
            entry = self.tasks.get(task_id)
            if entry is None or entry.callback_url is None or entry.callback_done:
                return None
            if not entry.is_done(time.monotonic()):
                return None
            entry.callback_done = True
            return entry.callback_url, entry.response()


def post_json(url: str, payload: dict[str, Any], timeout: float) -> int | None:
    """POST ``payload`` as JSON to ``url`` (urllib, no proxies); the HTTP status or ``None``."""
    data = json.dumps(payload).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"content-type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
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
        self._stopped = False

    def schedule(self, due_mono: float, task_id: str) -> None:
        """Deliver the callback of ``task_id`` at ``due_mono`` (or when it finishes, if later)."""
        with self._cond:
            if self._stopped:
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
            while not self._stopped:
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
            claim = self._state.take_callback(task_id)
            if claim is None:
                continue
            url, payload = claim
            status = post_json(url, payload, self._timeout())
            with self._state.lock:
                self._state.callbacks_sent.append(
                    {"url": url, "status": status, "payload": payload}
                )

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread (waits up to ``timeout`` seconds for a delivery in flight)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
