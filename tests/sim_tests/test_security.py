"""Security: the token never leaks; URLs, downloads and local files are held to SPEC's rules.

The token is checked against every surface a user, a model or a tracer sees: ``repr``/``str`` of the
client, tools, toolkit, Runnable and every error (with its cause chain); every log record down to
urllib3's DEBUG lines; LangChain's debug console; every argument of every callback (tools, chains,
chat model, custom progress events) for successes and errors; ``astream_events``; ``dumpd``; the
tools' schemas as sent to a model. Everything runs on the simulator over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import traceback
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_debug
from langchain_core.load import dumpd, dumps
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import SecretStr

from langchain_nanobanana import (
    APIConnectionError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ImageResult,
    InvalidImageError,
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaError,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
    NanoBananaToolkit,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana._transport import RedactedHeader
from langchain_nanobanana.images import (
    MAX_IMAGE_BYTES,
    download_image,
    safe_filename,
    to_image_url,
    validate_image_url,
)
from langchain_nanobanana.results import GeneratedImage
from langchain_nanobanana.testing import FakeNanoBananaServer, make_png, padded_png
from langchain_nanobanana.testing.chat import ScriptedChatModel, last_image_urls, tool_call
from tests.helpers import SIM_TOKEN, fast_client, free_port, invoke_tool, make_image_dirs

SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
WRONG_TOKEN = "wrong-token-also-secret-31d7"


def secrets(sim: FakeNanoBananaServer) -> list[str]:
    assert sim.token
    return [sim.token, WRONG_TOKEN]


def assert_clean(thing: object, sim: FakeNanoBananaServer, where: str = "") -> None:
    text = thing if isinstance(thing, str) else repr(thing)
    for secret in secrets(sim):
        assert secret not in text, f"token leaked in {where or type(thing).__name__}"


def error_text(error: BaseException) -> str:
    """``str``, ``repr`` and the full traceback (frame locals included, as
    ``traceback`` shows them with ``capture_locals=True``) of an error and its cause chain."""
    shown = traceback.TracebackException(
        type(error), error, error.__traceback__, capture_locals=True
    )
    parts = ["".join(shown.format())]
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), repr(getattr(seen, "__dict__", {}))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


_ATOMS = (int, float, bool, type(None), complex)


def reachable_texts(root: object, depth: int = 8) -> list[tuple[str, str]]:
    """``(path, text)`` for everything reachable from ``root`` by attributes, up to ``depth``
    levels (``error.__cause__.request.headers._store[...][1]`` is 6 deep): exceptions
    (``args``, ``__cause__``, ``__context__``, ``__notes__``, every attribute), containers
    (keys and items), objects' ``__dict__`` and ``__slots__`` (so a chained ``requests``
    exception's ``.request.headers`` is reached). A ``str`` is taken by its real value, not its
    ``repr`` (a ``str`` subclass may redact its ``repr`` but still *is* the token); a
    ``SecretStr`` by its ``str`` (SPEC: it counts as safe). Modules, classes, functions and
    frames are not entered (frame locals are checked as ``traceback`` shows them).
    """
    out: list[tuple[str, str]] = []
    seen: set[int] = set()

    def visit(obj: object, path: str, level: int) -> None:
        if id(obj) in seen or isinstance(obj, _ATOMS):
            return
        seen.add(id(obj))
        if isinstance(obj, str):
            out.append((path, str.__str__(obj)))
            return
        if isinstance(obj, (bytes, bytearray)):
            out.append((path, bytes(obj).decode("latin-1")))
            return
        if isinstance(obj, SecretStr):
            out.append((path, str(obj)))
            return
        if isinstance(obj, (types.ModuleType, type, types.FunctionType, types.MethodType)):
            return
        if isinstance(obj, (types.FrameType, types.TracebackType, types.CodeType)):
            return
        try:
            out.append((path, repr(obj)))
        except Exception as exc:  # pragma: no cover - a repr that fails is not a leak
            out.append((path, f"<repr failed: {type(exc).__name__}>"))
        if level >= depth:
            return
        children: list[tuple[str, object]] = []
        if isinstance(obj, BaseException):
            children += [(f"{path}.args", obj.args), (f"{path}.__cause__", obj.__cause__)]
            children += [(f"{path}.__context__", obj.__context__)]
            children += [(f"{path}.__notes__", getattr(obj, "__notes__", None))]
        if isinstance(obj, dict):
            for key, value in list(obj.items()):
                children += [(f"{path}[key]", key), (f"{path}[{key!r}]", value)]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children += [(f"{path}[{i}]", item) for i, item in enumerate(list(obj))]
        for name, value in list(getattr(obj, "__dict__", {}).items()):
            children.append((f"{path}.{name}", value))
        for klass in type(obj).__mro__:
            for name in getattr(klass, "__slots__", ()):
                if isinstance(name, str) and hasattr(obj, name):
                    children.append((f"{path}.{name}", getattr(obj, name, None)))
        for child_path, child in children:
            visit(child, child_path, level + 1)

    visit(root, "error", 0)
    return out


def assert_token_unreachable(error: BaseException, token: str) -> None:
    """The token is nowhere reachable from ``error`` (attributes, chains, shown locals)."""
    for path, text in reachable_texts(error):
        assert token not in text, f"token reachable at {path}"
    assert token not in error_text(error), "token in the traceback (capture_locals=True)"


class Recorder(BaseCallbackHandler):
    """Records every argument of every ``on_*`` callback LangChain makes."""

    raise_error = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _record(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((name, args, kwargs))

    def names(self) -> set[str]:
        return {name for name, _, _ in self.calls}


def _make_hook(name: str) -> Any:
    def hook(self: Recorder, *args: Any, **kwargs: Any) -> None:
        self._record(name, args, kwargs)

    return hook


for _name in [n for n in dir(BaseCallbackHandler) if n.startswith("on_")]:
    setattr(Recorder, _name, _make_hook(_name))


def run_tool(tool: BaseTool, args: dict[str, Any], recorder: Recorder) -> ToolMessage:
    return invoke_tool(tool, args, {"callbacks": [recorder]})


# -- the token never appears -----------------------------------------------------------------------


def test_token_absent_from_reprs_schemas_and_serialization(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    toolkit = NanoBananaToolkit(client=client, download_dir="out")
    tools = toolkit.get_tools()
    generator = NanoBananaImageGenerator(client=client, aspect_ratio="3:2")
    surfaces: dict[str, object] = {
        "repr(client)": repr(client),
        "str(client)": str(client),
        "vars(client)": repr(vars(client)),
        "session headers": repr(dict(client.session.headers)),
        "toolkit": repr(toolkit),
        "toolkit dump": toolkit.model_dump_json(),
        "generator": repr(generator),
        "generator dumpd": json.dumps(dumpd(generator), default=repr),
        "generator dumps": dumps(generator),
        "generator schema": json.dumps(generator.get_input_jsonschema(), default=repr),
    }
    for tool in tools:
        surfaces[f"{tool.name} repr"] = repr(tool)
        surfaces[f"{tool.name} args"] = json.dumps(tool.args)
        surfaces[f"{tool.name} call schema"] = json.dumps(
            tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        )
        surfaces[f"{tool.name} openai"] = json.dumps(convert_to_openai_tool(tool))
        surfaces[f"{tool.name} dumpd"] = json.dumps(dumpd(tool), default=repr)
        surfaces[f"{tool.name} dump"] = repr(tool.model_dump())
    for where, text in surfaces.items():
        assert_clean(text, sim, where)
    assert "authorization" not in {k.lower() for k in client.session.headers}
    assert "token=set" in repr(client)  # says whether one is configured, nothing more


def test_token_absent_from_every_error(sim: FakeNanoBananaServer) -> None:
    errors: list[BaseException] = []

    def capture(fn: Any) -> None:
        try:
            fn()
        except NanoBananaError as exc:
            errors.append(exc)
        else:  # pragma: no cover - each call below must fail
            raise AssertionError("expected an error")

    client = fast_client(sim, max_retries=0)
    wrong = fast_client(sim, WRONG_TOKEN)
    capture(lambda: wrong.generate("a kite"))  # 401
    capture(lambda: NanoBananaClient(base_url=sim.base_url).generate("a kite"))  # no token
    sim.inject_fault("429", path=SUBMIT, retry_after="0")
    capture(lambda: client.generate("a kite"))
    for kind in ("500", "html", "malformed", "truncated", "drop"):
        sim.inject_fault(kind, path=SUBMIT)
        capture(lambda: client.generate("a kite"))
    sim.fail_next_tasks(1)
    capture(lambda: client.generate("a kite"))
    sim.task_duration = 30.0
    capture(lambda: fast_client(sim, max_wait=0.1).generate("a kite"))
    capture(lambda: client.get_task("no-such-task"))
    closed = f"http://127.0.0.1:{free_port()}"  # connection refused
    capture(lambda: NanoBananaClient(sim.token, base_url=closed, backoff_factor=0).generate("x"))
    assert len(errors) == 12
    assert {type(e).__name__ for e in errors} >= {
        "AuthenticationError",
        "RateLimitError",
        "SubmissionUncertainError",
        "NotFoundError",
        "TaskFailedError",
        "TaskTimeoutError",
        "APIConnectionError",
    }
    for error in errors:
        assert_clean(error_text(error), sim, type(error).__name__)
        for secret in secrets(sim):
            assert_token_unreachable(error, secret)


def test_token_walk_is_not_vacuous() -> None:
    """The walk below finds a token that a raw ``requests`` exception would carry in its
    ``.request.headers`` (even with a redacted ``repr``), and one in a frame's locals."""
    request = requests.Request(
        "POST",
        "http://127.0.0.1:1/nano-banana/images",
        headers={"authorization": RedactedHeader("Bearer " + SIM_TOKEN)},
    ).prepare()
    error = APIConnectionError("Could not connect")
    error.__cause__ = requests.ConnectionError("refused", request=request)
    assert SIM_TOKEN not in repr(request.headers)  # the repr alone would look clean
    with pytest.raises(AssertionError, match=r"reachable at .*__cause__\.request\.headers"):
        assert_token_unreachable(error, SIM_TOKEN)

    def leaky(token: str) -> None:
        raise APIConnectionError("boom")

    try:
        leaky(SIM_TOKEN)
    except APIConnectionError as exc:
        with pytest.raises(AssertionError, match="capture_locals"):
            assert_token_unreachable(exc, SIM_TOKEN)


def _refused() -> NanoBananaClient:
    return NanoBananaClient(
        SIM_TOKEN, base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_factor=0
    )


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("refused", APIConnectionError),
        ("refused_read", APIConnectionError),
        ("drop_submission", SubmissionUncertainError),
        ("timeout_submission", SubmissionUncertainError),
        ("truncated_submission", SubmissionUncertainError),
        ("drop_read", APIConnectionError),
        ("timeout_read", APIConnectionError),
        ("api_error_submission", SubmissionUncertainError),
        ("api_error_read", BadRequestError),
        ("poll_timeout_after_drops", TaskTimeoutError),
        ("async_drop_submission", SubmissionUncertainError),
        ("async_refused", APIConnectionError),
    ],
)
def test_token_unreachable_from_raised_errors(
    sim: FakeNanoBananaServer, failure: str, expected: type[Exception]
) -> None:
    """SPEC Part 3 "The token": for transport failures (refused, dropped, timed out, truncated)
    and API errors, nothing reachable from the raised error holds the token: its cause and
    context chains, every attribute a few levels down (``.request.headers`` included), and the
    frame locals ``traceback`` shows with ``capture_locals=True``."""
    client = fast_client(sim, max_retries=0, timeout=0.3, max_wait=0.5)
    task_id = client.generate("a kite", wait=False).task_id or ""
    calls: dict[str, Any] = {
        "refused": lambda: _refused().generate("a kite"),
        "refused_read": lambda: _refused().get_task(task_id),
        "drop_submission": lambda: client.generate("a kite"),
        "timeout_submission": lambda: client.generate("a kite"),
        "truncated_submission": lambda: client.generate("a kite"),
        "drop_read": lambda: client.get_task(task_id),
        "timeout_read": lambda: client.get_task(task_id),
        "api_error_submission": lambda: client.generate("a kite"),
        "api_error_read": lambda: client.get_task(""),
        "poll_timeout_after_drops": lambda: client.poll_task(task_id),
        "async_drop_submission": lambda: asyncio.run(client.agenerate("a kite")),
        "async_refused": lambda: asyncio.run(_refused().agenerate("a kite")),
    }
    fault = {
        "drop_submission": ("drop", SUBMIT),
        "async_drop_submission": ("drop", SUBMIT),
        "timeout_submission": ("timeout", SUBMIT),
        "truncated_submission": ("truncated", SUBMIT),
        "drop_read": ("drop", TASKS),
        "timeout_read": ("timeout", TASKS),
        "api_error_submission": ("500", SUBMIT),
        "poll_timeout_after_drops": ("drop", TASKS),
    }.get(failure)
    if fault is not None:
        sim.inject_fault(fault[0], path=fault[1], count=50, retry_after="1")
    with pytest.raises(expected) as info:
        calls[failure]()
    error = info.value
    if failure == "poll_timeout_after_drops":
        assert isinstance(error.__cause__, APIConnectionError)  # the transport failure, kept
    if failure == "api_error_submission":
        assert isinstance(error.__cause__, NanoBananaError)
    assert_token_unreachable(error, SIM_TOKEN)
    sim.clear_faults()


def test_token_absent_from_logs_even_at_debug(
    sim: FakeNanoBananaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    client = fast_client(sim)
    sim.inject_fault("429", count=2, path=SUBMIT)  # urllib3: "Retry: <url>"
    sim.inject_fault("drop", count=2, path=TASKS)  # urllib3: "Retrying (...) after ..."
    client.generate("a kite")
    with pytest.raises(AuthenticationError):
        fast_client(sim, WRONG_TOKEN).generate("a kite")
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Retry: ") for m in messages)
    assert any(m.startswith("Retrying (") for m in messages)
    assert any('"POST /nano-banana/images HTTP/1.1"' in m for m in messages)
    for record in caplog.records:
        assert_clean(record.getMessage(), sim, f"log {record.name}")
        assert_clean(repr(record.args), sim, f"log args {record.name}")


def test_token_absent_from_langchain_debug_output(
    sim: FakeNanoBananaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    set_debug(True)
    try:
        client = fast_client(sim)
        NanoBananaImageGenerator(client=client).invoke("a kite")
        run_tool(NanoBananaGenerateTool(client=client), {"prompt": "a kite"}, Recorder())
    finally:
        set_debug(False)
    out = capsys.readouterr()
    assert "nano_banana_generate" in out.out  # the console tracer did print the runs
    assert_clean(out.out + out.err, sim, "set_debug console")


def test_token_absent_from_every_callback(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    recorder = Recorder()
    client = fast_client(sim, max_retries=0)
    wrong = fast_client(sim, WRONG_TOKEN)
    generate = NanoBananaGenerateTool(client=client, download_dir=str(tmp_path))
    edit = NanoBananaEditTool(client=client)
    generator = NanoBananaImageGenerator(client=client)

    ok = run_tool(generate, {"prompt": "a kite"}, recorder)
    assert ok.status != "error"
    sim.fail_next_tasks(1)
    assert run_tool(generate, {"prompt": "a kite"}, recorder).status == "error"
    sim.inject_fault("503", path=SUBMIT)
    with pytest.raises(SubmissionUncertainError):  # raised: the model must not resubmit
        run_tool(generate, {"prompt": "a kite"}, recorder)
    assert run_tool(generate, {"prompt": "a kite", "aspect_ratio": "5:4"}, recorder).status == (
        "error"
    )
    edited = run_tool(edit, {"prompt": "bow tie", "image_urls": ok.artifact.urls}, recorder)
    assert edited.status != "error"
    assert run_tool(edit, {"prompt": "x", "image_urls": ["/etc/passwd"]}, recorder).status == (
        "error"
    )
    with pytest.raises(AuthenticationError):
        run_tool(NanoBananaGenerateTool(client=wrong), {"prompt": "a kite"}, recorder)
    sim.task_duration = 0.15  # a few pending rounds: progress events reach the recorder
    generator.invoke("a kite", {"callbacks": [recorder]})
    sim.fail_next_tasks(1)
    outcomes = generator.batch(
        ["one", "two", "three"], {"callbacks": [recorder]}, return_exceptions=True
    )
    assert sum(isinstance(o, TaskFailedError) for o in outcomes) == 1
    with pytest.raises(AuthenticationError):
        NanoBananaImageGenerator(client=wrong).invoke("a kite", {"callbacks": [recorder]})

    names = recorder.names()
    assert {"on_tool_start", "on_tool_end", "on_tool_error"} <= names
    assert {"on_chain_start", "on_chain_end", "on_chain_error", "on_custom_event"} <= names
    for name, args, kwargs in recorder.calls:
        assert_clean(repr(args) + repr(kwargs), sim, name)
        for value in (*args, *kwargs.values()):
            if isinstance(value, BaseException):
                assert_clean(error_text(value), sim, f"{name} error")


async def test_token_absent_from_agent_callbacks_and_events(sim: FakeNanoBananaServer) -> None:
    from langchain.agents import create_agent

    recorder = Recorder()
    client = fast_client(sim)
    model = ScriptedChatModel(
        steps=[
            tool_call("nano_banana_generate", {"prompt": "a kite"}, id="c1"),
            lambda messages: tool_call(
                "nano_banana_edit",
                {"prompt": "add a tail", "image_urls": last_image_urls(messages)},
                id="c2",
            ),
            tool_call("nano_banana_generate", {"prompt": "x", "count": 9}, id="c3"),
            AIMessage(content="done"),
        ]
    )
    agent = create_agent(model, NanoBananaToolkit(client=client).get_tools())
    events = [
        event
        async for event in agent.astream_events(
            {"messages": [HumanMessage("draw a kite")]},
            {"callbacks": [recorder]},
            version="v2",
        )
    ]
    assert any(e["event"] == "on_tool_end" for e in events)
    assert {"on_chat_model_start", "on_tool_start", "on_tool_end"} <= recorder.names()
    for event in events:
        assert_clean(repr(event), sim, event["event"])
    for name, args, kwargs in recorder.calls:
        assert_clean(repr(args) + repr(kwargs), sim, name)
    for messages in model.received:  # what the model itself saw
        assert_clean(repr(messages), sim, "model input")
    sim.task_duration = 0.2  # a few pending rounds, each with a progress event
    generator_events = [
        e async for e in NanoBananaImageGenerator(client=client).astream_events("a", version="v2")
    ]
    assert any(e["event"] == "on_custom_event" for e in generator_events)
    assert_clean(repr(generator_events), sim, "generator events")


# -- the token never travels in clear text, nor to another host -----------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.acedata.cloud",
        "http://api.xhuoapi.ai/v1",
        "http://127.0.0.1.nip.io:8765",
        "http://localhost.example.com",
        "http://127.0.0.1@evil.example.com",
        "http://evil.example.com#@127.0.0.1",
        "http://[::ffff:8.8.8.8]",
        "ftp://api.acedata.cloud",
        "file:///etc/passwd",
        "api.acedata.cloud",
        "https://",
        "https://api.acedata.cloud?x=1",
    ],
)
def test_base_url_refused(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"not allowed|must not"):
        NanoBananaClient("secret-token", base_url=base_url)
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", base_url)
    with pytest.raises(ValueError) as info:
        NanoBananaClient("secret-token")
    assert "secret-token" not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8765",
        "http://localhost:8765/v1",
        "http://[::1]:8765",
        "http://127.3.2.1",
        "https://api.acedata.cloud",
        "https://api.xhuoapi.ai/v1/",
    ],
)
def test_base_url_accepted(base_url: str) -> None:
    client = NanoBananaClient("t", base_url=base_url)
    assert client.base_url == base_url.rstrip("/")


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(307)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_token_not_forwarded_on_redirect_to_another_host(sim: FakeNanoBananaServer) -> None:
    """A 307 to another host (the simulator under the name "localhost") is never followed: the
    API requests never follow redirects, so neither the body nor the token travels on; the
    redirect is an error carrying its status (it may have run: look it up)."""
    port = sim.base_url.rsplit(":", 1)[1]
    handler = type("Handler", (_Redirect,), {"target": f"http://localhost:{port}"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = fast_client(sim, base_url=f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(APIResponseValidationError) as info:
            client.generate("a kite")
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.status_code == 307 and "not followed" in str(info.value)
    assert_token_unreachable(info.value, str(sim.token))
    assert sim.requests == []  # the other host received nothing at all
    assert sim.tasks == {}


def test_token_never_sent_to_image_hosts(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    client = fast_client(sim)
    tool = NanoBananaGenerateTool(client=client, download_dir=str(tmp_path))
    message = run_tool(tool, {"prompt": "a kite"}, Recorder())
    assert message.status != "error" and list(tmp_path.iterdir())
    downloads = [r for r in sim.requests if r.path.startswith("/files/")]
    assert downloads and all("authorization" not in r.headers for r in downloads)
    assert all("authorization" in r.headers for r in sim.requests_to(SUBMIT))


# -- downloads: http(s) only, size-capped, content-type checked, names sanitised ------------------


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a.png", "data:image/png;base64,AAAA", "//x/a.png"],
)
def test_download_refuses_non_http_urls(
    sim: FakeNanoBananaServer, url: str, tmp_path: Path
) -> None:
    with fast_client(sim) as client, pytest.raises(InvalidImageError):
        download_image(client._transport, url, tmp_path)
    result = ImageResult(status="succeeded", images=[GeneratedImage(image_url=url)])
    with pytest.raises(InvalidImageError):
        result.download(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_is_size_capped(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    url = f"{sim.base_url}/files/padded/200000.png"
    result = ImageResult(status="succeeded", task_id="t1", images=[GeneratedImage(image_url=url)])
    with pytest.raises(NanoBananaError, match="max_bytes"):
        result.download(tmp_path, max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    (path,) = result.download(tmp_path, max_bytes=200_000)
    assert path.stat().st_size == 200_000


def test_download_checks_content_type_and_magic(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    url = sim.image_url(8, 8)
    result = ImageResult(status="succeeded", task_id="t1", images=[GeneratedImage(image_url=url)])
    sim.inject_fault("malformed", path="/files/")  # 200 application/json instead of a PNG
    with pytest.raises(InvalidImageError, match="Content-Type"):
        result.download(tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert result.download(tmp_path)[0].read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "name",
    ["../../escape", "..\\..\\escape", "/etc/passwd", "a/../../b", "\x00../x", "CON", "..", ""],
)
def test_download_names_are_sanitised(sim: FakeNanoBananaServer, tmp_path: Path, name: str) -> None:
    target = tmp_path / "out"
    with fast_client(sim) as client:
        path = download_image(client._transport, sim.image_url(4, 4), target, filename=name)
    assert path.parent == target and path.resolve().parent == target.resolve()
    assert ".." not in path.name and "/" not in path.name and "\\" not in path.name
    assert path.suffix == ".png"
    assert os.listdir(tmp_path) == ["out"]  # nothing written outside the target
    assert safe_filename(name) == safe_filename(safe_filename(name))  # idempotent


# -- local paths in the edit tool: only under allowed_image_dir, off by default -------------------


@pytest.fixture
def image_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """``allowed/in.png`` and ``outside/secret.png``."""
    return make_image_dirs(tmp_path, "in.png", make_png(6, 4), make_png(6, 4))


def test_edit_tool_refuses_local_paths_by_default(
    sim: FakeNanoBananaServer, image_dirs: tuple[Path, Path]
) -> None:
    allowed, _ = image_dirs
    tool = NanoBananaEditTool(client=fast_client(sim))
    message = run_tool(tool, {"prompt": "x", "image_urls": [str(allowed / "in.png")]}, Recorder())
    assert message.status == "error" and "local file paths are not allowed" in message.content
    assert sim.requests == []


def test_edit_tool_reads_files_inside_allowed_dir(
    sim: FakeNanoBananaServer, image_dirs: tuple[Path, Path]
) -> None:
    allowed, _ = image_dirs
    tool = NanoBananaEditTool(client=fast_client(sim), allowed_image_dir=str(allowed))
    message = run_tool(tool, {"prompt": "x", "image_urls": [str(allowed / "in.png")]}, Recorder())
    assert message.status != "error"
    (submission,) = sim.requests_to(SUBMIT)
    assert isinstance(submission.json, dict)
    assert submission.json["image_urls"][0].startswith("data:image/png;base64,")


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink_file", "symlink_dir"])
def test_edit_tool_refuses_escapes(
    sim: FakeNanoBananaServer, image_dirs: tuple[Path, Path], escape: str
) -> None:
    allowed, outside = image_dirs
    if escape == "dotdot":
        path = str(allowed / ".." / "outside" / "secret.png")
    elif escape == "absolute":
        path = str(outside / "secret.png")
    elif escape == "symlink_file":
        (allowed / "link.png").symlink_to(outside / "secret.png")
        path = str(allowed / "link.png")
    else:
        (allowed / "sub").symlink_to(outside, target_is_directory=True)
        path = str(allowed / "sub" / "secret.png")
    tool = NanoBananaEditTool(client=fast_client(sim), allowed_image_dir=str(allowed))
    message = run_tool(tool, {"prompt": "x", "image_urls": [path]}, Recorder())
    assert message.status == "error" and "resolves outside" in message.content
    assert sim.requests == []


# -- data URIs: real base64 and image magic; the 10 MiB limit for every input form ----------------


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64,!!!notbase64!!!",
        "data:image/png;base64," + base64.b64encode(b"hello, not an image").decode(),
        "data:image/png;base64," + base64.b64encode(make_png(2, 2)).decode()[:-2],  # bad padding
        "data:image/png;base64," + base64.encodebytes(make_png(40, 40)).decode(),  # newlines inside
        "data:text/html;base64," + base64.b64encode(make_png(2, 2)).decode(),
        "data:image/png," + "x" * 20,
    ],
)
def test_bad_data_uris_refused_before_sending(sim: FakeNanoBananaServer, uri: str) -> None:
    with pytest.raises(InvalidImageError):
        validate_image_url(uri)
    with pytest.raises((InvalidImageError, ValueError)):
        fast_client(sim).edit("x", [uri])
    tool = NanoBananaEditTool(client=fast_client(sim))
    assert run_tool(tool, {"prompt": "x", "image_urls": [uri]}, Recorder()).status == "error"
    assert sim.requests == []


def test_ten_mib_limit_for_data_uris_bytes_and_paths(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    at_limit, over = padded_png(MAX_IMAGE_BYTES), padded_png(MAX_IMAGE_BYTES + 1)
    (tmp_path / "ok.png").write_bytes(at_limit)
    (tmp_path / "big.png").write_bytes(over)
    forms: dict[str, tuple[Any, Any]] = {
        "bytes": (at_limit, over),
        "path": (tmp_path / "ok.png", tmp_path / "big.png"),
        "str path": (str(tmp_path / "ok.png"), str(tmp_path / "big.png")),
        "data URI": (
            "data:image/png;base64," + base64.b64encode(at_limit).decode(),
            "data:image/png;base64," + base64.b64encode(over).decode(),
        ),
    }
    client = fast_client(sim)
    for form, (ok, too_big) in forms.items():
        assert to_image_url(ok).startswith("data:image/png;base64,"), form
        with pytest.raises(InvalidImageError, match=str(MAX_IMAGE_BYTES)):
            to_image_url(too_big)
        with pytest.raises(InvalidImageError):
            client.edit("x", [too_big])
    assert sim.requests == []  # all refused before any request
