"""One HTTP answer as the transport read it, and the ``Retry-After`` header (pure; no I/O).

The transport builds an :class:`Answer`; :mod:`langchain_nanobanana._core.answers` classifies it.
``Retry-After``: RFC 9110, section 10.2.3 (delta-seconds or an HTTP-date).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["SNIPPET", "Answer", "opt_str", "parse_retry_after"]

#: Characters of a body quoted in messages.
SNIPPET = 200


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as the transport read it.

    Attributes:
        status: HTTP status code.
        headers: Header names lower-cased -> value (``Retry-After`` arrives in any case).
        body: The raw body bytes (already capped by the transport).
        url: The URL that answered (for messages; never carries the token).

    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` in any case, or ``None``."""
        return self.headers.get(name.lower())

    def snippet(self) -> str:
        """The first 200 characters of the body, decoded leniently."""
        return self.body[: SNIPPET * 4].decode("utf-8", "replace")[:SNIPPET]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP-date, RFC 9110 10.2.3), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None  # NaN, inf -> None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def opt_str(value: object) -> str | None:
    """``value`` when it is a non-empty ``str``, else ``None`` (answers may carry any type)."""
    return value if isinstance(value, str) and value else None
