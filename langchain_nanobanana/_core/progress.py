"""The ``nano_banana_progress`` event: its name and payload (pure; no I/O, no LangChain).

The poll state (:mod:`langchain_nanobanana._core.polling`) builds the payload after each round;
:mod:`langchain_nanobanana.progress` dispatches it as a LangChain custom event and draws it.
Payload (stable): ``round`` (int), ``elapsed`` (seconds, float), ``tasks`` ({task_id: status}),
``pending``, ``succeeded``, ``failed`` (counts).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Literal, TypedDict

__all__ = ["PROGRESS_EVENT", "ProgressPayload", "TaskStatus", "progress_event"]

#: Name of the custom event dispatched after each poll round.
PROGRESS_EVENT = "nano_banana_progress"

#: Status of one task in a progress event.
TaskStatus = Literal["pending", "succeeded", "failed"]

_STATUSES: tuple[TaskStatus, ...] = ("pending", "succeeded", "failed")


class ProgressPayload(TypedDict):
    """The ``nano_banana_progress`` event payload (see the module docstring)."""

    round: int
    elapsed: float
    tasks: dict[str, TaskStatus]
    pending: int
    succeeded: int
    failed: int


def progress_event(round: int, elapsed: float, statuses: Mapping[str, str]) -> ProgressPayload:
    """Build the ``nano_banana_progress`` payload from the status of every task being waited on.

    Args:
        round: Poll rounds made so far by this run (``int >= 0``; the first event has 1).
        elapsed: Seconds since the run started waiting (``>= 0``); rounded to 3 decimals.
        statuses: ``{task_id: "pending" | "succeeded" | "failed"}`` for every task of the run
            (copied; insertion order kept).

    Returns:
        ``{"round", "elapsed", "tasks", "pending", "succeeded", "failed"}``, counts from
        ``statuses``.

    Raises:
        ValueError: A negative ``round`` or ``elapsed``, or a status outside the three above
            (the message names the task and the allowed values).

    """
    if isinstance(round, bool) or not isinstance(round, int) or round < 0:
        raise ValueError(f"round must be an int >= 0, got {round!r}")
    if not elapsed >= 0:  # also refuses NaN
        raise ValueError(f"elapsed must be a number of seconds >= 0, got {elapsed!r}")
    counts = dict.fromkeys(_STATUSES, 0)
    tasks: dict[str, TaskStatus] = {}
    for task_id, status in statuses.items():
        if status not in counts:
            raise ValueError(
                f"task {task_id!r} has status {status!r}; allowed: {', '.join(_STATUSES)}"
            )
        counts[status] += 1
        tasks[task_id] = status
    return {
        "round": round,
        "elapsed": builtins.round(float(elapsed), 3),
        "tasks": tasks,
        "pending": counts["pending"],
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
    }
