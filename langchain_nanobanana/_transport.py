"""The only module that sends: one pooled ``requests.Session``, two retry policies, timeouts,
no redirects, capped and deadline-bound body reads, and scrubbed transport errors.

Retry policies (``urllib3.util.Retry``; never pay twice):

* the **default** adapters (``http://``, ``https://``) carry the submission's policy: retry only
  what surely was not processed (connection refused / connect timeout, and 429 with its
  ``Retry-After`` in seconds or HTTP-date, capped at 60 s; else exponential backoff with jitter).
  Whatever URL falls through a prefix mismatch is therefore treated as billable;
* only the task-read URL (``{base_url}/nano-banana/tasks``, mounted in the form ``requests``
  prepares it) gets the broad read policy: connection errors, read timeouts, dropped
  connections, 429 and 500/502/503/504.

Billable safety does not depend on that mount: the submission goes out with the strict policy
whatever the base URL's spelling (:func:`normalize_base_url` also brings it to one form). API
requests never follow redirects (``allow_redirects=False``, ``redirect=0``): a 3xx is an answer
that ``_core.answers`` turns into an error, and the body is never re-sent.

The token: the ``authorization`` value is a :class:`RedactedHeader` (its ``repr`` hides it), sent
per request to API URLs only (never stored on the session, so image hosts never see it), and a
transport exception is never chained: the error raised carries its type and a short description
only, so nothing reachable from it (causes, their requests, frame locals) holds the token.
"""

from __future__ import annotations

import ipaddress
import logging
import posixpath
import random
import time
from itertools import takewhile
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, MaxRetryError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from langchain_nanobanana._core.http import Answer
from langchain_nanobanana.errors import (
    APIConnectionError,
    NanoBananaError,
    ResponseTooLargeError,
    SubmissionUncertainError,
)

__all__ = [
    "SUBMIT_PATH",
    "TASKS_PATH",
    "RedactedHeader",
    "ResponseTooLargeError",
    "Transport",
    "is_loopback_host",
    "normalize_base_url",
]

logger = logging.getLogger(__name__)

SUBMIT_PATH = "/nano-banana/images"
TASKS_PATH = "/nano-banana/tasks"
RETRY_AFTER_CAP = 60.0
"""Seconds: a longer ``Retry-After`` is waited only this long (urllib3's default is 6 hours)."""
_CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024


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


class _Retry429Only(_Backoff):
    """The submission's policy: ``Retry-After`` counts only for 429 (a 503 may have run)."""

    RETRY_AFTER_STATUS_CODES = frozenset({429})


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
    submit = _Retry429Only(read=0, other=0, status_forcelist={429}, **common)
    read = _Backoff(
        read=max_retries, other=max_retries, status_forcelist={429, 500, 502, 503, 504}, **common
    )
    for policy in (submit, read):
        policy.retry_after_cap = retry_after_cap
    return submit, read


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _fail(base_url: str, why: str) -> ValueError:
    shown = _without_userinfo(base_url)
    return ValueError(
        f"base_url={shown!r} is not allowed: {why}. Use an absolute https:// URL such as "
        "'https://api.acedata.cloud' or 'https://api.xhuoapi.ai/v1'"
    )


def _without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable>"
    if "@" not in parts.netloc:
        return url[:200]
    return urlunsplit(parts._replace(netloc="<userinfo>@" + parts.netloc.rsplit("@", 1)[1]))[:200]


def normalize_base_url(base_url: str) -> str:
    """Validate ``base_url`` and bring it to the one form ``requests`` sends.

    Lower-cases scheme and host, encodes an IDN host with IDNA, drops a default port, resolves
    ``.``/``..`` segments (RFC 3986 5.2.4), re-encodes the path (``%7E`` -> ``~``; whitespace
    is refused), drops an empty query (``…?``) and the trailing slash. A path prefix such as
    ``/v1`` (the XHuoAPI mirror's ``https://api.xhuoapi.ai/v1``) is kept.

    Raises:
        ValueError: Not an absolute http(s) URL with a host; userinfo (``user:pass@``: it would
            replace the Bearer token and leak the password); a query or fragment; plain
            ``http://`` to a host that is not loopback (the token never travels in clear text).
            The message never repeats a password.

    """
    if not isinstance(base_url, str):
        raise ValueError(f"base_url must be a str, got {type(base_url).__name__}")
    raw = base_url.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise _fail(raw, "it is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _fail(raw, "it is not an absolute http(s) URL with a host")
    if "@" in parts.netloc:
        raise _fail(raw, "it carries user:password@ (the token is sent as a Bearer header)")
    if parts.query or parts.fragment:
        raise _fail(raw, "it must not carry a query or a fragment")
    host = parts.hostname
    if any(c.isspace() or ord(c) < 32 for c in raw):
        raise _fail(raw, "it contains whitespace or control characters")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host.lower()
    except UnicodeError:
        raise _fail(raw, "its host is not a valid domain name") from None
    if scheme == "http" and not is_loopback_host(host):
        raise _fail(
            raw,
            "plain http:// would send the API token in clear text (http:// is "
            "accepted only for loopback hosts such as the simulator on 127.0.0.1)",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    path = posixpath.normpath("/" + unquote(parts.path)) if parts.path else ""
    path = "" if path in ("/", "//") else quote(path.replace("//", "/"), safe="/:@!$&'()*+,;=-._~")
    return urlunsplit((scheme, netloc, path.rstrip("/"), "", ""))


class _PoolAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connection pools can grow after mounting (never shrink)."""

    def grow(self, pool_maxsize: int) -> None:
        """Keep up to ``pool_maxsize`` connections per host from now on (one attribute swap:
        requests in flight finish on the old pools). The retry policy is kept.
        """
        if pool_maxsize > getattr(self, "_pool_maxsize", DEFAULT_POOLSIZE):
            self._pool_maxsize = pool_maxsize
            self.init_poolmanager(
                getattr(self, "_pool_connections", DEFAULT_POOLSIZE),
                pool_maxsize,
                block=getattr(self, "_pool_block", False),
            )


def _surely_not_sent(exc: BaseException) -> bool:
    """True when the request never reached the server (refused / connect timeout / DNS)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


class Transport:
    """One pooled session with the two policies, for one normalised base URL.

    Args:
        base_url: From :func:`normalize_base_url`.
        max_retries: Bound of both policies (int >= 0).
        backoff_factor: Seconds; see :class:`_Backoff`.
        pool_maxsize: Connections kept per host.
        session: A session to configure (mounted on; closed by :meth:`close` only when None).
        retry_after_cap: Seconds; the longest ``Retry-After`` honoured (default 60).

    """

    def __init__(
        self,
        base_url: str,
        *,
        max_retries: int,
        backoff_factor: float,
        pool_maxsize: int,
        session: requests.Session | None = None,
        retry_after_cap: float = RETRY_AFTER_CAP,
    ) -> None:
        self.base_url = base_url
        self.submit_url = base_url + SUBMIT_PATH
        self.tasks_url = requests.Request("POST", base_url + TASKS_PATH).prepare().url or ""
        self.pool_maxsize = pool_maxsize
        self._owns_session = session is None
        self.session = session or requests.Session()
        submit, read = _policies(max_retries, backoff_factor, retry_after_cap)
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, _PoolAdapter(max_retries=submit, pool_maxsize=pool_maxsize))
        self.session.mount(
            self.tasks_url, _PoolAdapter(max_retries=read, pool_maxsize=pool_maxsize)
        )

    def grow(self, pool_maxsize: int) -> None:
        """Keep at least ``pool_maxsize`` connections per host in every pool (never shrinks)."""
        if pool_maxsize > self.pool_maxsize:
            self.pool_maxsize = pool_maxsize
            for adapter in list(self.session.adapters.values()):
                if isinstance(adapter, _PoolAdapter):
                    adapter.grow(pool_maxsize)

    def close(self) -> None:
        """Close the session when this transport created it."""
        if self._owns_session:
            self.session.close()

    def post(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        authorization: RedactedHeader,
        read_timeout: float,
        billable: bool,
        max_bytes: int,
        task_id: str | None = None,
    ) -> Answer:
        """POST ``payload`` as JSON to an API URL and read the whole answer.

        Args:
            url: :attr:`submit_url` or :attr:`tasks_url`.
            payload: JSON body.
            authorization: The ``Bearer`` header value.
            read_timeout: Seconds: per socket read, and the bound on reading the whole body.
            billable: The submission: a failure after sending is :class:`SubmissionUncertainError`.
            max_bytes: Largest body read; a larger one raises :class:`ResponseTooLargeError`.
            task_id: Known task, attached to errors.

        Returns:
            The :class:`Answer` (any status: classification is ``_core.answers``' job).

        Raises:
            APIConnectionError: Nothing was sent (refused, DNS, connect timeout), or, for a read,
                any transport failure after the retries.
            SubmissionUncertainError: ``billable`` and the request may have been processed.
            ResponseTooLargeError: The answer passed ``max_bytes``.

        """
        headers = {
            "authorization": authorization,
            "accept": "application/json",
            "content-type": "application/json",
        }
        failure: str | None = None
        sent = True
        try:
            response = self.session.post(
                url,
                json=payload,
                headers=headers,
                timeout=(min(_CONNECT_TIMEOUT, read_timeout or _CONNECT_TIMEOUT), read_timeout),
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure, sent = _describe(exc), not _surely_not_sent(exc)
        if failure is not None:  # raised outside the except block: no chained transport error
            raise self._transport_error(url, failure, sent=sent, billable=billable, task_id=task_id)
        try:
            body = read_body(
                response, deadline=time.monotonic() + read_timeout, max_bytes=max_bytes
            )
        except _ReadError as exc:
            failure = exc.args[0]
        if failure is not None:
            raise self._transport_error(
                url,
                failure,
                sent=True,
                billable=billable,
                task_id=task_id,
                answered=response.status_code,
            )
        headers_in = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status_code, headers_in, body, url)

    @staticmethod
    def _transport_error(
        url: str,
        failure: str,
        *,
        sent: bool,
        billable: bool,
        task_id: str | None,
        answered: int | None = None,
    ) -> NanoBananaError:
        where = _origin(url)
        status = f" after HTTP {answered}" if answered is not None else ""
        if not sent:
            return APIConnectionError(
                f"Could not connect to {where} ({failure}); nothing was sent", task_id=task_id
            )
        if billable:
            return SubmissionUncertainError(
                f"No complete answer to the submission{status} ({failure}: the request was "
                "sent but the answer did not arrive)",
                task_id=task_id,
            )
        return APIConnectionError(
            f"Transport failure talking to {where}{status} ({failure})", task_id=task_id
        )

    def get(self, url: str, *, timeout: tuple[float, float]) -> requests.Response:
        """GET ``url`` streamed, without the token and without following redirects more than
        ``requests`` allows for downloads (image CDNs may redirect; the token is never sent).

        Raises:
            APIConnectionError: Transport failure (scrubbed: nothing chained).

        """
        failure: str | None = None
        try:
            return self.session.get(url, stream=True, timeout=timeout)
        except requests.RequestException as exc:
            failure = _describe(exc)
        raise APIConnectionError(f"Download from {_origin(url)} failed ({failure})")


class _ReadError(Exception):
    """Internal: the body could not be read (message only)."""


def _describe(exc: BaseException) -> str:
    """``TypeName: short reason`` without URLs' queries, headers or the request object."""
    reason: object = exc.args[0] if exc.args else ""
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    text = str(reason) if not isinstance(reason, BaseException) else type(reason).__name__
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def read_body(response: requests.Response, *, deadline: float, max_bytes: int) -> bytes:
    """Read a streamed body whole, within ``deadline`` (``time.monotonic``) and ``max_bytes``.

    ``read1`` returns whatever has arrived, so a slow-drip answer cannot stretch the read past
    the deadline (a plain ``read(n)`` waits for ``n`` bytes). The response is always closed.

    Raises:
        ResponseTooLargeError: Over ``max_bytes`` (``Content-Length`` checked first).
        _ReadError: Truncated, dropped, or past the deadline.

    """
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise ResponseTooLargeError(
                f"answer of {length} bytes is over {max_bytes}",
                status_code=response.status_code,
                limit=max_bytes,
            )
        read = getattr(raw, "read1", None) or raw.read
        while True:
            if time.monotonic() > deadline:
                raise _ReadError(f"answer still arriving after its deadline ({size} bytes read)")
            chunk = read(_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLargeError(
                    f"answer is over {max_bytes} bytes",
                    status_code=response.status_code,
                    limit=max_bytes,
                )
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _ReadError(f"truncated answer ({type(exc).__name__})") from None
    except Exception as exc:  # urllib3's ProtocolError / IncompleteRead are not RequestException
        if isinstance(exc, (ResponseTooLargeError, _ReadError)):
            raise
        raise _ReadError(f"truncated answer ({type(exc).__name__})") from None
    finally:
        response.close()
    return b"".join(chunks)
