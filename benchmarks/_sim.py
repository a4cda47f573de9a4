"""The simulator in a child process, so that its request handling never competes with the code
under measurement for the GIL (the benchmark machine may have only two cores: one each).

:class:`SimProcess` starts ``FakeNanoBananaServer`` in a ``spawn``-ed process and talks to it over a
``multiprocessing`` pipe: set knobs, count requests per path, count accepted TCP connections, read
task records. Optionally a *completer* thread in the child finishes each task at the time its prompt
asks for (``"... [duration=1.25]"``), so one batch can mix task durations.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["DURATION_TAG", "SimProcess", "with_duration"]

DURATION_TAG = re.compile(r"\[duration=([0-9.]+)\]")


def with_duration(prompt: str, seconds: float) -> str:
    """``prompt`` tagged so that the completer finishes its task after ``seconds``."""
    return f"{prompt} [duration={seconds:.3f}]"


def _completer(sim: Any, stop: threading.Event) -> None:
    """Finish every task whose prompt carries a duration tag once that many seconds have passed."""
    done: set[str] = set()
    while not stop.wait(0.002):
        now = time.time()
        for task_id, record in sim.tasks.items():
            if task_id in done:
                continue
            match = DURATION_TAG.search(str(record.get("request", {}).get("prompt", "")))
            if match and now >= record["created_at"] + float(match.group(1)):
                sim.complete_task(task_id)
                done.add(task_id)


def _serve(conn: Connection, token: str) -> None:
    from langchain_nanobanana.testing import FakeNanoBananaServer

    sim = FakeNanoBananaServer(token=token).start()
    stop = threading.Event()
    conn.send(sim.base_url)
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            if command == "set":
                setattr(sim, args[0], args[1])
                conn.send(None)
            elif command == "count":
                conn.send(len(sim.requests_to(args[0])))
            elif command == "connections":
                conn.send(sim.connections_accepted)
            elif command == "span":
                times = [r.time for r in sim.requests if r.path.startswith("/nano-banana/")]
                conn.send(max(times) - min(times) if times else 0.0)
            elif command == "times":
                conn.send([(r.time, r.path) for r in sim.requests if r.path.startswith("/nano")])
            elif command == "first_last":
                times = [r.time for r in sim.requests if r.path.startswith("/nano-banana/")]
                conn.send((min(times), max(times)) if times else (0.0, 0.0))
            elif command == "rate_limited":
                conn.send(sim.rate_limited)
            elif command == "clear":
                sim.clear_requests()
                conn.send(None)
            elif command == "tasks":
                conn.send(sim.tasks)
            elif command == "completer":
                threading.Thread(target=_completer, args=(sim, stop), daemon=True).start()
                conn.send(None)
            else:
                conn.send(ValueError(f"unknown command {command!r}"))
    finally:
        stop.set()
        sim.stop()
        conn.close()


class SimProcess:
    """``FakeNanoBananaServer`` running in a child process (context manager).

    Attributes:
        base_url: The simulator's base URL (``http://127.0.0.1:PORT``).
        token: The accepted bearer token.

    """

    def __init__(self, token: str = "bench-token") -> None:
        self.token = token
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, token), daemon=True)
        self._proc.start()
        child.close()
        self.base_url: str = self._conn.recv()

    def _call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def set(self, name: str, value: Any) -> None:
        """Set a simulator knob (``task_duration``, ``submit_latency``, ``rate_limit``)."""
        self._call("set", name, value)

    def count(self, path: str) -> int:
        """Requests received on ``path`` since the last :meth:`clear`."""
        return int(self._call("count", path))

    def connections(self) -> int:
        """TCP connections accepted since start."""
        return int(self._call("connections"))

    def span(self) -> float:
        """Seconds from the first to the last API request received (simulator clock)."""
        return float(self._call("span"))

    def first_last(self) -> tuple[float, float]:
        """``time.monotonic()`` (the machine's clock: comparable with this process's) of the
        first and the last API request received.
        """
        first, last = self._call("first_last")
        return float(first), float(last)

    def rate_limited(self) -> int:
        """API requests the simulator's ``rate_limit`` answered 429 since start."""
        return int(self._call("rate_limited"))

    def clear(self) -> None:
        """Forget the request log."""
        self._call("clear")

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every task record by id, as ``retrieve`` returns it now."""
        return dict(self._call("tasks"))

    def start_completer(self) -> None:
        """Finish tasks at the duration tagged in their prompt (see :func:`with_duration`)."""
        self._call("completer")

    def close(self) -> None:
        """Stop the simulator and its process."""
        if self._proc.is_alive():
            self._conn.send(("stop", ()))
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
