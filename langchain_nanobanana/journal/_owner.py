"""Owner liveness on one machine: process identity (pid, start time, host), this process's own
reservations, and whether a pid that reserved a key still runs.
"""

from __future__ import annotations

import logging
import os
import platform
import sqlite3
import threading
from typing import Any

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Process identity and in-process reservations


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


_BOOT_ID = (_read_text("/proc/sys/kernel/random/boot_id") or "").strip() or None
_HOST = platform.node() or None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state letter, start time in clock ticks since boot)`` from ``/proc/<pid>/stat``."""
    text = _read_text(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and ')'
    if len(fields) < 20:
        return None
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


def _start_marker(pid: int) -> str | None:
    stat = _proc_stat(pid)
    if stat is None or _BOOT_ID is None:
        return None
    return f"{_BOOT_ID}:{stat[1]}"


_OWN: dict[int, str | None] = {}


def _own_start() -> str | None:
    pid = os.getpid()
    if pid not in _OWN:
        _OWN[pid] = _start_marker(pid)
    return _OWN[pid]


# Reservations made by this process and not yet settled: (realpath, scope, key) -> identity.
_HELD: dict[tuple[str, str, str], str] = {}
_HELD_LOCK = threading.Lock()
# Connections inherited through fork: never used nor closed in the child (SQLite forbids both).
_INHERITED: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def pid_alive(entry: Any, held_here: bool) -> bool | None:
    """Whether the process that reserved ``entry`` (an ``Entry`` of this machine) still runs:
    ``True`` alive, ``False`` dead (or interrupted: pid 0), ``None`` cannot tell.

    ``held_here``: for a row of this very process, whether a caller still holds the reservation
    (a row of this pid that no caller holds was orphaned: dead). A pid is compared with its
    start time (Linux ``/proc``), so a recycled pid is not mistaken for the owner; a zombie
    counts as dead.
    """
    pid = entry.owner_pid
    if not pid or pid <= 0:
        return False
    if pid == os.getpid():
        own = _own_start()
        if entry.owner_start and own and entry.owner_start != own:
            return False  # an earlier process that had our pid
        return held_here
    if os.name != "posix":
        return None  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return None
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc (macOS, BSD): the pid exists
    if stat[0] in ("Z", "X", "x"):
        return False  # killed, not yet reaped
    marker = _start_marker(pid)
    return not (entry.owner_start and marker and entry.owner_start != marker)
