"""Run the simulator standalone: ``python -m langchain_nanobanana.testing [options]``.

Prints the base URL (with ``--path-prefix`` when given) and the token (and the environment
variables to point the package at it), then serves until Ctrl-C. ``--help`` lists every option.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence

from langchain_nanobanana.testing._responses import ERROR_SHAPES
from langchain_nanobanana.testing.server import FakeNanoBananaServer


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser (all options have defaults)."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_nanobanana.testing",
        description="Serve a loopback simulator of the Nano Banana Images API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port, 0 = any (default 8765)")
    parser.add_argument(
        "--token",
        default="sim-token",
        help="accepted bearer token; '' accepts any (default sim-token)",
    )
    parser.add_argument(
        "--task-duration", type=float, default=0.0, help="seconds until a task finishes (default 0)"
    )
    parser.add_argument(
        "--submit-latency",
        type=float,
        default=0.0,
        help="seconds each submission waits (default 0)",
    )
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="max API requests per second (default none)"
    )
    parser.add_argument(
        "--path-prefix",
        default="",
        help="also serve the API under this path, e.g. /v1 like the mirror "
        "https://api.xhuoapi.ai/v1 (XHuoAPI mirror guide, https://docs.xhuoapi.ai); "
        "the printed base URL includes it (default none)",
    )
    parser.add_argument(
        "--record-padding",
        type=int,
        default=0,
        help="bytes added to every task record answer (default 0)",
    )
    parser.add_argument(
        "--state-words",
        action="store_true",
        help="add state running/succeeded/failed to every task record",
    )
    parser.add_argument(
        "--error-shape",
        choices=ERROR_SHAPES,
        default="object",
        help="how error bodies carry 'error' (default object)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the simulator from ``argv`` and block until interrupted; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = args.path_prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        parser.error(f"--path-prefix {args.path_prefix!r} must start with '/', e.g. /v1")
    server = FakeNanoBananaServer(
        token=args.token or None,
        host=args.host,
        port=args.port,
        submit_latency=args.submit_latency,
        task_duration=args.task_duration,
        rate_limit=args.rate_limit,
        path_prefix=prefix,
        record_padding=args.record_padding,
        state_words=args.state_words,
        error_shape=args.error_shape,
    )
    server.start()
    try:  # a Ctrl-C while printing stops the server too
        base_url = server.base_url + prefix
        print(f"Nano Banana simulator listening on {base_url}")
        print(f"token: {server.token if server.token is not None else '(any token accepted)'}")
        print(f"  export ACEDATACLOUD_API_BASE_URL={base_url}")
        if server.token is not None:
            print(f"  export ACEDATACLOUD_API_TOKEN={server.token}")
        print("Press Ctrl-C to stop.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
