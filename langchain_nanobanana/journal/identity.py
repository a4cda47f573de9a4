"""Request identity: what an idempotency key must keep naming (sha256 of the canonical body)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from langchain_nanobanana.journal._common import _DELIVERY_FIELDS, REQUEST_DEFAULTS
from langchain_nanobanana.journal.errors import JournalError

__all__ = ["request_identity"]

# --------------------------------------------------------------------------------------------
# Request identity


def request_identity(payload: Mapping[str, Any]) -> str:
    """The identity of a request body: what a key must keep naming.

    The sha256 (64 lowercase hex characters) of the canonical JSON (``sort_keys=True``,
    ``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8) of ``payload`` with the documented
    defaults of :data:`REQUEST_DEFAULTS` filled in (``model`` ``"nano-banana"``, ``aspect_ratio``
    ``"1:1"``, ``resolution`` ``"1K"``, ``count`` 1), ``None`` values dropped, and the delivery
    fields ``async`` and ``callback_url`` removed. Images count by content: pass the body as
    sent, with local files already turned into data URIs (a data URI is its content). The order
    of ``image_urls`` matters.

    Args:
        payload: The JSON body of ``POST /nano-banana/images`` (a mapping of str to JSON values).

    Returns:
        The hex digest (str, 64 characters).

    Raises:
        JournalError: ``payload`` is not a mapping of JSON values (e.g. holds a ``Path``, NaN).

    """
    if not isinstance(payload, Mapping):
        raise JournalError(f"request_identity needs the JSON body as a mapping, got {payload!r}")
    body = {k: v for k, v in payload.items() if k not in _DELIVERY_FIELDS and v is not None}
    for name, default in REQUEST_DEFAULTS.items():
        body.setdefault(name, default)
    try:
        text = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise JournalError(f"request_identity needs a JSON body: {exc}") from None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
