"""Constants and types shared by the journal's modules (schema version, states, defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["REQUEST_DEFAULTS", "SCHEMA_VERSION"]

#: Version of the file layout (table ``meta``, row ``schema_version``). A file of another version
#: is refused with :class:`JournalError`, never read or migrated silently.
SCHEMA_VERSION = 1

#: Value of the ``meta`` row ``format``: tells a journal from any other SQLite file.
_FORMAT = "langchain_nanobanana.journal"

#: The documented defaults of ``POST /nano-banana/images`` (Nano Banana Images API reference,
#: https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d), filled into a
#: request body before its identity is computed, so that leaving a field out and sending its default
#: name the same request.
REQUEST_DEFAULTS: Mapping[str, Any] = {
    "model": "nano-banana",
    "aspect_ratio": "1:1",
    "resolution": "1K",
    "count": 1,
}

#: Body fields that change how the answer is delivered, not what is generated (and paid).
_DELIVERY_FIELDS = frozenset({"async", "callback_url"})

State = Literal["reserved", "submitted", "succeeded", "failed"]
DecisionKind = Literal["submit", "poll", "done"]
OwnerStatus = Literal["in_flight", "uncertain", "submitted", "succeeded", "failed"]

_STATES: tuple[State, ...] = ("reserved", "submitted", "succeeded", "failed")
_WAIT_STEP = 0.05  # seconds between two looks at a key reserved by a live owner
_SHORT = 12  # hex characters of an identity shown in messages
