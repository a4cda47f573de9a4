"""Child-process bodies for the journal's multi-process tests (``test_journal.py``).

They run in real separate processes (``multiprocessing`` with ``forkserver`` or ``spawn``), so the
journal is exercised through SQLite's file locks and the pid/start-time liveness check, exactly as
two Python processes sharing one journal file would.
"""

from __future__ import annotations

import os
import time
from typing import Any

from langchain_nanobanana.journal import Journal

SCOPE = "https://api.acedata.cloud"
IDENTITY = "a" * 64


def race(path: str, rounds: int, barrier: Any, results: Any, hold: float) -> None:
    """Race a sibling on keys ``k0..k{rounds-1}``: both call ``begin`` at the same moment (a
    shared barrier); the winner holds the reservation ``hold`` seconds, then records a task
    (even rounds) or a result (odd rounds). Puts ``(round, pid, kind, task_id)`` on ``results``.

    The journal file is opened by both processes at once, so its creation races too.
    """
    barrier.wait(timeout=60)
    with Journal(path) as journal:
        for i in range(rounds):
            key = f"k{i}"
            barrier.wait(timeout=60)
            decision = journal.begin(SCOPE, key, IDENTITY, wait=30)
            task_id = decision.task_id
            if decision.kind == "submit":
                task_id = f"task-{os.getpid()}-{i}"
                time.sleep(hold)
                if i % 2 == 0:
                    journal.submitted(SCOPE, key, task_id, "trace")
                else:
                    journal.succeeded(SCOPE, key, {"status": "succeeded", "task_id": task_id})
            elif decision.kind == "done":
                assert decision.result is not None
                task_id = decision.result["task_id"]
            results.put((i, os.getpid(), decision.kind, task_id))


def reserve(path: str, plan: dict[str, str], ready: Any, go: Any) -> None:
    """Reserve every key of ``plan``, set ``ready``, wait for ``go``, then settle each key as
    its plan says, in order.

    Plans: ``"submitted"``, ``"succeeded"``, ``"failed"``, ``"release"``, ``"interrupted"``
    (record that outcome); ``"exit"`` (record nothing: the process ends after the other keys,
    as a crash would); ``"hang"`` (record nothing and sleep until killed).
    """
    journal = Journal(path)
    for key in plan:
        decision = journal.begin(SCOPE, key, IDENTITY, wait=0)
        assert decision.kind == "submit", decision
    ready.set()
    if "hang" in plan.values():
        time.sleep(3600)
    assert go.wait(60)
    for key, then in plan.items():
        if then == "submitted":
            journal.submitted(SCOPE, key, "task-child", "trace-child")
        elif then == "succeeded":
            journal.succeeded(
                SCOPE, key, {"status": "succeeded", "task_id": "task-child"}, files=["out/a.png"]
            )
        elif then == "failed":
            journal.failed(
                SCOPE, key, code="bad", message="no", task_id="task-child", trace_id="trace-child"
            )
        elif then == "release":
            journal.release(SCOPE, key)
        elif then == "interrupted":
            journal.interrupted(SCOPE, key)
    if "exit" in plan.values():
        os._exit(0)  # no close(), no outcome: the process simply ends
    journal.close()
