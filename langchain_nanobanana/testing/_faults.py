"""Injected faults: how the handler answers a request that ``inject_fault`` picked.

The kinds and their semantics are documented on ``FakeNanoBananaServer.inject_fault``; this module
writes them: JSON/HTML error answers, redirects, slow-drip answers, arbitrary bodies, truncated and
dropped answers.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from langchain_nanobanana.testing._responses import (
    HTML_500,
    HTML_502,
    JSON,
    Response,
    error_response,
    json_response,
    redirect_html,
)
from langchain_nanobanana.testing._state import Fault

if TYPE_CHECKING:
    from langchain_nanobanana.testing._handler import Handler

__all__ = ["DRIP_GAP", "gzipped", "raw_answer", "serve_fault"]

DRIP_GAP = 0.1
"""Target seconds between two pieces of a ``slow`` answer (never above 0.2 s once padded)."""

_REDIRECTS = frozenset({"301", "302", "307", "308"})


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value)) if value else default
    except ValueError:  # an HTTP-date: use the default
        return default


def gzipped(resp: Response) -> Response:
    """``resp`` with its body gzip-compressed and ``Content-Encoding: gzip`` (what a compressing
    proxy sends).
    """
    headers = {**resp.headers, "Content-Encoding": "gzip"}
    return Response(resp.status, gzip.compress(resp.body), resp.content_type, headers)


def _with_surrogates(value: Any) -> Any:
    """``value`` with a lone surrogate (U+D800) appended to every ``prompt`` string."""
    if isinstance(value, dict):
        return {
            k: v + "\ud800" if k == "prompt" and isinstance(v, str) else _with_surrogates(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_with_surrogates(v) for v in value]
    return value


def _echo(handler: Handler, status: int) -> Response:
    """An error page of a debugging proxy that echoes the request headers (the token too)."""
    seen = {k: v for k, v in handler.headers.items()}
    auth = handler.headers.get("authorization", "")
    body = {
        "success": False,
        "error": {"code": "token_mismatched", "message": f"Bad request; you sent {auth}"},
        "headers": seen,
        "trace_id": str(uuid.uuid4()),
    }
    return Response(status, json.dumps(body).encode(), JSON, {"X-Echo-Authorization": auth})


def raw_answer(handler: Handler, resp: Response) -> bytes:
    """The exact bytes of ``resp`` on the wire: status line, headers, blank line, body.

    Header names are sent as spelled in ``resp.headers``; ``HEAD`` requests get no body.
    """
    phrase = handler.responses.get(resp.status, ("",))[0]
    lines = [
        f"{handler.protocol_version} {resp.status} {phrase}",
        f"Server: {handler.version_string()}",
        f"Date: {handler.date_time_string()}",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
        *(f"{name}: {value}" for name, value in resp.headers.items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if handler.command == "HEAD" else head + resp.body


def _drip(handler: Handler, resp: Response, seconds: float) -> None:
    """Send ``resp`` in ``seconds / DRIP_GAP + 1`` pieces, about ``DRIP_GAP`` seconds apart.

    A JSON body too short to give every piece a byte is padded with trailing spaces (still the
    same JSON), so no gap exceeds ``DRIP_GAP`` whatever ``seconds`` is.
    """
    gaps = max(1, round(seconds / DRIP_GAP))
    raw = raw_answer(handler, resp)
    if len(raw) < gaps + 1 and resp.content_type == JSON and handler.command != "HEAD":
        resp = Response(
            resp.status, resp.body + b" " * (gaps + 1 - len(raw)), resp.content_type, resp.headers
        )
        raw = raw_answer(handler, resp)
    pieces = min(gaps + 1, len(raw))
    bounds = [i * len(raw) // pieces for i in range(pieces + 1)]
    gap = seconds / max(1, pieces - 1)
    stopping = handler.fake._stopping
    start = time.monotonic()
    for i in range(pieces):
        delay = start + i * gap - time.monotonic()
        if i and delay > 0 and stopping.wait(delay):
            handler.close_connection = True
            return
        handler.wfile.write(raw[bounds[i] : bounds[i + 1]])


def serve_fault(handler: Handler, fault: Fault, path: str, body: object, arrived: float) -> None:
    """Answer the current request with ``fault`` (see ``FakeNanoBananaServer.inject_fault``).

    Args:
        handler: the request handler (its request body is already read).
        fault: the fault taken for this request.
        path: the API path with any ``path_prefix`` removed.
        body: the parsed JSON body (or the handler's "not JSON" marker).
        arrived: ``time.monotonic()`` at arrival, seconds.

    """
    fake = handler.fake
    shape = fake.error_shape
    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    kind = fault.kind
    if kind == "400":  # a rule the API enforces that no client can check (e.g. content)
        handler.write(
            error_response(400, "token_mismatched", "The prompt was rejected.", extra, shape=shape)
        )
    elif kind == "429":
        handler.write(
            error_response(429, "too_many_requests", "Too many requests.", extra, shape=shape)
        )
    elif kind == "429_lower":
        lower = {"retry-after": fault.retry_after or "1"}
        handler.write(
            error_response(429, "too_many_requests", "Too many requests.", lower, shape=shape)
        )
    elif kind in ("500", "503"):
        msg = "Internal server error." if kind == "500" else "Service temporarily unavailable."
        handler.write(error_response(int(kind), "api_error", msg, extra, shape=shape))
    elif kind == "502":
        handler.write(Response(502, HTML_502, "text/html", extra))
    elif kind == "html":
        handler.write(Response(500, HTML_500, "text/html; charset=utf-8", extra))
    elif kind in ("timeout", "slow"):
        if kind == "timeout" and fake._stopping.wait(_seconds(fault.retry_after, 30.0)):
            handler.close_connection = True
            return
        resp = handler.process(path, body, arrived)
        if resp is not None and kind == "slow":
            _drip(handler, resp, _seconds(fault.retry_after, 10.0))
        elif resp is not None:
            handler.write(resp)
    else:  # the request may have been processed (billed) before this answer replaced it
        resp = handler.process(path, body, arrived) if fault.create_task else None
        if kind == "malformed":
            handler.write(Response(200, b'{"success": tru'))
        elif kind == "truncated":
            if resp is None:
                resp = json_response(200, {"success": True, "task_id": str(uuid.uuid4())})
            handler.write(resp, truncate=True)
        elif kind in _REDIRECTS:
            location = {"Location": f"{fake.base_url}{handler.path}", **extra}
            status = int(kind)
            handler.write(Response(status, redirect_html(status), "text/html", location))
        elif kind == "gzip":
            handler.write(gzipped(resp or json_response(200, {"success": True})))
        elif kind == "surrogates":
            if resp is not None:
                data = _with_surrogates(json.loads(resp.body))
                resp = Response(resp.status, json.dumps(data).encode(), JSON, resp.headers)
                handler.write(resp)
        elif kind == "echo":
            handler.write(_echo(handler, fault.status if fault.status != 200 else 400))
        elif kind == "body":
            headers = dict(fault.headers)
            ctype = next((k for k in headers if k.lower() == "content-type"), None)
            content_type = headers.pop(ctype) if ctype is not None else JSON
            answer = Response(fault.status, fault.body, content_type, headers)
            if fault.retry_after:  # a dripping answer (e.g. a 3xx whose body never ends)
                _drip(handler, answer, _seconds(fault.retry_after, 10.0))
            else:
                handler.write(answer)
        else:  # drop: close without answering
            handler.close_connection = True
