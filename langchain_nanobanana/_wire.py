"""Reading what the world's HTTP sends back: bodies under a byte cap and a deadline, decoded
when a proxy compressed them anyway, scrubbed of the token, and free of lone surrogates.

Used by ``_transport`` for every answer (API answers and image downloads). No decisions about
errors here beyond "the bytes could not be read" (:class:`BodyReadError`) and "too many bytes"
(:class:`~langchain_nanobanana.errors.ResponseTooLargeError`).

Sources: content codings ``gzip``/``x-gzip``/``deflate``/``identity`` (RFC 9110 8.4.1), lone
surrogates are not Unicode scalar values (RFC 8259 8.2: "the behavior of software that receives
JSON texts containing such values is unpredictable").
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterator
from typing import Any

import requests

from langchain_nanobanana.errors import ResponseTooLargeError

__all__ = [
    "CHUNK",
    "BodyReadError",
    "clean_surrogates",
    "iter_body",
    "read_body",
    "scrub",
    "scrub_answer",
]

CHUNK = 64 * 1024
"""Bytes asked of the socket per read."""

REDACTED = b"<redacted>"
_MIN_SECRET = 8
"""Shorter secrets are not scrubbed from bodies (they would match ordinary text); real API
tokens are 32+ characters."""


class BodyReadError(Exception):
    """The body could not be read (truncated, dropped, past its deadline, undecodable).

    ``args[0]`` is a short description without URLs, headers or the token.
    """


class _Decoder:
    """Incremental decoder of one ``Content-Encoding`` chain whose output is bounded per call.

    ``feed(data, room)`` returns at most ``room + 1`` decoded bytes, so a compression bomb is
    stopped by the caller's cap after decoding at most one byte too many, never the whole bomb.
    """

    def __init__(self, encoding: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        self._steps: list[Any] = []
        for coding in reversed(codings):  # the last applied coding is undone first
            if coding in ("gzip", "x-gzip"):
                self._steps.append(zlib.decompressobj(16 + zlib.MAX_WBITS))
            elif coding == "deflate":
                self._steps.append(None)  # zlib or raw deflate: decided on the first bytes
            else:
                raise BodyReadError(f"answer in an unsupported Content-Encoding {coding[:20]!r}")
        self.active = bool(self._steps)
        self._pending: list[bytes] = [b""] * len(self._steps)

    def feed(self, data: bytes, room: int) -> bytes:
        for i in range(len(self._steps)):
            data = self._step(i, self._pending[i] + data, room)
        return data

    def _step(self, i: int, data: bytes, room: int) -> bytes:
        step = self._steps[i]
        if step is None:
            if not data:
                return b""
            step = zlib.decompressobj(zlib.MAX_WBITS if (data[0] & 0x0F) == 8 else -zlib.MAX_WBITS)
            self._steps[i] = step
        try:
            out = step.decompress(data, room + 1)
        except zlib.error:
            raise BodyReadError("answer cannot be decoded (bad compressed data)") from None
        self._pending[i] = step.unconsumed_tail
        return bytes(out)

    def drained(self) -> bool:
        return not any(self._pending)

    def complete(self) -> bool:
        """Whether every compressed stream reached its end (else the body was cut short)."""
        return all(step is not None and step.eof for step in self._steps)


def iter_body(
    response: requests.Response,
    *,
    deadline: float,
    max_bytes: int,
    what: str = "answer",
) -> Iterator[bytes]:
    """Yield the decoded body of a streamed ``response`` chunk by chunk.

    Reads with ``read1`` (whatever has arrived), so a dripping server cannot stretch the read
    past ``deadline`` (``time.monotonic()`` seconds); a ``gzip``/``deflate`` body (a proxy may
    compress though we asked for ``identity``) is decoded here and ``max_bytes`` counts the
    DECODED bytes (a compression bomb stops at the cap). The response is closed at the end.

    Raises:
        ResponseTooLargeError: Over ``max_bytes`` (a plain ``Content-Length`` is checked first).
        BodyReadError: Truncated, dropped, past the deadline, or not decodable.

    """
    raw = response.raw
    size = 0
    got_raw = False
    try:
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        length = response.headers.get("content-length", "")
        if not decoder.active and length.isdigit() and int(length) > max_bytes:
            raise _too_large(response, f"{what} of {length} bytes is over {max_bytes}", max_bytes)
        read = getattr(raw, "read1", None) or raw.read
        while True:
            if time.monotonic() > deadline:
                raise BodyReadError(f"{what} still arriving after its deadline ({size} bytes read)")
            got = read(CHUNK)
            got_raw = got_raw or bool(got)
            chunk = got
            while True:
                data = decoder.feed(chunk, max_bytes - size) if decoder.active else chunk
                size += len(data)
                if size > max_bytes:
                    raise _too_large(response, f"{what} is over {max_bytes} bytes", max_bytes)
                if data:
                    yield data
                if not decoder.active or decoder.drained():
                    break
                chunk = b""
            if not got:
                break
        if got_raw and decoder.active and not decoder.complete():
            raise BodyReadError(f"truncated compressed {what} ({size} bytes decoded)")
    except (ResponseTooLargeError, BodyReadError):
        raise
    except Exception as exc:  # requests/urllib3/OSError/ValueError: all mean "not read"
        raise BodyReadError(f"truncated {what} ({type(exc).__name__})") from None
    finally:
        response.close()


def _too_large(response: requests.Response, message: str, limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(message, status_code=response.status_code, limit=limit)


def read_body(
    response: requests.Response, *, deadline: float, max_bytes: int, what: str = "answer"
) -> bytes:
    """The whole decoded body (see :func:`iter_body` for the rules and the errors)."""
    return b"".join(iter_body(response, deadline=deadline, max_bytes=max_bytes, what=what))


# -- the token out of every text we build from an answer ------------------------------------


def _forms(secret: str) -> list[bytes]:
    """``secret`` as an answer may carry it: raw UTF-8, JSON-escaped, percent-encoded."""
    from json import dumps
    from urllib.parse import quote

    forms = {secret.encode(), dumps(secret)[1:-1].encode(), quote(secret, safe="").encode()}
    forms.add(dumps(secret, ensure_ascii=True).replace("/", "\\/")[1:-1].encode())
    return sorted(forms, key=len, reverse=True)


def scrub(body: bytes, secret: str | None) -> bytes:
    """``body`` with every form of ``secret`` (and so ``Bearer <secret>``) replaced by
    ``<redacted>``. A secret shorter than 8 characters is left alone (it would match text).
    """
    if not secret or len(secret) < _MIN_SECRET or not body:
        return body
    return _scrub(body, _forms(secret))


def _scrub(body: bytes, forms: list[bytes]) -> bytes:
    for form in forms:
        if form in body:
            body = body.replace(form, REDACTED)
    return body


def scrub_answer(
    headers: dict[str, str], body: bytes, secret: str | None
) -> tuple[dict[str, str], bytes]:
    """An answer's header values and body scrubbed like :func:`scrub` (a proxy may echo
    ``Authorization``; the forms of the secret are computed once per answer).
    """
    if not secret or len(secret) < _MIN_SECRET:
        return headers, body
    forms = _forms(secret)
    clean = {
        k: _scrub(v.encode("latin-1", "replace"), forms).decode("latin-1")
        for k, v in headers.items()
    }
    return clean, (_scrub(body, forms) if body else body)


# -- lone surrogates ----------------------------------------------------------------------------

# In JSON text: an escaped backslash (kept), a valid surrogate pair (kept), or a lone surrogate
# escape (replaced by U+FFFD's escape). Scanning left to right keeps ``\\ud800`` (an escaped
# backslash before the letters "ud800") untouched.
_ESCAPES = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
# Surrogates encoded as UTF-8 bytes (invalid UTF-8, but json.loads(bytes) lets them through).
_RAW = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")


def _escape(match: re.Match[bytes]) -> bytes:
    text = match.group(0)
    return text if len(text) in (2, 12) else b"\\ufffd"


def clean_surrogates(body: bytes) -> bytes:
    r"""``body`` (JSON text) with every lone surrogate replaced by U+FFFD, escaped or raw.

    ``json.loads`` accepts ``"\ud800"`` and returns a ``str`` that later breaks UTF-8 encoding
    (SQLite, files, logs). Paired surrogates (``"\ud83d\ude00"``) are kept. Fast path: bodies
    without ``\u`` escapes or ``0xED`` bytes are returned unchanged.
    """
    if b"\\u" in body and re.search(rb"\\u[dD][89a-fA-F]", body):
        body = _ESCAPES.sub(_escape, body)
    if b"\xed" in body:
        body = _RAW.sub("\ufffd".encode(), body)
    return body
