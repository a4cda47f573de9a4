"""Shared state of one simulator: tasks, faults, rate limiter, request log, files, callbacks.

Everything here is guarded by one ``threading.Lock`` (``SimState.lock``). Tasks need no thread of
their own: a task is done when ``time.monotonic() >= created + duration`` (or when forced), and its
record is computed on demand. Callbacks are delivered by ``_callbacks.CallbackDispatcher``.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langchain_nanobanana.testing._responses import error_body

__all__ = [
    "FAULT_KINDS",
    "Failure",
    "Fault",
    "FileSpec",
    "RecordOptions",
    "RecordedRequest",
    "SimState",
    "TaskEntry",
]

FAULT_KINDS = frozenset(
    {"400", "429", "429_lower", "500", "502", "503", "html", "malformed", "truncated", "drop"}
    | {"timeout", "slow", "body", "301", "302", "307", "308"}
    | {"gzip", "echo", "surrogates"}
)
"""Every ``kind`` accepted by ``FakeNanoBananaServer.inject_fault``."""

PADDING_FIELD = "x_sim_padding"
"""Name of the string field ``record_padding`` adds inside each record's ``request``."""


@lru_cache(maxsize=4)
def _padding(nbytes: int) -> str:
    return "A" * nbytes


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
    """A pending injected fault: the next ``remaining`` requests matching ``path`` get ``kind``.

    ``status``, ``body`` (encoded bytes) and ``headers`` are used by the ``"body"`` kind only.
    """

    kind: str
    remaining: int
    path: str | None = None
    retry_after: str | None = None
    create_task: bool = True
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """How a task made to fail by ``fail_next_tasks`` ends.

    ``state_only``: its record says ``"state": "failed"`` and has no ``response``.
    """

    code: str
    message: str
    state_only: bool = False


@dataclass(frozen=True)
class RecordOptions:
    """The record-shaping knobs of the simulator, read when a record or error body is built.

    Attributes:
        padding: bytes of ``"A"`` added as ``request.x_sim_padding`` to every record (0: none).
        state_words: add ``"state"`` (``running``/``succeeded``/``failed``) to every record.
        error_shape: how error bodies carry ``error`` (``object``/``string``/``null``/``missing``).

    """

    padding: int = 0
    state_words: bool = False
    error_shape: str = "object"


@dataclass(frozen=True)
class FileSpec:
    """An image the simulator serves at ``/files/<id>.png``: ``width`` x ``height`` pixels."""

    width: int
    height: int
    seed: bytes


@dataclass
class TaskEntry:
    """Internal task: what is needed to build its record at any moment.

    ``images`` holds ``(prompt, image_url)`` pairs fixed at creation; ``failure`` is set for a task
    that will fail; ``forced_at`` is the wall time of ``complete_task``; ``store_id`` is the
    record's ``_id`` (24 hex characters, like the Tasks API guide's example).
    """

    id: str
    trace_id: str
    request: dict[str, Any]
    created_at: float
    created_mono: float
    duration: float
    images: list[tuple[str, str]]
    failure: Failure | None = None
    callback_url: str | None = None
    forced_at: float | None = None
    callback_done: bool = False
    store_id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])

    def is_done(self, now_mono: float) -> bool:
        """Tell whether the task has its response (forced, or ``duration`` seconds passed)."""
        return self.forced_at is not None or now_mono >= self.created_mono + self.duration

    def response(self, error_shape: str = "object") -> dict[str, Any]:
        """Build the finished task's answer: the sync success shape, or the failure body.

        ``error_shape``: how a failure body carries ``error`` (see ``RecordOptions``).
        """
        if self.failure is not None:
            return error_body(
                self.failure.code,
                self.failure.message,
                error_shape,
                task_id=self.id,
                trace_id=self.trace_id,
            )
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
    failures: deque[Failure] = field(default_factory=deque)
    internal_errors: list[str] = field(default_factory=list)
    options: Callable[[], RecordOptions] = RecordOptions
    log: list[RecordedRequest] = field(default_factory=list)
    files: dict[str, FileSpec] = field(default_factory=dict)
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)
    connections_accepted: int = 0
    rate_limited: int = 0
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

    def note_internal_error(self, text: str) -> None:
        """Remember an exception a handler or the callback thread survived (a simulator bug)."""
        with self.lock:
            self.internal_errors.append(text)

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
                self.rate_limited += 1
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

    def add_failures(self, count: int, failure: Failure) -> None:
        """Make the next ``count`` created tasks fail as ``failure`` says."""
        with self.lock:
            self.failures.extend([failure] * count)

    def force_complete(self, task_id: str) -> TaskEntry:
        """Finish ``task_id`` now. Raises ``KeyError`` for an unknown id."""
        with self.lock:
            entry = self.tasks[task_id]
            if entry.forced_at is None and not entry.is_done(time.monotonic()):
                entry.forced_at = time.time()
            return entry

    def task_record(self, task_id: str) -> dict[str, Any] | None:
        """Return the task record as ``/nano-banana/tasks`` does (a fresh copy), or ``None``."""
        opts = self.options()
        with self.lock:
            entry = self.tasks.get(task_id)
            return None if entry is None else self._record(entry, time.monotonic(), opts)

    def all_records(self) -> dict[str, dict[str, Any]]:
        """Every task record by id (fresh copies)."""
        opts = self.options()
        now = time.monotonic()
        with self.lock:
            return {tid: self._record(e, now, opts) for tid, e in self.tasks.items()}

    def _record(self, entry: TaskEntry, now_mono: float, opts: RecordOptions) -> dict[str, Any]:
        request = copy.deepcopy(entry.request)
        if opts.padding > 0:
            request[PADDING_FIELD] = _padding(opts.padding)
        record: dict[str, Any] = {
            "_id": entry.store_id,  # the Tasks API guide's records carry a 24-hex store id
            "id": entry.id,
            "created_at": entry.created_at,
            "request": request,
            "trace_id": entry.trace_id,
            "type": "images",
            **self.account,
        }
        failure = entry.failure
        done = entry.is_done(now_mono)
        if opts.state_words or (done and failure is not None and failure.state_only):
            state = "running" if not done else "failed" if failure else "succeeded"
            record["state"] = state
        if done:
            finished = (
                entry.forced_at
                if entry.forced_at is not None
                else entry.created_at + entry.duration
            )
            if failure is None or not failure.state_only:
                record["response"] = entry.response(opts.error_shape)
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
            return entry.callback_url, entry.response(self.options().error_shape)
