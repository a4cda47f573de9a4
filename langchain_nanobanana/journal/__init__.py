"""A write-ahead journal of billable submissions: one SQLite file (standard library ``sqlite3``,
:class:`Journal`) on one machine, or a PostgreSQL database (psycopg 3, :class:`PostgresJournal`)
shared by workers on many machines. Both stores share one state machine
(:class:`~langchain_nanobanana.journal.machine.KeyStore`) and one protocol
(:func:`~langchain_nanobanana.journal.protocol.submit_once`, which the client runs around its
send step). Layout: ``_records`` (entries), ``_base`` (store primitives, held reservations, the
lease renewer), ``_manual`` (reading, settling by hand, host binding), ``machine`` (the key
states), ``protocol`` (around one send), ``_owner`` (pid liveness), ``_sqlite`` + ``store``
(SQLite), ``postgres`` (PostgreSQL).

The journal makes runs resumable and idempotent. Each submission carries an *idempotency key*,
scoped by the client's normalised base URL (``scope``). The key is recorded **before** the request
leaves, the ``task_id`` as soon as it is known, and the outcome (the result JSON and downloaded
files, or the failure) when the task ends. The same key again then costs at most a poll, and no
request at all once the task has finished. What the same key does next:

============================================  ==================================================
state of the key                              :meth:`Journal.begin` returns / raises
============================================  ==================================================
no entry                                      reserves it: ``Decision("submit")``
``reserved``, owner alive                     waits (polls the row every 50 ms, up to ``wait`` s)
                                              for the owner's outcome, then decides again; two
                                              racing callers pay once
``reserved``, owner dead or interrupted       :class:`UncertainKeyError` ("maybe billed");
                                              ``resubmit_uncertain=True`` takes the key over
``submitted`` (``task_id`` known)             ``Decision("poll")``: poll ``entry.task_id``
``succeeded``                                 ``Decision("done")``: ``entry.result``, no request
``failed`` (the task ran and failed)          :class:`~langchain_nanobanana.errors.TaskFailedError`
                                              again; ``retry_failed=True`` takes the key over
same key, another request identity            :class:`IdempotencyKeyMismatchError` (checked first)
============================================  ==================================================

The caller that got ``Decision("submit")`` owns the reservation and must record exactly one
outcome (this is the protocol the client follows):

========================================================  ==================================
what happened to the submission                           call
========================================================  ==================================
an answer with a ``task_id`` (async / callback mode)      :meth:`Journal.submitted`
a final answer with images (sync mode), or the task       :meth:`Journal.succeeded`
finished with images (``result``, downloaded ``files``)
the task ran and failed                                   :meth:`Journal.failed`
refused before any task existed: connection refused,      :meth:`Journal.release` (the key is
connect timeout, a 400/401/402/403/429 answer, local      freed: the next call submits)
validation
no answer: read timeout, connection dropped after         :meth:`Journal.interrupted` (the key
sending, a 5xx, an unreadable answer without task_id,     becomes *uncertain*)
``KeyboardInterrupt`` / ``CancelledError`` in flight
polling timed out (``TaskTimeoutError``)                  nothing: the key stays ``submitted``
                                                          and the next call polls again
========================================================  ==================================

A caller that got ``Decision("poll")`` records :meth:`Journal.succeeded` or
:meth:`Journal.failed` too when the task ends (several pollers may record the same task: the
first ``task_id`` recorded for a key is kept; a different one is logged at WARNING, never
dropped silently). :meth:`Journal.begin` blocks while it waits: from asyncio, run it in a thread.

Owner liveness (SQLite): the reservation records the owner's pid, its start time (Linux: boot id
and field 22 of ``/proc/<pid>/stat``, so a recycled pid is not mistaken for the owner; a zombie
counts as dead) and the host name. Inside one process a reservation counts as alive while the
caller that made it has not recorded an outcome. Elsewhere than Linux only the pid is compared
(other POSIX systems) or liveness cannot be checked at all (Windows: the waiter waits up to
``wait`` seconds and raises :class:`IdempotencyKeyBusyError`; settle by hand). A row written on
another host is judged by its *lease*: alive while its owner renewed it within ``lease`` seconds
(default 30), uncertain after.

Owner liveness (PostgreSQL): a lease only (owner id and expiry on the database server's clock,
renewed every ``lease / 3`` seconds by a background thread while the submission is in flight). A
lease that expired makes the key uncertain; a key with a recorded ``task_id`` is polled by
whichever worker gets to it.

Host binding: a client refuses a journal that holds keys for another API host (normalised base
URL) with :class:`JournalHostMismatchError`, before any request.

Durability and scope: the file is opened in WAL mode with ``synchronous=NORMAL``. A committed
record survives the process being killed (``kill -9``, a crash, Ctrl-C), because the WAL is
written to the operating system before the commit returns; it does **not** survive a power loss
or an operating-system crash, which may roll back the last few records (a lost reservation means
the next run submits that key again). Use the journal on one machine and a local file system
(WAL needs shared memory: not NFS/SMB). Threads of one process share one connection under a lock;
processes coordinate through SQLite's own locks (``busy_timeout`` = ``timeout``). Overhead
(``benchmarks/journal_bench.py``, ext4): about 0.1 ms for the three writes of one submission,
about 1 MiB of file per 1000 finished one-image entries.

A file that is not a journal, a journal written with another schema version, or a corrupted file
raises :class:`JournalError` with the path and what to do; nothing is ever submitted on the
strength of a journal that could not be read. A journal file deleted or replaced while open
(e.g. a copy made without its ``-wal`` file put in its place) is noticed at the next write and
refused with :class:`JournalError`. A journal write that fails after the request was sent (a full
disk) raises :class:`JournalWriteError` naming the paid task (WARNING); keep the journal and record
the task with ``nanobanana journal resolve``: a new journal would forget every paid key.

"""

import os

from langchain_nanobanana.journal._common import REQUEST_DEFAULTS, SCHEMA_VERSION
from langchain_nanobanana.journal._records import Decision, Entry
from langchain_nanobanana.journal.errors import (
    IdempotencyKeyBusyError,
    IdempotencyKeyMismatchError,
    JournalError,
    JournalHostMismatchError,
    JournalWriteError,
    UncertainKeyError,
)
from langchain_nanobanana.journal.identity import request_identity
from langchain_nanobanana.journal.machine import KeyStore
from langchain_nanobanana.journal.postgres import PostgresJournal, is_postgres_url
from langchain_nanobanana.journal.store import Journal

__all__ = [
    "REQUEST_DEFAULTS",
    "SCHEMA_VERSION",
    "Decision",
    "Entry",
    "IdempotencyKeyBusyError",
    "IdempotencyKeyMismatchError",
    "Journal",
    "JournalError",
    "JournalHostMismatchError",
    "JournalWriteError",
    "KeyStore",
    "PostgresJournal",
    "UncertainKeyError",
    "is_postgres_url",
    "open_journal",
    "request_identity",
]


def open_journal(spec: str | os.PathLike[str], **options: float) -> KeyStore:
    """Open the journal ``spec`` names: a ``postgresql://`` (or ``postgres://``) URL opens a
    :class:`PostgresJournal`, anything else is a SQLite file path (:class:`Journal`).

    Args:
        spec: The URL or path.
        options: Passed on (``lease``; ``timeout`` for SQLite, ``connect_timeout`` for
            PostgreSQL).

    Raises:
        JournalError: As the journal's constructor (before any request).

    """
    if is_postgres_url(spec):
        return PostgresJournal(str(spec), **options)
    return Journal(spec, **options)
