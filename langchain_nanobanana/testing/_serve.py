"""Serving a stdlib HTTP server from a daemon thread: shared by the simulator and the webhook
receiver, so both bind, name their thread and report their origin the same way.
"""

from __future__ import annotations

import threading
from http.server import HTTPServer

__all__ = ["serve_in_thread"]


def serve_in_thread(
    httpd: HTTPServer, *, name: str, poll_interval: float
) -> tuple[str, threading.Thread]:
    """Start ``httpd.serve_forever`` in a daemon thread named ``{name}-{port}``.

    Args:
        httpd: A bound server.
        name: Thread name prefix.
        poll_interval: Seconds between shutdown checks of ``serve_forever`` (how fast ``stop``
            returns).

    Returns:
        ``("http://HOST:PORT", thread)``; a wildcard bind is shown as ``127.0.0.1`` and an IPv6
        host in brackets.

    """
    host, port = str(httpd.server_address[0]), int(httpd.server_address[1])
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": poll_interval},
        daemon=True,
        name=f"{name}-{port}",
    )
    thread.start()
    return f"http://{shown}:{port}", thread
