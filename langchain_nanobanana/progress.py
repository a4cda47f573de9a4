"""Progress of waiting image tasks: the ``nano_banana_progress`` event and ``ProgressBar``.

The tools and ``NanoBananaImageGenerator`` dispatch the custom event :data:`PROGRESS_EVENT`
(``"nano_banana_progress"``) after every poll round while they wait for tasks. It reaches callback
handlers (``on_custom_event``), ``astream_events`` (``event == "on_custom_event"``) and LangGraph
``stream_mode="custom"``.

The payload is stable (build it with :func:`progress_event`, the one place that defines it)::

    {
        "round": 3,  # int >= 1: poll rounds this run has made so far
        "elapsed": 8.0,  # float, seconds since this run started waiting (3 decimals)
        "tasks": {"<task_id>": "pending"},  # every task: "pending" | "succeeded" | "failed"
        "pending": 1,  # int: tasks still running
        "succeeded": 0,  # int: tasks done with images
        "failed": 0,  # int: tasks that ended without images
    }

``pending + succeeded + failed == len(tasks)``. Each event lists *all* tasks of the run, not only
the ones that changed in that round.

:class:`ProgressBar` draws those events: a ``tqdm.auto`` bar (terminal and notebook) when
``tqdm`` is installed (``pip install 'langchain-nanobanana[progress]'``), plain lines otherwise.

.. code-block:: python

    from langchain_nanobanana import NanoBananaImageGenerator
    from langchain_nanobanana.progress import ProgressBar

    with ProgressBar() as bar:
        results = NanoBananaImageGenerator().batch(prompts, config={"callbacks": [bar]})

Importing this module does not import ``tqdm``; a ``ProgressBar`` imports it when built.

Used as a context manager, a ``tqdm`` bar shares the terminal with your own output: while the
``with`` block runs, ``print`` to ``sys.stdout`` and log records of console handlers are written
above the bar (the bar is cleared, the line written, the bar redrawn), never glued to it. The rate
tqdm shows is tasks finished per second of real time since the first run started waiting.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "PROGRESS_EVENT",
    "ProgressBar",
    "ProgressPayload",
    "TaskStatus",
    "dispatcher",
    "progress_event",
]

from langchain_nanobanana._core.progress import (
    PROGRESS_EVENT,
    ProgressPayload,
    TaskStatus,
    progress_event,
)

_STATUSES: tuple[TaskStatus, ...] = ("pending", "succeeded", "failed")
_DONE = frozenset({"succeeded", "failed"})

#: Plain-line mode prints a line when the counts change, and otherwise at most one line per this
#: many seconds of reported ``elapsed`` (a heartbeat while nothing changes).
_HEARTBEAT_S = 30.0


def _load_tqdm(use_tqdm: bool | None) -> Any:
    """``tqdm.auto.tqdm``, or ``None`` for plain lines (see ``ProgressBar(use_tqdm=...)``)."""
    if use_tqdm is False:
        return None
    try:
        # Through importlib: tqdm ships no type stubs, and the bar is used as ``Any`` anyway.
        module = importlib.import_module("tqdm.auto")
    except ImportError as exc:
        if use_tqdm:
            raise ImportError(
                "ProgressBar(use_tqdm=True) needs tqdm: "
                "pip install 'langchain-nanobanana[progress]'"
            ) from exc
        return None
    return module.tqdm


class ProgressBar(BaseCallbackHandler):
    """A callback handler that draws the ``nano_banana_progress`` events as one progress bar.

    Pass it in a run's callbacks (``config={"callbacks": [bar]}``, an agent's or a chain's); it
    reacts only to :data:`PROGRESS_EVENT`. Events of several runs (a ``batch``, several tools
    called in parallel, several agents) add up in one bar, keyed by ``task_id``: the total is the
    number of distinct tasks seen, the count done is those ``"succeeded"`` or ``"failed"`` (a task
    once done stays done, whatever a later event of another run says).

    With ``tqdm`` (``pip install 'langchain-nanobanana[progress]'``): a ``tqdm.auto`` bar — a
    text bar in a terminal, a widget in Jupyter — created at the first event, ``n`` = tasks done,
    ``total`` = tasks seen, postfix ``failed=<count>, waited=<seconds>s``, rate in tasks per
    second of real time (averaged from the moment the first run started waiting, not from the
    first event). Without it: one line per change to ``file``, e.g. ``nano-banana: 12/64 done
    (1 failed), 52 pending, 8.0 s``, each written whole in one call; while nothing changes at
    most one line per 30 s of reported wait; never more than one line per event (one event per
    poll round of a run).

    Your own output: inside ``with ProgressBar() as bar:`` a terminal ``tqdm`` bar takes over
    ``sys.stdout`` and the console handlers of the root logger (``redirect=True``), so ``print``
    and ``logging`` lines appear above the bar instead of glued to it; outside a ``with`` block
    call :meth:`write`. A notebook's widget bar needs none of this and is left alone.

    Works for sync and async runs: LangChain calls a sync handler's ``on_custom_event`` for async
    runs too; ``run_inline = True`` has it draw on the event loop's thread (a cheap write) so the
    events keep their order. Thread-safe (parallel tools dispatch from several threads).

    Args:
        file: Text stream to write to (default ``None``: ``sys.stderr`` at the time of writing).
            ``tqdm`` in a notebook draws a widget and ignores it.
        desc: Label in front of the bar or line (default ``"nano-banana"``).
        use_tqdm: ``None`` (default): ``tqdm.auto`` when ``tqdm`` is importable, else plain
            lines; ``True``: ``tqdm`` or ``ImportError``; ``False``: plain lines.
        leave: Keep the finished ``tqdm`` bar on screen after :meth:`close` (default ``True``);
            plain lines always stay.
        redirect: While used as a context manager with a terminal ``tqdm`` bar, route
            ``sys.stdout`` and the root logger's console handlers around the bar (default
            ``True``); ``False`` leaves them alone.

    Raises:
        ImportError: ``use_tqdm=True`` and ``tqdm`` is not installed (names the ``progress``
            extra).

    Close it (:meth:`close`, or use it as a context manager) when the runs are done; events after
    ``close()`` are ignored.

    .. code-block:: python

        with ProgressBar(use_tqdm=False) as bar:
            agent.invoke({"messages": [...]}, config={"callbacks": [bar]})
        # nano-banana: 0/2 done, 2 pending, 2.0 s
        # nano-banana: 2/2 done, 0 pending, 9.1 s

    """

    run_inline: bool = True

    def __init__(
        self,
        *,
        file: IO[str] | None = None,
        desc: str = "nano-banana",
        use_tqdm: bool | None = None,
        leave: bool = True,
        redirect: bool = True,
    ) -> None:
        self.file = file
        self.desc = desc
        self.leave = leave
        self.redirect = redirect
        self._redirects: contextlib.ExitStack | None = None
        self._start_t: float | None = None  # tqdm clock time at which the first run began
        self._tqdm_cls = _load_tqdm(use_tqdm)
        self._bar: Any = None
        self._lock = threading.Lock()
        self._tasks: dict[str, str] = {}
        self._elapsed = 0.0
        self._printed: tuple[int, int, int] | None = None  # (total, done, failed) of last line
        self._printed_elapsed = 0.0
        self._closed = False

    @property
    def uses_tqdm(self) -> bool:
        """Whether this bar draws with ``tqdm`` (else plain lines)."""
        return self._tqdm_cls is not None

    @property
    def tasks(self) -> dict[str, str]:
        """A copy of the aggregated ``{task_id: status}`` of every task seen so far."""
        with self._lock:
            return dict(self._tasks)

    @property
    def elapsed(self) -> float:
        """The longest wait reported by any run so far, in seconds (``0.0`` before any event)."""
        return self._elapsed

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Draw ``data`` when ``name`` is :data:`PROGRESS_EVENT`; ignore any other event."""
        if name == PROGRESS_EVENT:
            self.update(data)

    def update(self, payload: Mapping[str, Any]) -> None:
        """Merge one ``nano_banana_progress`` payload and redraw (no-op after :meth:`close`).

        For code that polls outside a LangChain run (a CLI, a script) and builds payloads with
        :func:`progress_event`.

        Args:
            payload: The event payload (see the module docstring); only ``tasks`` and
                ``elapsed`` are read.

        Raises:
            ValueError: ``payload`` has no ``tasks`` mapping or a non-numeric ``elapsed``.
                (Inside a run LangChain logs a handler's error as a warning; the run goes on.)

        """
        tasks = payload.get("tasks") if isinstance(payload, Mapping) else None
        if not isinstance(tasks, Mapping):
            raise ValueError(f"not a {PROGRESS_EVENT} payload (no 'tasks' mapping): {payload!r}")
        try:
            elapsed = float(payload.get("elapsed", 0.0))
        except (TypeError, ValueError):
            raise ValueError(f"'elapsed' must be seconds, got {payload.get('elapsed')!r}") from None
        with self._lock:
            if self._closed:
                return
            for task_id, status in tasks.items():
                if self._tasks.get(str(task_id)) in _DONE and status not in _DONE:
                    continue  # a stale "pending" from another run never undoes a result
                self._tasks[str(task_id)] = str(status)
            self._elapsed = max(self._elapsed, elapsed)
            if self._tqdm_cls is not None:
                self._draw_tqdm()
            else:
                self._draw_line()

    def _counts(self) -> tuple[int, int, int]:
        total = len(self._tasks)
        failed = sum(1 for status in self._tasks.values() if status == "failed")
        done = failed + sum(1 for status in self._tasks.values() if status == "succeeded")
        return total, done, failed

    def _draw_tqdm(self) -> None:
        total, done, failed = self._counts()
        bar = self._bar
        if bar is None:
            file = self.file if self.file is not None else sys.stderr
            if isinstance(file, _AroundBar):  # sys.stdout inside the block: draw on the real one
                file = file.target
            bar = self._bar = self._tqdm_cls(
                total=total,
                desc=self.desc,
                unit="task",
                file=file,
                leave=self.leave,
                smoothing=0,  # the rate is the average since start_t, not of the last update
            )
            # The first event comes after ``elapsed`` seconds of waiting: the clock starts then,
            # so the rate is tasks per second of real time, not per second since this event.
            self._start_t = bar.start_t - self._elapsed
            bar.start_t = self._start_t
        elif bar.total != total:
            # ``reset`` is tqdm's way to change the total (it also resizes the notebook widget);
            # it restarts tqdm's clock, which is put back.
            bar.reset(total=total)
            bar.start_t = self._start_t
        if done != bar.n:
            bar.update(done - bar.n)
        bar.set_postfix(failed=failed, waited=f"{self._elapsed:.1f}s", refresh=False)
        bar.refresh()

    def _draw_line(self) -> None:
        state = self._counts()
        changed = state != self._printed
        if not changed and self._elapsed - self._printed_elapsed < _HEARTBEAT_S:
            return
        total, done, failed = state
        failed_note = f" ({failed} failed)" if failed else ""
        line = (
            f"{self.desc}: {done}/{total} done{failed_note}, {total - done} pending, "
            f"{self._elapsed:.1f} s"
        )
        file = self.file if self.file is not None else sys.stderr
        file.write(line + "\n")  # one call: another thread's write cannot split the line
        file.flush()
        self._printed, self._printed_elapsed = state, self._elapsed

    def write(self, text: str, *, file: IO[str] | None = None) -> None:
        """Write ``text`` as a line of its own, above the bar (``tqdm``) or between lines.

        The ``tqdm`` bar is cleared, the text written and flushed, the bar redrawn, so the two never
        share a terminal line. Thread-safe.

        Args:
            text: The text; a newline is added unless it ends with one.
            file: Where to write (default ``None``: ``sys.stdout`` as it was before a ``with``
                block redirected it).

        """
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            self._write_locked(text, file)

    def _write_locked(self, text: str, file: IO[str] | None) -> None:
        target = file if file is not None else self._stdout()
        bar = self._bar
        if bar is not None:
            bar.clear()
        target.write(text)
        target.flush()
        if bar is not None:
            bar.refresh()

    def _stdout(self) -> IO[str]:
        stdout = sys.stdout
        return stdout.target if isinstance(stdout, _AroundBar) else stdout

    def _redirects_apply(self) -> bool:
        module = getattr(self._tqdm_cls, "__module__", "") or ""
        return (
            self.redirect and self._tqdm_cls is not None and not module.startswith("tqdm.notebook")
        )

    def close(self) -> None:
        """Finish the bar (``tqdm``: final redraw, kept if ``leave``); later events are ignored.

        Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            bar, self._bar = self._bar, None
            redirects, self._redirects = self._redirects, None
        if redirects is not None:
            redirects.close()  # before the bar closes: a last partial line is written first
        if bar is not None:
            bar.close()

    def __enter__(self) -> Self:
        if self._redirects_apply() and self._redirects is None:
            stack = contextlib.ExitStack()
            stack.enter_context(_stdout_around(self))
            logging_redirect = importlib.import_module("tqdm.contrib.logging")
            stack.enter_context(logging_redirect.logging_redirect_tqdm(tqdm_class=self._tqdm_cls))
            self._redirects = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _AroundBar(io.TextIOBase):
    """``sys.stdout`` inside a ``with ProgressBar()`` block: whole lines go through the bar's
    :meth:`ProgressBar.write` (cleared, written, redrawn); a partial line waits for its newline
    (or for the block's end).
    """

    def __init__(self, bar: ProgressBar, target: IO[str]) -> None:
        super().__init__()
        self.bar = bar
        self.target = target
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return self.target.isatty()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            head, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self.bar.write(head + newline, file=self.target)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def finish(self) -> None:
        with self._lock:
            rest, self._pending = self._pending, ""
        if rest:
            self.target.write(rest)
            self.target.flush()


@contextlib.contextmanager
def _stdout_around(bar: ProgressBar) -> Iterator[None]:
    wrapper = _AroundBar(bar, sys.stdout)
    sys.stdout = wrapper
    try:
        yield
    finally:
        if sys.stdout is wrapper:
            sys.stdout = wrapper.target
        wrapper.finish()


def dispatcher(run_manager: Any) -> Any:
    """A callback that dispatches one payload as :data:`PROGRESS_EVENT` on ``run_manager``'s run
    (what ``dispatch_custom_event`` does, without needing a config context), or ``None`` without
    a run manager. With an async run manager it returns the coroutine to await.
    """
    if run_manager is None:
        return None

    def dispatch(payload: ProgressPayload) -> Any:
        child = run_manager.get_child()
        return child.on_custom_event(PROGRESS_EVENT, payload, run_id=run_manager.run_id)

    return dispatch
