"""The journal's errors: all ``NanoBananaError``; an uncertain key is a
``SubmissionUncertainError`` (its name says "key": the key is uncertain, found by the journal
without sending anything).
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_nanobanana.errors import (
    Billed,
    NanoBananaError,
    RowStatus,
    SubmissionUncertainError,
)
from langchain_nanobanana.journal._common import _SHORT

__all__ = [
    "IdempotencyKeyBusyError",
    "IdempotencyKeyMismatchError",
    "JournalError",
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
