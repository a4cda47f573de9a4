"""HTTP plumbing: one pooled ``requests.Session`` with a retry policy per path, and the one place
where an HTTP exchange becomes JSON or a typed error.

Retry policy (SPEC "Retry policy", never pay twice), built on ``urllib3.util.Retry`` mounted with
``Session.mount`` (the longest matching prefix wins, so two paths on one host get two policies):

* ``{base_url}/nano-banana/images`` (billable submission): retried only when the request surely
  was not processed: connection refused / connect timeout, and HTTP 429 (``Retry-After`` honoured in
  both forms, seconds or HTTP-date, capped at ``retry_after_max``; else exponential backoff with
  jitter). Never after a read timeout, a connection dropped after sending, or a 5xx.
* ``{base_url}/nano-banana/tasks`` (an idempotent read): retried on connection errors, read
  timeouts, dropped connections, 429 and 500/502/503/504.
* everything else (image downloads, GET): the read policy.

``max_retries`` bounds both (``total``).
"""

from __future__ import annotations

import ipaddress
import json
import random
from itertools import takewhile
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, MaxRetryError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from langchain_nanobanana.errors import (
    APIConnectionError,
    NanoBananaAPIError,
    SubmissionUncertainError,
    error_from_response,
)

__all__ = [
    "SUBMIT_PATH",
    "TASKS_PATH",
    "build_session",
    "check_base_url",
    "is_loopback_host",
    "mount_policies",
    "post_json",
    "resize_pools",
]

SUBMIT_PATH = "/nano-banana/images"
TASKS_PATH = "/nano-banana/tasks"
_SNIPPET = 200
_MAX_BODY_BYTES = 32 * 2**20  # an API answer larger than this is not a documented answer


class _Backoff(Retry):
    """``Retry`` whose backoff starts at the first retry and survives a bad ``Retry-After``.

    urllib3 retries the first failure at once (backoff 0) and raises on an unparsable
    ``Retry-After``; here the n-th consecutive retry waits ``backoff_factor * 2**(n-1)`` plus up to
    ``backoff_jitter`` seconds (capped at ``backoff_max``), and an unparsable ``Retry-After`` falls
    back to that backoff (a 429 was surely not processed, whatever its header says).
    """

    def get_backoff_time(self) -> float:
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if errors == 0:
            return 0.0
        jitter = random.random() * self.backoff_jitter  # noqa: S311 - jitter, not crypto
        value = self.backoff_factor * 2 ** (errors - 1) + jitter
        return float(max(0.0, min(self.backoff_max, value)))

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None


class _Retry429Only(_Backoff):
    """The paid submission: ``Retry-After`` counts only for 429 (a 503 may have been processed)."""

    RETRY_AFTER_STATUS_CODES = frozenset({429})


def _submit_retry(max_retries: int, backoff_factor: float, retry_after_max: int) -> Retry:
    return _Retry429Only(
        total=max_retries,
        connect=max_retries,
        read=False,
        other=0,
        redirect=0,
        status=max_retries,
        status_forcelist={429},
        allowed_methods={"POST"},
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_factor / 2,
        retry_after_max=retry_after_max,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def _read_retry(max_retries: int, backoff_factor: float, retry_after_max: int) -> Retry:
    return _Backoff(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        other=max_retries,
        redirect=3,
        status=max_retries,
        status_forcelist={429, 500, 502, 503, 504},
        allowed_methods={"POST", "GET", "HEAD"},
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_factor / 2,
        retry_after_max=retry_after_max,
        raise_on_status=False,
    )


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """Validate and normalise a base URL (no trailing slash; a path prefix such as ``/v1`` kept).

    Raises:
        ValueError: Not an absolute http(s) URL, or plain ``http://`` to a host that is not
            loopback (the token must never travel in clear text; SPEC "The HTTP core").

    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url={base_url!r} is not allowed; use an absolute https:// URL such as "
            "'https://api.acedata.cloud' or 'https://api.xhuoapi.ai/v1'"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"base_url={base_url!r} is not allowed: plain http:// would send the API token in "
            "clear text; use https:// (http:// is accepted only for loopback hosts such as the "
            "simulator on 127.0.0.1)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url={base_url!r} must not carry a query or a fragment")
    return base_url.strip().rstrip("/")


class PoolAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connection pools can grow after mounting (see :func:`resize_pools`).

    The sizes live in ``HTTPAdapter``'s own attributes (``_pool_connections``, ``_pool_maxsize``,
    ``_pool_block``), so pickling and copying behave exactly as for a plain adapter.
    """

    @property
    def pool_maxsize(self) -> int:
        """Connections kept per host."""
        return int(getattr(self, "_pool_maxsize", DEFAULT_POOLSIZE))

    def grow(self, pool_maxsize: int) -> None:
        """Keep up to ``pool_maxsize`` connections per host from now on (never shrinks).

        A new pool manager replaces the old one (one attribute swap, safe while other threads send):
        requests in flight finish on the old pools, whose connections urllib3 closes when they are
        garbage-collected. The retry policy is kept.
        """
        if pool_maxsize > self.pool_maxsize:
            self._pool_maxsize = pool_maxsize
            self.init_poolmanager(
                getattr(self, "_pool_connections", DEFAULT_POOLSIZE),
                pool_maxsize,
                block=getattr(self, "_pool_block", False),
            )


def resize_pools(session: requests.Session, pool_maxsize: int) -> None:
    """Grow every :class:`PoolAdapter` mounted on ``session`` to ``pool_maxsize`` connections per
    host, so that ``pool_maxsize`` concurrent requests all return their connection to the pool
    (keep-alive) instead of urllib3 discarding the extras with a "pool is full" warning.
    """
    for adapter in list(session.adapters.values()):
        if isinstance(adapter, PoolAdapter):
            adapter.grow(pool_maxsize)


def mount_policies(
    session: requests.Session,
    base_url: str,
    *,
    max_retries: int,
    pool_maxsize: int = 10,
    backoff_factor: float = 0.5,
    retry_after_max: int = 60,
) -> requests.Session:
    """Mount the submission, task and default adapters (see the module docstring) on ``session``.

    Args:
        session: The session to configure (returned).
        base_url: Normalised base URL (from :func:`check_base_url`).
        max_retries: Upper bound on retries for every policy (int >= 0).
        pool_maxsize: Connections kept per host (size it to the concurrency in use).
        backoff_factor: Seconds; the n-th retry waits ``backoff_factor * 2**(n-1)`` plus jitter.
        retry_after_max: Seconds; a longer ``Retry-After`` is capped to this.

    """
    submit = PoolAdapter(
        max_retries=_submit_retry(max_retries, backoff_factor, retry_after_max),
        pool_maxsize=pool_maxsize,
    )
    read = PoolAdapter(
        max_retries=_read_retry(max_retries, backoff_factor, retry_after_max),
        pool_maxsize=pool_maxsize,
    )
    session.mount(base_url + SUBMIT_PATH, submit)
    session.mount(base_url + TASKS_PATH, read)
    for prefix in ("https://", "http://"):
        session.mount(
            prefix,
            PoolAdapter(
                max_retries=_read_retry(max_retries, backoff_factor, retry_after_max),
                pool_maxsize=pool_maxsize,
            ),
        )
    return session


def build_session(base_url: str, *, max_retries: int, pool_maxsize: int = 10) -> requests.Session:
    """A new ``requests.Session`` with :func:`mount_policies` applied. Thread-safe to share for
    independent requests (one connection pool per host, ``pool_maxsize`` connections).
    """
    return mount_policies(
        requests.Session(), base_url, max_retries=max_retries, pool_maxsize=pool_maxsize
    )


def _surely_not_sent(exc: requests.RequestException) -> bool:
    """True when the request never reached the server (refused / connect timeout / DNS)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _read_body(response: requests.Response, *, billable: bool, task_id: str | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_BODY_BYTES:
                break
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
        snippet = b"".join(chunks)[:_SNIPPET].decode("utf-8", "replace")
        raise _unreadable(
            f"Truncated answer from the API ({type(exc).__name__})",
            snippet,
            response.status_code,
            billable=billable,
            task_id=task_id,
        ) from exc
    finally:
        response.close()
    return b"".join(chunks)


def post_json(
    session: requests.Session,
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str],
    timeout: tuple[float, float],
    billable: bool,
    task_id: str | None = None,
) -> dict[str, Any]:
    """POST ``payload`` as JSON and return the decoded object of a 2xx answer.

    Args:
        session: Session carrying the retry policies (:func:`mount_policies`).
        url: Absolute URL.
        payload: JSON body.
        headers: Request headers (``authorization`` included here, never stored on the session,
            so the token is not sent to image download hosts).
        timeout: ``(connect, read)`` seconds.
        billable: True for ``/nano-banana/images``: connection failures after sending become
            :class:`SubmissionUncertainError` instead of a retryable connection error.
        task_id: Known task id, attached to every error.

    Returns:
        The decoded JSON object.

    Raises:
        NanoBananaAPIError (and subclasses): a non-2xx answer, or a 2xx that is not a JSON object
            (status and a 200-character snippet kept).
        SubmissionUncertainError: ``billable`` and the request may have been processed
            (read timeout, connection dropped after sending).
        APIConnectionError: the server could not be reached (after retries), or, for reads,
            any transport failure after retries.

    """
    try:
        response = session.post(url, json=payload, headers=headers, timeout=timeout, stream=True)
    except requests.RequestException as exc:
        if _surely_not_sent(exc):
            raise APIConnectionError(
                f"Could not connect to {_origin(url)} ({type(exc).__name__}); nothing was sent",
                task_id=task_id,
            ) from exc
        if billable:
            raise SubmissionUncertainError(
                f"No answer to the submission ({type(exc).__name__}: the request was sent "
                "but the answer did not arrive)",
                task_id=task_id,
            ) from exc
        raise APIConnectionError(
            f"Transport failure talking to {_origin(url)} ({type(exc).__name__})",
            task_id=task_id,
        ) from exc
    body = _read_body(response, billable=billable, task_id=task_id)
    text = body.decode("utf-8", "replace")
    if not 200 <= response.status_code < 300:
        raise error_from_response(
            response.status_code, text, headers=dict(response.headers), task_id=task_id
        )
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _unreadable(
            "Malformed answer from the API (not a JSON object)",
            text[:_SNIPPET],
            response.status_code,
            billable=billable,
            task_id=task_id,
        )
    if data.get("success") is False and "error" in data:
        raise error_from_response(response.status_code, text, task_id=task_id)
    return data


def _unreadable(
    what: str, snippet: str, status_code: int, *, billable: bool, task_id: str | None
) -> NanoBananaAPIError:
    """The error for an answer that could not be read: status and a 200-character snippet kept;
    on a billable submission it says the generation may have run.
    """
    hint = "; the generation may have run: look the task up before resubmitting" * billable
    return NanoBananaAPIError(
        f"{what}: {snippet!r}{hint}", status_code=status_code, task_id=task_id, body=snippet
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def raise_for_missing(value: object, what: str, data: dict[str, Any], status: int) -> str:
    """Return ``value`` when it is a non-empty string, else raise a NanoBananaAPIError naming
    ``what`` is missing from the answer (with a snippet of ``data``).
    """
    if isinstance(value, str) and value:
        return value
    raise NanoBananaAPIError(
        f"The API's answer has no {what}: {json.dumps(data)[:_SNIPPET]!r}",
        status_code=status,
        trace_id=data.get("trace_id") if isinstance(data.get("trace_id"), str) else None,
        body=data,
    )
