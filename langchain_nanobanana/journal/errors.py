"""The journal's errors: all ``NanoBananaError``; an uncertain key is a
``SubmissionUncertainError`` (its name says "key": the key is uncertain, found by the journal
without sending anything).
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_nanobanana.errors import (
    Billed,
    ConfigurationError,
    NanoBananaError,
    RowStatus,
    SubmissionUncertainError,
)
from langchain_nanobanana.journal._common import _SHORT

__all__ = [
    "IdempotencyKeyBusyError",
    "IdempotencyKeyMismatchError",
    "JournalError",
    "JournalHostMismatchError",
    "JournalWriteError",
    "UncertainKeyError",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Errors


class JournalError(NanoBananaError):
    """The journal cannot be used: not a journal, another schema version, a corrupted or locked
    file, a closed journal, or a wrong argument. Nothing was sent to the API (an instance raised
    after a paid submission says so and carries ``billed="yes"`` and the ``task_id``).

    Attributes:
        message: What went wrong and what to do (also ``str(error)``).
        path: The journal file, when known.

    """

    billed: Billed = "no"
    retryable = False
    model_fixable = False
    exit_code = 2

    path: str | None = None

    def __init__(self, message: str, *, path: str | None = None, **fields: Any) -> None:
        super().__init__(message, path=path, **fields)


class IdempotencyKeyMismatchError(JournalError):
    """The key already names another request (another identity): a key names one request.

    Never answered with the old result and never resubmitted: nothing was sent.

    Attributes:
        scope: The key's scope (the client's normalised base URL).
        key: The idempotency key.
        stored_identity: Identity (sha256 hex) recorded with the key.
        identity: Identity of the request that was refused.
        task_id: The recorded task of the key, if any (it was paid for).

    """

    row_status: RowStatus = "invalid"
    scope: str = ""
    key: str = ""
    stored_identity: str = ""
    identity: str = ""

    def __init__(
        self,
        *,
        scope: str,
        key: str,
        stored_identity: str,
        identity: str,
        task_id: str | None = None,
        path: str | None = None,
    ) -> None:
        paid = f" (its task {task_id} was paid for)" if task_id else ""
        message = (
            f"Idempotency key {key!r} already names another request: recorded identity "
            f"{stored_identity[:_SHORT]}..., this request {identity[:_SHORT]}... (scope {scope}). "
            f"Nothing was sent. A key names one request: use a new key, or discard the old "
            f"record{paid} with `nanobanana journal forget {key}`."
        )
        super().__init__(
            message,
            path=path,
            scope=scope,
            key=key,
            stored_identity=stored_identity,
            identity=identity,
            task_id=task_id,
        )


class IdempotencyKeyBusyError(JournalError):
    """Another live caller holds the key's reservation and recorded no outcome within ``wait``
    seconds. Nothing was sent by this caller; try again later.

    Attributes:
        scope, key: The key.
        owner_pid: The pid holding the reservation (int, or ``None``).
        owner_host: The host it runs on, as recorded.
        waited: Seconds this caller waited (float).

    """

    retryable = True
    scope: str = ""
    key: str = ""
    owner_pid: int | None = None
    owner_host: str | None = None
    waited: float = 0.0

    def __init__(
        self,
        *,
        scope: str,
        key: str,
        owner_pid: int | None,
        owner_host: str | None,
        waited: float,
        path: str | None = None,
    ) -> None:
        message = (
            f"Idempotency key {key!r} is being submitted by another caller (pid {owner_pid} on "
            f"{owner_host or 'an unknown host'}) and no outcome was recorded within "
            f"{waited:.1f} s. Nothing was sent by this call; try again later. If that process "
            f"is gone, settle the key with `nanobanana journal resolve {key} --task-id ID` "
            f"or `nanobanana journal forget {key}`."
        )
        super().__init__(
            message,
            path=path,
            scope=scope,
            key=key,
            owner_pid=owner_pid,
            owner_host=owner_host,
            waited=waited,
        )


class UncertainKeyError(SubmissionUncertainError):
    """Maybe billed: the key's submission was in flight when its owner died or was interrupted
    before an answer, so a task may exist (and be billed) whose ``task_id`` was never recorded.

    A :class:`~langchain_nanobanana.errors.SubmissionUncertainError`, raised by
    :meth:`Journal.begin` without sending anything. Settle it by hand — look the task up (vendor
    console, callback), then ``nanobanana journal resolve KEY --task-id ID`` if it ran, or
    ``nanobanana journal forget KEY`` if it did not — or pass ``resubmit_uncertain=True`` to
    submit again (which may pay twice).

    Attributes:
        scope: The key's scope (the client's normalised base URL).
        key: The idempotency key.
        owner_pid: The pid that reserved the key (``None``/0 when it was interrupted in-process).
        task_ids: Always ``[]``: no task id is known, that is the point.

    """

    scope: str = ""
    key: str = ""
    owner_pid: int | None = None
    path: str | None = None

    hint = ""

    def __init__(
        self, *, scope: str, key: str, owner_pid: int | None, reason: str, path: str | None = None
    ) -> None:
        message = (
            f"Submission for idempotency key {key!r} is uncertain: {reason}, before an answer "
            f"arrived, so it may have been billed without a recorded task_id (scope {scope}). "
            f"Nothing was sent now. Look the task up, then settle the key with "
            f"`nanobanana journal resolve {key} --task-id ID` (it ran) or "
            f"`nanobanana journal forget {key}` (it did not), or pass resubmit_uncertain=True "
            f"to submit again (may pay twice)."
        )
        super().__init__(message, scope=scope, key=key, owner_pid=owner_pid, path=path)


class JournalHostMismatchError(JournalError, ConfigurationError):
    """The journal holds keys recorded for another API host (normalised base URL) than the
    client's: refused when the client opens it, before any request, so that a re-run against
    another host never pays again silently for keys paid elsewhere.

    A configuration error (exit 3 in the command line). Nothing was sent.

    Attributes:
        bound: A host (base URL) the journal holds keys for.
        scope: The client's base URL.

    """

    exit_code = 3
    bound: str = ""
    scope: str = ""

    def __init__(self, *, bound: str, scope: str, path: str | None = None) -> None:
        message = (
            f"journal {path} holds idempotency keys for {bound}, but this client sends to "
            f"{scope}. Nothing was sent. Use the journal with the host it was written for "
            f"(ACEDATACLOUD_API_BASE_URL / --base-url {bound}), or another journal for {scope}"
        )
        super().__init__(message, path=path, bound=bound, scope=scope)


class JournalWriteError(JournalError):
    """A journal write failed after the paid submission was sent (a full disk, a lost
    database connection): the task exists — it was PAID — but the journal may not record it.

    ``task_id`` names the task when the answer carried it (``billed="yes"``); when the answer
    itself was lost too the instance carries ``billed="maybe"`` and no id. Logged at WARNING
    where raised. Record the task by hand once the journal is writable again: ``nanobanana
    journal resolve KEY --task-id ID``. Keep the journal: a fresh one would forget the keys
    already paid for.

    Attributes:
        key: The idempotency key.
        task_id: The paid task (``None`` when unknown).

    """

    billed: Billed = "yes"
    row_status: RowStatus = "pending"
    exit_code = 1
    key: str = ""

    def __init__(
        self,
        *,
        key: str,
        task_id: str | None,
        trace_id: str | None,
        reason: str,
        billed: Billed,
        path: str | None = None,
    ) -> None:
        if task_id:
            what = f"task {task_id} was PAID for, but the journal could not record it"
            fix = f"`nanobanana journal resolve {key} --task-id {task_id}`"
        else:
            what = "the submission may have been PAID for (no answer arrived), and the journal "
            what += "could not mark the key uncertain"
            fix = f"`nanobanana journal resolve {key} --task-id ID` once you find the task"
        message = (
            f"Idempotency key {key!r}: {what} ({reason}). Do not submit it again, and keep this "
            f"journal (a fresh one would forget every key already paid for); when it is "
            f"writable again record the task with {fix}"
        )
        super().__init__(
            message, path=path, key=key, task_id=task_id, trace_id=trace_id, billed=billed
        )
