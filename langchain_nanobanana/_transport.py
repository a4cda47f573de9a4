"""The only module that sends: one pooled ``requests.Session``, two retry policies, one rate
gate, timeouts, no redirects on API requests, capped and deadline-bound body reads, and
scrubbed transport errors.

Retry policies (``urllib3.util.Retry``; never pay twice):

* the **default** adapters (``http://``, ``https://``) carry the submission's policy: retry only
  what surely was not processed (connection refused / connect timeout). Whatever URL falls
  through a prefix mismatch is therefore treated as billable;
* only the task-read URL (``{base_url}/nano-banana/tasks``, mounted in the form ``requests``
  prepares it) gets the broad read policy: connection errors, read timeouts, dropped
  connections and 500/502/503/504.

A **429** is not urllib3's business any more: it is handled by the client's one
:class:`~langchain_nanobanana._ratelimit.Gate` (one pause shared by every sender, adaptive
submissions in flight, a token bucket; see that module for why), for both policies;
``max_retries`` still bounds how many 429s one call tolerates before :class:`RateLimitError`.

API requests never follow redirects: they are sent by the session's adapter directly, so
``requests`` neither follows a 3xx nor builds its ``next`` request (which reads the whole 3xx
body with no cap and raises a bare ``ValueError`` on an unparseable ``Location``). A 3xx body is
read under the same cap and deadline as any answer, and ``_core.answers`` turns it into an
error (on the paid POST: it may have run).

What the world's HTTP sends back is read by ``_wire``: ``Accept-Encoding: identity`` is asked,
and a body compressed anyway is decoded with the cap counting decoded bytes; the token (and
``Bearer <token>``) is scrubbed from the body and headers before anything parses them; lone
surrogates are replaced, so every text handed on encodes as UTF-8.

The token: the ``authorization`` value is a :class:`RedactedHeader` (its ``repr`` hides it), sent
per request to API URLs only (never stored on the session, so image hosts never see it), and a
transport exception is never chained: the error raised carries its type and a short description
only, so nothing reachable from it (causes, their requests, frame locals) holds the token.

After ``os.fork`` (``multiprocessing``'s default start method on Linux) every live transport
gets new connection pools in the child, so parent and child never share a socket.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.hooks import dispatch_hook
from requests.sessions import merge_hooks, merge_setting
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from langchain_nanobanana._adapters import (
    RETRY_AFTER_CAP,
    RedactedHeader,
    _policies,
    _PoolAdapter,
)
from langchain_nanobanana._baseurl import is_loopback_host, normalize_base_url, origin
from langchain_nanobanana._core.http import Answer, parse_retry_after
from langchain_nanobanana._ratelimit import Gate
from langchain_nanobanana._wire import (
    BodyReadError,
    clean_surrogates,
    iter_body,
    read_body,
    scrub_answer,
)
from langchain_nanobanana.errors import (
    APIConnectionError,
    NanoBananaError,
    ResponseTooLargeError,
    SubmissionUncertainError,
)

__all__ = [
    "RETRY_AFTER_CAP",
    "SUBMIT_PATH",
    "TASKS_PATH",
    "RedactedHeader",
    "ResponseTooLargeError",
    "Transport",
    "_PoolAdapter",
    "_policies",
    "is_loopback_host",
    "normalize_base_url",
    "read_body",
]

logger = logging.getLogger(__name__)

SUBMIT_PATH = "/nano-banana/images"
TASKS_PATH = "/nano-banana/tasks"
_CONNECT_TIMEOUT = 10.0
_MAX_DOWNLOAD_REDIRECTS = 5


def _surely_not_sent(exc: BaseException) -> bool:
    """True when the request never reached the server (refused / connect timeout / DNS)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


_LIVE: weakref.WeakSet[Transport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Give every live transport of this (child) process new pools and a fresh gate lock."""
    for transport in list(_LIVE):
        transport.renew_pools()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Transport:
    """One pooled session with the two policies and the rate gate, for one normalised base URL.

    Args:
        base_url: From :func:`normalize_base_url`.
        max_retries: Bound of both policies, and of the 429s one call tolerates (int >= 0).
        backoff_factor: Seconds; see :class:`_Backoff` (and the gate's pause without
            ``Retry-After``).
        pool_maxsize: Connections kept per host.
        session: A session to configure (mounted on; closed by :meth:`close` only when None).
        retry_after_cap: Seconds; the longest ``Retry-After`` honoured (default 60).
        rate_limit: API requests per second of the account when known (see ``_ratelimit``).

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
        rate_limit: float | None = None,
    ) -> None:
        self.base_url = base_url
        self.submit_url = base_url + SUBMIT_PATH
        self.tasks_url = requests.Request("POST", base_url + TASKS_PATH).prepare().url or ""
        self.pool_maxsize = pool_maxsize
        self.max_retries = max_retries
        self.retry_after_cap = retry_after_cap
        self.gate = Gate(rate_limit, backoff_factor=backoff_factor, retry_after_cap=retry_after_cap)
        self._owns_session = session is None
        self.session = session or requests.Session()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}
        submit, read = _policies(max_retries, backoff_factor, retry_after_cap)
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, _PoolAdapter(max_retries=submit, pool_maxsize=pool_maxsize))
        self.session.mount(
            self.tasks_url, _PoolAdapter(max_retries=read, pool_maxsize=pool_maxsize)
        )
        _LIVE.add(self)

    def grow(self, pool_maxsize: int) -> None:
        """Keep at least ``pool_maxsize`` connections per host in every pool (never shrinks)."""
        if pool_maxsize > self.pool_maxsize:
            self.pool_maxsize = pool_maxsize
            for adapter in list(self.session.adapters.values()):
                if isinstance(adapter, _PoolAdapter):
                    adapter.grow(pool_maxsize)

    def renew_pools(self) -> None:
        """New connection pools for every adapter (called in a forked child)."""
        for adapter in list(self.session.adapters.values()):
            if isinstance(adapter, _PoolAdapter):
                adapter.renew()
            elif isinstance(adapter, HTTPAdapter):  # a foreign adapter on the user's session
                adapter.init_poolmanager(DEFAULT_POOLSIZE, DEFAULT_POOLSIZE)
        self.gate.reset_after_fork()

    def close(self) -> None:
        """Close the session when this transport created it."""
        _LIVE.discard(self)
        if self._owns_session:
            self.session.close()

    # -- API requests -------------------------------------------------------------------------
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
        """POST ``payload`` as JSON to an API URL through the gate and read the whole answer.

        A 429 is reported to the gate (every sender pauses once) and the call goes again, at
        most ``max_retries`` times; the last 429 is returned (``_core.answers`` makes it a
        :class:`RateLimitError` with ``retry_after``).

        Args:
            url: :attr:`submit_url` or :attr:`tasks_url`.
            payload: JSON body.
            authorization: The ``Bearer`` header value (scrubbed from every answer).
            read_timeout: Seconds: per socket read, and the bound on reading the whole body.
            billable: The submission: a failure after sending is :class:`SubmissionUncertainError`.
            max_bytes: Largest body read (decoded bytes); a larger one raises
                :class:`ResponseTooLargeError`.
            task_id: Known task, attached to errors.

        Returns:
            The :class:`Answer` (any status: classification is ``_core.answers``' job); its body
            and headers are decoded, scrubbed of the token and free of lone surrogates.

        Raises:
            APIConnectionError: Nothing was sent (refused, DNS, connect timeout), or, for a read,
                any transport failure after the retries.
            SubmissionUncertainError: ``billable`` and the request may have been processed.
            ResponseTooLargeError: The answer passed ``max_bytes``.

        """
        secret = RedactedHeader(str(authorization)[len("Bearer ") :])  # repr hides it too
        rate_limited = 0
        while True:
            ticket = self.gate.acquire(billable=billable)
            status: int | None = None
            retry_after: float | None = None
            try:
                answer = self._post_once(
                    url,
                    payload,
                    authorization=authorization,
                    secret=secret,
                    read_timeout=read_timeout,
                    billable=billable,
                    max_bytes=max_bytes,
                    task_id=task_id,
                )
                status = answer.status
                if status == 429:
                    retry_after = parse_retry_after(answer.header("retry-after"))
            finally:
                self.gate.release(ticket, status=status, retry_after=retry_after)
            if status != 429 or rate_limited >= self.max_retries:
                return answer
            rate_limited += 1
            logger.debug("429 on %s: attempt %d of %d", origin(url), rate_limited, self.max_retries)

    def _post_once(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        authorization: RedactedHeader,
        secret: str,
        read_timeout: float,
        billable: bool,
        max_bytes: int,
        task_id: str | None,
    ) -> Answer:
        headers = {
            "authorization": authorization,
            "accept": "application/json",
            "accept-encoding": "identity",
            "content-type": "application/json",
        }
        timeout = (min(_CONNECT_TIMEOUT, read_timeout or _CONNECT_TIMEOUT), read_timeout)
        failure: str | None = None
        sent = False
        try:
            prepared = self._prepare(url, payload, headers)
            sent = True
            response = self._send(prepared, timeout)
        except Exception as exc:  # requests', urllib3's, ValueError, OSError: described only
            failure, sent = _describe(exc), sent and not _surely_not_sent(exc)
        if failure is not None:  # raised outside the except block: no chained transport error
            raise self._transport_error(url, failure, sent=sent, billable=billable, task_id=task_id)
        try:
            body = read_body(
                response, deadline=time.monotonic() + read_timeout, max_bytes=max_bytes
            )
        except BodyReadError as exc:
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
        headers_in, body = scrub_answer(
            {k.lower(): v for k, v in response.headers.items()}, body, secret
        )
        return Answer(response.status_code, headers_in, clean_surrogates(body), url)

    def _prepare(
        self, url: str, payload: dict[str, Any], headers: dict[str, Any]
    ) -> requests.PreparedRequest:
        """An API request with the session's headers and hooks under ours. Not
        ``Session.prepare_request``: its ``.netrc`` look-up (and ``session.auth``) would
        replace our ``Authorization`` for a host a ``.netrc`` names, and its cookie and
        ``.netrc`` work cost ~50 us a request (the steps below are ``PreparedRequest.prepare``'s
        without cookies and auth); the API uses no cookies or query parameters.
        """
        prepared = requests.PreparedRequest()
        prepared.prepare_method("POST")
        prepared.prepare_url(url, None)
        prepared.prepare_headers(
            merge_setting(  # type: ignore[no-untyped-call]
                headers, self.session.headers, dict_class=CaseInsensitiveDict
            )
        )
        prepared.prepare_body(None, None, payload)
        prepared.prepare_hooks(merge_hooks({}, self.session.hooks))  # type: ignore[no-untyped-call]
        return prepared

    def _send(
        self, prepared: requests.PreparedRequest, timeout: tuple[float, float]
    ) -> requests.Response:
        """Send through the adapter: no redirect is followed or prepared, no cookie kept; the
        session's ``response`` hooks run as ``Session.send`` would run them.
        """
        # The environment's proxy settings, read once per scheme and host: requests re-reads
        # every variable on every request, which cost ~0.6 ms per call in a long batch.
        where = urlsplit(prepared.url or "")
        key = (where.scheme, where.netloc)
        cached = self._environment.get(key)
        if cached is None:
            cached = dict(
                self.session.merge_environment_settings(
                    prepared.url, {}, True, self.session.verify, self.session.cert
                )
            )
            self._environment[key] = cached
        settings: dict[str, Any] = cached
        adapter = self.session.get_adapter(prepared.url or "")
        response = adapter.send(
            prepared,
            stream=True,
            timeout=timeout,
            verify=settings["verify"] if settings["verify"] is not None else True,
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
        hooked: requests.Response = dispatch_hook(  # type: ignore[no-untyped-call]
            "response", prepared.hooks, response
        )
        return hooked

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
        where = origin(url)
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

    # -- downloads -------------------------------------------------------------------------------
    def get(
        self, url: str, *, timeout: tuple[float, float] | float, deadline: float | None = None
    ) -> requests.Response:
        """GET ``url`` streamed, without the token, following at most 5 redirects by hand (image
        CDNs may redirect): a 3xx body is never read, an unparseable ``Location`` or a non-http(s)
        target is an error, and ``deadline`` (``time.monotonic()`` seconds) bounds the hops.

        Raises:
            APIConnectionError: Transport failure (scrubbed: nothing chained).
            NanoBananaError: A bad or endless redirect.

        """
        failure: str | None = None
        for _hop in range(_MAX_DOWNLOAD_REDIRECTS + 1):
            if deadline is not None and time.monotonic() > deadline:
                raise APIConnectionError(f"Download from {origin(url)} ran out of time")
            try:
                prepared = self.session.prepare_request(requests.Request("GET", url))
                response = self._send(prepared, _pair(timeout))
            except Exception as exc:
                failure = _describe(exc)
            if failure is not None:
                raise APIConnectionError(f"Download from {origin(url)} failed ({failure})")
            if not response.is_redirect:
                return response
            location = response.headers.get("location", "")
            response.close()  # the 3xx body is never read
            try:
                url = urljoin(url, location)
                scheme, host = urlsplit(url).scheme.lower(), urlsplit(url).hostname
            except ValueError:
                scheme, host = "", None
            if scheme not in ("http", "https") or not host:
                raise NanoBananaError(
                    f"Download redirected to an unusable Location {location[:120]!r}"
                )
        raise NanoBananaError(f"Download from {origin(url)}: more than 5 redirects")

    @staticmethod
    def iter_download(response: requests.Response, *, deadline: float, max_bytes: int) -> Any:
        """The decoded body of a download, chunk by chunk (see ``_wire.iter_body``)."""
        return iter_body(response, deadline=deadline, max_bytes=max_bytes, what="download")


def _pair(timeout: tuple[float, float] | float) -> tuple[float, float]:
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)


def _describe(exc: BaseException) -> str:
    """``TypeName: short reason`` without URLs' queries, headers or the request object."""
    reason: object = exc.args[0] if exc.args else ""
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    text = str(reason) if not isinstance(reason, BaseException) else type(reason).__name__
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
