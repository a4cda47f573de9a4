"""Answers the simulator sends: the documented error body in its four shapes, JSON and HTML bodies.

Shared by the request handler, the fault kinds and the task records, so every error body the
simulator builds follows the same ``error_shape`` knob (error shapes: see ``error_shape`` below).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ERROR_SHAPES",
    "HTML_500",
    "HTML_502",
    "JSON",
    "ErrorShape",
    "Response",
    "error_body",
    "error_response",
    "json_response",
    "redirect_html",
]

ErrorShape = Literal["object", "string", "null", "missing"]
"""How an error body carries ``error``: ``{"code", "message"}`` (documented in the Nano
Banana Images API Integration Guide, https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e),
the bare message string, ``null``, or no ``error`` key (all three tolerated by the vendor's Python
SDK ``acedatacloud``)."""

ERROR_SHAPES: tuple[str, ...] = ("object", "string", "null", "missing")
"""Every :data:`ErrorShape` value."""

JSON = "application/json"
"""Content type of every JSON answer."""

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
"""An nginx-like 502 page (a proxy in front of the API)."""

HTML_500 = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1><p>The server encountered an internal error.</p>"
    b"</body></html>"
)
"""A framework-like 500 page."""

_REDIRECT_PHRASES = {
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
}


def redirect_html(status: int) -> bytes:
    """An nginx-like HTML page for redirect ``status`` (301, 302, 307 or 308)."""
    title = f"{status} {_REDIRECT_PHRASES.get(status, 'Redirect')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


@dataclass
class Response:
    """One HTTP answer before it is written.

    Attributes:
        status: HTTP status code.
        body: the body bytes (``Content-Length`` is their length).
        content_type: the ``Content-Type`` header value.
        headers: extra headers, names sent exactly as spelled here (case preserved on the wire).

    """

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer of ``payload`` (serialised with ``json.dumps``, ASCII only)."""
    return Response(status, json.dumps(payload).encode(), JSON, dict(headers or {}))


def error_body(code: str, message: str, shape: str = "object", **fields: Any) -> dict[str, Any]:
    """The documented error body ``{"success": false, "error": {...}, ...fields}``.

    Args:
        code: the documented error code, e.g. ``"token_mismatched"``.
        message: a human message.
        shape: an :data:`ErrorShape`; unknown values count as ``"object"``.
        fields: further keys (e.g. ``task_id``, ``trace_id``), after ``error``.

    """
    body: dict[str, Any] = {"success": False}
    if shape == "string":
        body["error"] = message
    elif shape == "null":
        body["error"] = None
    elif shape != "missing":
        body["error"] = {"code": code, "message": message}
    body.update(fields)
    return body


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    shape: str = "object",
) -> Response:
    """An error answer: :func:`error_body` with a fresh ``trace_id`` (a uuid4 string)."""
    body = error_body(code, message, shape, trace_id=str(uuid.uuid4()))
    return json_response(status, body, headers)
