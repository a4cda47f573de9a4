"""Process identity (pid, start time, host) and this process's own reservations: who owns
a reserved key.
"""

from __future__ import annotations

import logging
import os
import platform
import sqlite3
import threading

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
