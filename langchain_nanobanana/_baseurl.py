"""Base URLs: one normal form for whatever spelling a user gives, refused when unsafe.

:func:`normalize_base_url` brings ``…/./``, ``…/v1/../v1``, percent-encoding, an IDN host or a
trailing ``?`` to the one form ``requests`` sends; userinfo, a query, and plain ``http://`` to a
host that is not loopback are refused (the token never travels in clear text).
"""

from __future__ import annotations

import ipaddress
import posixpath
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["is_loopback_host", "normalize_base_url", "origin"]


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


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (for messages: no path, query or userinfo)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{parts.hostname}{':' + str(port) if port else ''}"
