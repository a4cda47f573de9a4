"""The pieces ``_transport`` mounts: the redacted header value, the two ``urllib3`` retry
policies (never pay twice; a 429 is the rate gate's, not urllib3's) and the pool adapter that can
grow and be renewed after ``fork``.
"""

from __future__ import annotations

import random
from itertools import takewhile
from typing import Any

from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from langchain_nanobanana._core.classify import read_retry_statuses

__all__ = ["RETRY_AFTER_CAP", "RedactedHeader", "_PoolAdapter", "_policies"]

RETRY_AFTER_CAP = 60.0
"""Seconds: a longer ``Retry-After`` is waited only this long (urllib3's default is 6 hours)."""


class RedactedHeader(str):
    """A header value (``Bearer <token>``) whose ``repr`` never shows the token.

    It is a ``str`` (``requests`` and ``http.client`` send it unchanged); anything that shows
    objects with ``repr`` — dict and header reprs, ``traceback`` with ``capture_locals=True``,
    debuggers, rich tracebacks — sees ``'Bearer <redacted>'``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'Bearer <redacted>'"


class _Backoff(Retry):
    """``Retry`` whose backoff starts at the first retry, survives a bad ``Retry-After`` and caps
    it at :data:`RETRY_AFTER_CAP` (without urllib3 2.6's ``retry_after_max``).

    The n-th consecutive retry waits ``backoff_factor * 2**(n-1)`` plus up to ``backoff_jitter``
    seconds (capped at ``backoff_max``).
    """

    retry_after_cap: float = RETRY_AFTER_CAP

    def new(self, **kw: Any) -> _Backoff:
        new = super().new(**kw)
        new.retry_after_cap = self.retry_after_cap
        return new

    def get_backoff_time(self) -> float:
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if errors == 0:
            return 0.0
        jitter = random.random() * self.backoff_jitter  # noqa: S311 - jitter, not crypto
        value = self.backoff_factor * 2 ** (errors - 1) + jitter
        return float(max(0.0, min(self.backoff_max, value)))

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        try:
            value = super().get_retry_after(response)
        except (InvalidHeader, ValueError, OverflowError):
            return None
        return None if value is None else min(value, self.retry_after_cap)


class _SubmitRetry(_Backoff):
    """The submission's policy: no status is retried, ``Retry-After`` included (a 503 may have
    run; a 429 is the gate's).
    """

    RETRY_AFTER_STATUS_CODES: frozenset[int] = frozenset()


class _ReadRetry(_Backoff):
    """The read policy: ``Retry-After`` honoured on a 503 only (a 429 is the gate's)."""

    RETRY_AFTER_STATUS_CODES: frozenset[int] = frozenset({503})


def _policies(
    max_retries: int, backoff_factor: float, retry_after_cap: float
) -> tuple[Retry, Retry]:
    common: dict[str, Any] = {
        "total": max_retries,
        "connect": max_retries,
        "status": max_retries,
        "redirect": 0,
        "raise_on_redirect": False,
        "raise_on_status": False,
        "allowed_methods": frozenset({"POST", "GET", "HEAD"}),
        "backoff_factor": backoff_factor,
        "backoff_jitter": backoff_factor / 2,
    }
    submit = _SubmitRetry(read=0, other=0, status_forcelist=frozenset(), **common)
    read = _ReadRetry(
        read=max_retries,
        other=max_retries,
        status_forcelist=read_retry_statuses(),  # from the error facts, not a list of our own
        **common,
    )
    for policy in (submit, read):
        policy.retry_after_cap = retry_after_cap
    return submit, read


class _PoolAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connection pools can grow after mounting (never shrink)."""

    def grow(self, pool_maxsize: int) -> None:
        """Keep up to ``pool_maxsize`` connections per host from now on (one attribute swap:
        requests in flight finish on the old pools). The retry policy is kept.
        """
        if pool_maxsize > getattr(self, "_pool_maxsize", DEFAULT_POOLSIZE):
            self._pool_maxsize = pool_maxsize
            self.renew()

    def renew(self) -> None:
        """New, empty connection pools (after ``fork``: the child must not use the parent's
        sockets). The old pools are dropped, not closed: their sockets are the parent's.
        """
        self.init_poolmanager(
            getattr(self, "_pool_connections", DEFAULT_POOLSIZE),
            getattr(self, "_pool_maxsize", DEFAULT_POOLSIZE),
            block=getattr(self, "_pool_block", False),
        )
        self.proxy_manager = {}
