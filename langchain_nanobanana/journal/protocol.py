"""The write-ahead protocol around one paid submission, written once for every store.

A client calls :func:`submit_once` with the step that sends the request; it never calls
``begin``/``submitted``/``release``/``interrupted`` itself. What the key becomes when the send
step fails is read from the error's facts (``billed``, ``task_id``), never from a list of
classes:

=======================================  ==============================================
the send step ...                        the key becomes
=======================================  ==============================================
returns an answer with a ``task_id``     ``submitted`` (a final answer: ``succeeded``)
raises an error with ``billed == "no"``  free (released): the next call submits
raises an error naming a ``task_id``     ``submitted``: the next call polls that task
raises anything else                     uncertain (interrupted): maybe billed
=======================================  ==============================================

A journal write that fails after the request was sent raises
:class:`~langchain_nanobanana.journal.errors.JournalWriteError`: it names the paid task, carries
``billed="yes"`` (``"maybe"`` without an id) and is logged at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from langchain_nanobanana.errors import NanoBananaError
from langchain_nanobanana.journal._records import Decision
from langchain_nanobanana.journal.errors import JournalError, JournalWriteError
from langchain_nanobanana.journal.machine import KeyStore

__all__ = ["record_outcome", "submit_once"]

logger = logging.getLogger(__name__)


class Answer(Protocol):
    """What the send step returns (an ``ImageResult``; the journal does not import it, so it
    stays below the results and the client).
    """

    @property
    def status(self) -> str: ...
    @property
    def task_id(self) -> str | None: ...
    @property
    def trace_id(self) -> str | None: ...


R = TypeVar("R", bound=Answer)


def submit_once(
    journal: KeyStore,
    scope: str,
    key: str,
    identity: str,
    send: Callable[[], R],
    *,
    resubmit_uncertain: bool = False,
    retry_failed: bool = False,
    busy_wait: float | None = None,
) -> Decision | R:
    """Send a keyed submission at most once: ``send()`` runs only when the journal reserves
    the key for this caller, and its outcome is recorded before this returns.

    Args:
        journal: The journal (SQLite or PostgreSQL).
        scope: The client's normalised base URL.
        key: The idempotency key.
        identity: :func:`~langchain_nanobanana.journal.request_identity` of the request.
        send: The step that POSTs the request and reads its answer (an ``ImageResult``:
            ``pending`` with a ``task_id``, or final in sync mode).
        resubmit_uncertain, retry_failed: See ``KeyStore.begin``.
        busy_wait: Seconds to wait for another live owner of the key (``KeyStore.begin``'s
            ``wait``; ``None``: its default, 600 s); ``0`` raises ``IdempotencyKeyBusyError``
            at once, so a worker can take another row meanwhile.

    Returns:
        The :class:`Decision` when nothing was sent (``"done"``: ``decision.result``;
        ``"poll"``: ``decision.task_id``), else what ``send()`` returned.

    Raises:
        Whatever ``send()`` raised (after the key was settled from its facts); the errors of
        ``KeyStore.begin``; :class:`JournalError` for an entry that records neither a result
        nor a task; :class:`JournalWriteError` when the outcome of a sent request could not
        be recorded.

    """
    waiting = {} if busy_wait is None else {"wait": busy_wait}
    decision = journal.begin(
        scope,
        key,
        identity,
        resubmit_uncertain=resubmit_uncertain,
        retry_failed=retry_failed,
        **waiting,
    )
    if decision.kind != "submit":
        if not (decision.result or decision.task_id):
            raise JournalError(  # a broken entry: never pay again on its strength
                f"Journal entry for key {key!r} says {decision.kind!r} but records no "
                "result or task_id; settle it with `nanobanana journal resolve/forget`",
                path=journal.path,
            )
        return decision
    try:
        answer = send()
    except NanoBananaError as exc:  # the error's facts decide what the key becomes
        if exc.billed == "no":
            _quietly(journal.release, scope, key, exc)  # no task can exist
        elif exc.task_id:
            task_id, trace_id = exc.task_id, exc.trace_id
            _paid(
                journal,
                key,
                task_id,
                trace_id,
                exc.billed,
                exc,
                lambda: journal.submitted(scope, key, task_id, trace_id),
            )
        else:
            _paid(journal, key, None, None, "maybe", exc, lambda: journal.interrupted(scope, key))
        raise
    except BaseException as exc:
        _paid(journal, key, None, None, "maybe", exc, lambda: journal.interrupted(scope, key))
        raise
    if answer.task_id:
        _paid(
            journal,
            key,
            answer.task_id,
            answer.trace_id,
            "yes",
            None,
            lambda: journal.record(scope, answer.task_id or "", answer, key=key),
        )
    return answer


def _quietly(step: Callable[[str, str], None], scope: str, key: str, exc: BaseException) -> None:
    try:
        step(scope, key)
    except JournalError as write:
        logger.warning("journal key %r could not be freed (%s); raising %r", key, write, exc)


def _paid(
    journal: KeyStore,
    key: str,
    task_id: str | None,
    trace_id: str | None,
    billed: Any,
    cause: BaseException | None,
    write: Callable[[], object],
) -> None:
    """Run a journal write after the request was sent; its failure is a WARNING and a
    :class:`JournalWriteError` naming the paid task (never the store's bare error).
    """
    try:
        write()
    except JournalError as exc:
        error = JournalWriteError(
            key=key,
            task_id=task_id,
            trace_id=trace_id,
            reason=exc.message,
            billed="yes" if task_id else billed,
            path=journal.path,
        )
        logger.warning("%s", error.message)
        if cause is not None:
            error.__cause__ = cause
            raise error from cause
        raise error from None


def record_outcome(
    journal: KeyStore, scope: str, task_id: str, outcome: Any, *, key: str | None = None
) -> None:
    """Record how a task that a key names ended (an ``ImageResult`` or the error the wait ended
    with), in one transaction (``KeyStore.record``: the key is found by ``task_id`` unless
    given). A task no key names, a timeout and a read error record nothing (the key stays
    ``submitted``: the next call polls). Never raises: the outcome was paid for, so a journal
    that cannot be read or written is a WARNING (the key stays ``submitted`` and the next call
    polls the task again), not an exception in place of the result.
    """
    try:
        journal.record(scope, task_id, outcome, key=key)
    except JournalError as exc:
        logger.warning(
            "journal could not record the outcome of task %s (%s); the key stays submitted",
            task_id,
            exc.message,
        )
