"""The public surface: a snapshot of ``__all__``, and what ``import langchain_nanobanana`` costs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import langchain_nanobanana

EXPECTED_ALL = [
    "ASPECT_RATIOS",
    "APIConnectionError",
    "APIResponseValidationError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentModerationError",
    "GeneratedImage",
    "ImageRequest",
    "ImageResult",
    "InsufficientBalanceError",
    "InvalidImageError",
    "InvalidRequestError",
    "MODELS",
    "ModelInfo",
    "NanoBananaAPIError",
    "NanoBananaClient",
    "NanoBananaEditTool",
    "NanoBananaError",
    "NanoBananaGenerateTool",
    "NanoBananaImageGenerator",
    "NanoBananaTaskTool",
    "NanoBananaToolkit",
    "NotFoundError",
    "PermissionDeniedError",
    "RESOLUTIONS",
    "RateLimitError",
    "ResponseTooLargeError",
    "SAFE_TO_RETRY",
    "ServerError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskRecord",
    "TaskTimeoutError",
    "__version__",
]

#: SPEC Part 2 "Public names": each must stay exported.
SPEC_NAMES = {
    "NanoBananaClient",
    "NanoBananaGenerateTool",
    "NanoBananaEditTool",
    "NanoBananaTaskTool",
    "NanoBananaToolkit",
    "NanoBananaImageGenerator",
    "ImageRequest",
    "ImageResult",
    "GeneratedImage",
    "TaskRecord",
    "MODELS",
    "ASPECT_RATIOS",
    "RESOLUTIONS",
    "NanoBananaError",
    "NanoBananaAPIError",
    "BadRequestError",
    "AuthenticationError",
    "RateLimitError",
    "ServerError",
    "TaskFailedError",
    "TaskTimeoutError",
    "PermissionDeniedError",
    "InsufficientBalanceError",
    "ContentModerationError",
    "APIResponseValidationError",
    "SAFE_TO_RETRY",
}


def test_all_snapshot() -> None:
    assert sorted(langchain_nanobanana.__all__) == sorted(EXPECTED_ALL)
    assert len(set(langchain_nanobanana.__all__)) == len(langchain_nanobanana.__all__)
    assert not SPEC_NAMES - set(langchain_nanobanana.__all__)


def test_every_name_importable() -> None:
    for name in langchain_nanobanana.__all__:
        assert getattr(langchain_nanobanana, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from langchain_nanobanana import *", namespace)
    assert set(EXPECTED_ALL) <= set(namespace)
    assert isinstance(langchain_nanobanana.__version__, str)


def test_simulator_importable_from_testing() -> None:
    from langchain_nanobanana.testing import FakeNanoBananaServer

    assert FakeNanoBananaServer.__module__.startswith("langchain_nanobanana.testing")


def test_new_exports_are_what_they_say() -> None:
    from langchain_nanobanana import (
        SAFE_TO_RETRY,
        APIConnectionError,
        APIResponseValidationError,
        ContentModerationError,
        InsufficientBalanceError,
        NanoBananaAPIError,
        NanoBananaError,
        PermissionDeniedError,
        RateLimitError,
        ServerError,
        SubmissionUncertainError,
        TaskFailedError,
        TaskTimeoutError,
        errors,
    )

    # Only errors after which nothing was billed may be retried blindly.
    assert set(SAFE_TO_RETRY) == {RateLimitError, APIConnectionError}
    for unsafe in (ServerError, SubmissionUncertainError, TaskFailedError, TaskTimeoutError):
        assert not issubclass(unsafe, SAFE_TO_RETRY), unsafe
    assert issubclass(ContentModerationError, PermissionDeniedError)
    for cls in (PermissionDeniedError, InsufficientBalanceError, APIResponseValidationError):
        assert issubclass(cls, NanoBananaAPIError) and issubclass(cls, NanoBananaError)
    exported = set(langchain_nanobanana.__all__)
    assert {n for n in errors.__all__ if n[0].isupper()} <= exported


_PROBE = textwrap.dedent(
    """
    import json, sys, threading, traceback

    events = []

    def audit(event, args):
        if event.startswith("socket."):
            stack = "".join(traceback.format_stack(limit=12))
            events.append([event, repr(args)[:200], stack])

    sys.addaudithook(audit)
    import langchain_nanobanana  # noqa: F401

    bare = sorted(sys.modules)
    from langchain_nanobanana import *  # noqa: F403  every public name, imported lazily

    after_import = sorted(t.name for t in threading.enumerate())
    modules = sorted(sys.modules)
    # Building a client (session, adapters, poller object) sends nothing and starts no thread:
    # the poller thread starts with the first wait.
    client = langchain_nanobanana.NanoBananaClient("t", base_url="https://api.example.com")
    after_client = sorted(t.name for t in threading.enumerate())
    client.close()
    print(
        json.dumps(
            {
                "modules": modules,
                "bare": bare,
                "events": events,
                "threads": after_import,
                "threads_with_client": after_client,
            }
        )
    )
    """
)

#: Optional packages (extras ``agents``, ``demo``, ``progress``; test-only) and heavy ones that
#: ``import langchain_nanobanana`` must not pull in.
OPTIONAL_TOPS = (
    "langchain",
    "langgraph",
    "langchain_openai",
    "langchain_tests",
    "tqdm",
    "PIL",
    "numpy",
    "IPython",
    "ipywidgets",
    "hypothesis",
    "pytest",
)


def test_import_is_light_and_offline() -> None:
    """``import langchain_nanobanana`` (then every public name) in a fresh interpreter: no
    simulator, no server module, no agent framework, no optional package (tqdm, langchain...), no
    thread and no network; the bare import loads nothing heavy at all (names are lazy).
    """
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    modules = set(report["modules"])
    assert "langchain_nanobanana" in modules and "langchain_nanobanana.client" in modules
    # The bare import is lazy: no LangChain, no pydantic, no HTTP stack until a name is used.
    bare = {m.split(".")[0] for m in report["bare"]}
    assert not bare & {"langchain_core", "pydantic", "requests", "urllib3"}, bare
    forbidden = {
        "langchain_nanobanana.testing",
        "langchain_nanobanana.middleware",  # imports langchain.agents (extra "agents")
        "http.server",
        "socketserver",
    }
    assert not modules & forbidden
    for top in OPTIONAL_TOPS:
        assert not {m for m in modules if m == top or m.startswith(top + ".")}, top

    # No thread at import, none for a client that has not waited on anything yet.
    assert report["threads"] == ["MainThread"], report["threads"]
    assert report["threads_with_client"] == ["MainThread"], report["threads_with_client"]

    # No connection, no DNS lookup, no listening socket. The one socket allowed is urllib3's
    # import-time IPv6 probe (``HAS_IPV6``: bind to ::1 port 0, closed at once, nothing sent),
    # which every ``import requests`` makes.
    def from_urllib3_probe(stack: str) -> bool:
        return "urllib3/util/connection.py" in stack.replace("\\", "/") and "_has_ipv6" in stack

    unexpected = [e for e in report["events"] if not from_urllib3_probe(e[2])]
    assert unexpected == [], unexpected
    names = {e[0] for e in report["events"]}
    assert names <= {"socket.__new__", "socket.bind"}, names
    assert "socket.connect" not in names and "socket.getaddrinfo" not in names
