"""Behaviour of the three tools and the toolkit (SPEC "Tools"), against the loopback simulator.

Every tool call goes over real HTTP to ``FakeNanoBananaServer``; the assertions look at both sides:
the ``ToolMessage`` the model would get and the requests the simulator received. Most behaviours run
twice, through ``invoke`` and through ``ainvoke`` (the ``mode`` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage
from langchain_core.messages.content import create_image_block
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from langchain_nanobanana import (
    ASPECT_RATIOS,
    RESOLUTIONS,
    AuthenticationError,
    ContentModerationError,
    ImageResult,
    InsufficientBalanceError,
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaGenerateTool,
    NanoBananaTaskTool,
    NanoBananaToolkit,
    PermissionDeniedError,
    SubmissionUncertainError,
)
from langchain_nanobanana.progress import PROGRESS_EVENT
from langchain_nanobanana.testing import ASPECT_SIZES, FakeNanoBananaServer, make_png, png_size
from tests.helpers import invoke_tool, make_image_dirs, tool_call_input

IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ACCOUNT_FIELDS = ("user_id", "credential_id", "application_id", "api_id")
DEVELOPER_FIELDS = (
    "client",
    "model",
    "callback_url",
    "download_dir",
    "allowed_image_dir",
    "include_image_blocks",
    "wait",
    "run_manager",
    "config",
)
GENERIC_LANGCHAIN_ERROR = "Tool input validation error"

Invoke = Callable[[BaseTool, dict[str, Any]], ToolMessage]


def _invoke_async(tool: BaseTool, args: dict[str, Any]) -> ToolMessage:
    message = asyncio.run(tool.ainvoke(tool_call_input(tool, args)))
    assert isinstance(message, ToolMessage)
    return message


@pytest.fixture(params=["sync", "async"])
def invoke(request: pytest.FixtureRequest) -> Invoke:
    """Call a tool with a ``ToolCall`` through ``invoke`` or (in a fresh loop) ``ainvoke``."""
    return invoke_tool if request.param == "sync" else _invoke_async


@pytest.fixture
def tools(client: NanoBananaClient) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in NanoBananaToolkit(client=client).get_tools()}


def text_of(message: ToolMessage) -> str:
    """All text of a tool message, whether its content is a str or a list of blocks."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(str(block["text"]))
    return "\n".join(parts)


def assert_no_secrets(text: str, token: str | None) -> None:
    """No base64 image payload, no account field, no token."""
    assert not re.search(r"base64,[A-Za-z0-9+/=]{12}", text)  # no payload (the form may be named)
    assert "iVBORw0KG" not in text  # the base64 of a PNG signature
    for field in ACCOUNT_FIELDS:
        assert field not in text
    assert token and token not in text


def submissions(sim: FakeNanoBananaServer) -> list[Any]:
    return [r.json for r in sim.requests_to(IMAGES)]


def assert_handled_error(message: ToolMessage, *needles: str, token: str | None) -> str:
    """A handled error: status ``error``, plain text naming every needle, no generic text."""
    assert message.status == "error"
    assert message.artifact is None
    assert isinstance(message.content, str)
    for needle in needles:
        assert needle in message.content, (needle, message.content)
    assert GENERIC_LANGCHAIN_ERROR not in message.content
    assert_no_secrets(message.content, token)
    return message.content


# ------------------------------------------------------------------------------ schemas & setup


def test_generate_schema_has_exactly_the_llm_args() -> None:
    tool = NanoBananaGenerateTool(
        client=NanoBananaClient("t", base_url="http://127.0.0.1:9"), model="nano-banana-pro"
    )
    schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    props = schema["properties"]
    assert set(props) == {"prompt", "aspect_ratio", "resolution", "count"}
    assert schema["required"] == ["prompt"]
    assert props["prompt"]["type"] == "string"
    assert props["aspect_ratio"]["anyOf"][0] == {"enum": list(ASPECT_RATIOS), "type": "string"}
    assert props["resolution"]["anyOf"][0] == {"enum": list(RESOLUTIONS), "type": "string"}
    assert props["count"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 4}
    for name in ("aspect_ratio", "resolution", "count"):
        assert props[name]["default"] is None
        assert props[name]["description"]
    assert schema["title"] == "nano_banana_generate"


def test_edit_schema_has_exactly_the_llm_args() -> None:
    tool = NanoBananaEditTool(
        client=NanoBananaClient("t", base_url="http://127.0.0.1:9"), model="nano-banana-2"
    )
    schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    props = schema["properties"]
    # aspect_ratio / resolution apply to edits too (SPEC Part 3; the vendor's MCP sends both)
    assert set(props) == {"prompt", "image_urls", "aspect_ratio", "resolution", "count"}
    assert schema["required"] == ["prompt", "image_urls"]
    assert props["image_urls"]["type"] == "array"
    assert props["image_urls"]["items"] == {"type": "string"}
    assert props["image_urls"]["minItems"] == 1
    assert "maxItems" not in props["image_urls"]  # 1..n
    assert props["aspect_ratio"]["anyOf"][0] == {"enum": list(ASPECT_RATIOS), "type": "string"}
    assert props["resolution"]["anyOf"][0] == {"enum": list(RESOLUTIONS), "type": "string"}
    assert props["count"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 4}


def test_task_schema_has_exactly_the_llm_args() -> None:
    tool = NanoBananaTaskTool(client=NanoBananaClient("t", base_url="http://127.0.0.1:9"))
    schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    props = schema["properties"]
    assert set(props) == {"task_id", "task_ids"}  # one of the two (checked when called)
    assert schema.get("required", []) == []
    assert props["task_id"]["anyOf"][0] == {"type": "string", "minLength": 1}
    assert props["task_ids"]["anyOf"][0]["type"] == "array"
    assert props["task_ids"]["anyOf"][0]["items"] == {"type": "string", "minLength": 1}


@pytest.mark.parametrize("cls", [NanoBananaGenerateTool, NanoBananaEditTool, NanoBananaTaskTool])
def test_developer_fields_are_not_llm_args(cls: type[BaseTool], tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"client": NanoBananaClient("t", base_url="http://127.0.0.1:9")}
    if cls is not NanoBananaTaskTool:
        kwargs |= {
            "model": "nano-banana-pro",
            "callback_url": "https://example.com/cb",
            "download_dir": str(tmp_path),
        }
    tool = cls(**kwargs)
    schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    for field in DEVELOPER_FIELDS:
        assert field not in schema["properties"]
        assert field not in tool.args
    assert tool.response_format == "content_and_artifact"
    assert "nano-banana-pro" not in str(schema)  # the fixed model is not advertised to the LLM


def test_names_metadata_and_billable_tags(client: NanoBananaClient) -> None:
    generate, edit, task = NanoBananaToolkit(client=client).get_tools()
    assert [t.name for t in (generate, edit, task)] == [
        "nano_banana_generate",
        "nano_banana_edit",
        "nano_banana_task",
    ]
    assert generate.metadata == {"billable": True}
    assert edit.metadata == {"billable": True}
    assert not (task.metadata or {}).get("billable")
    generate.metadata["extra"] = 1
    assert edit.metadata == {"billable": True}  # not a shared mutable default
    assert NanoBananaGenerateTool(client=client).metadata == {"billable": True}


def test_toolkit_shares_one_client_and_passes_fields(tmp_path: Path) -> None:
    client = NanoBananaClient("t0k-toolkit", base_url="http://127.0.0.1:9")
    toolkit = NanoBananaToolkit(
        client=client,
        model="nano-banana-2",
        callback_url="https://example.com/cb",
        download_dir=tmp_path,
        allowed_image_dir=tmp_path / "in",
        include_image_blocks=True,
        wait=False,
    )
    generate, edit, task = toolkit.get_tools()
    assert isinstance(generate, NanoBananaGenerateTool)
    assert isinstance(edit, NanoBananaEditTool)
    assert isinstance(task, NanoBananaTaskTool)
    assert generate.client is client and edit.client is client and task.client is client
    for tool in (generate, edit):
        assert tool.model == "nano-banana-2"
        assert tool.callback_url == "https://example.com/cb"
        assert tool.download_dir == str(tmp_path)
        assert tool.wait is False
    assert edit.allowed_image_dir == str(tmp_path / "in")
    assert all(t.include_image_blocks for t in (generate, edit, task))
    # A second call builds new tools on the same client.
    again = toolkit.get_tools()
    assert again[0] is not generate and again[0].client is client  # type: ignore[attr-defined]
    assert "t0k-toolkit" not in repr(toolkit) + repr(generate) + str(toolkit.model_dump())


def test_default_toolkit_has_no_local_paths_and_no_blocks() -> None:
    generate, edit, task = NanoBananaToolkit(
        client=NanoBananaClient("t", base_url="http://127.0.0.1:9")
    ).get_tools()
    assert isinstance(edit, NanoBananaEditTool)
    assert edit.allowed_image_dir is None
    assert generate.wait is True and edit.wait is True  # type: ignore[attr-defined]
    assert not any(t.include_image_blocks for t in (generate, edit, task))  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ success paths


def test_generate_polls_inside_the_call(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.task_duration = 0.2  # running for a few polls
    message = invoke(tools["nano_banana_generate"], {"prompt": "a white siamese cat", "count": 2})
    assert message.status == "success"
    assert message.tool_call_id == "call-1" and message.name == "nano_banana_generate"
    result = message.artifact
    assert isinstance(result, ImageResult)
    assert result.status == "succeeded" and len(result.urls) == 2
    assert submissions(sim) == [
        {"action": "generate", "prompt": "a white siamese cat", "count": 2, "async": True}
    ]
    polls = sim.requests_to(TASKS)
    assert len(polls) >= 2  # it waited in the call, reading the task more than once
    assert all(p.json == {"action": "retrieve", "id": result.task_id} for p in polls)
    content = message.content
    assert isinstance(content, str)
    assert f"task_id={result.task_id}" in content
    assert f"trace_id={result.trace_id}" in content
    assert all(url in content for url in result.urls)
    assert len(content) < 400  # short text for the model
    assert_no_secrets(content, sim.token)


def test_developer_fixed_model_reaches_the_api(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    tool = NanoBananaGenerateTool(client=client, model="nano-banana-pro")
    message = invoke_tool(tool, {"prompt": "a map of Lisbon", "resolution": "4K"})
    assert message.status == "success"
    assert submissions(sim) == [
        {
            "action": "generate",
            "prompt": "a map of Lisbon",
            "model": "nano-banana-pro",
            "resolution": "4K",
            "async": True,
        }
    ]


def test_edit_sends_the_urls_and_reports_new_ones(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    source = sim.image_url(832, 1248)
    message = invoke(
        tools["nano_banana_edit"],
        {"prompt": "give the cat a small red bow tie", "image_urls": [source]},
    )
    assert message.status == "success"
    assert submissions(sim) == [
        {
            "action": "edit",
            "prompt": "give the cat a small red bow tie",
            "image_urls": [source],
            "async": True,
        }
    ]
    result = message.artifact
    assert isinstance(result, ImageResult) and len(result.urls) == 1
    assert result.urls[0] != source and result.urls[0] in text_of(message)


def test_content_never_has_base64_nor_account_fields(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path, invoke: Invoke
) -> None:
    (tmp_path / "cat.png").write_bytes(make_png(64, 96))
    generate, edit, task = NanoBananaToolkit(client=client, allowed_image_dir=tmp_path).get_tools()
    first = invoke(generate, {"prompt": "a white siamese cat"})
    edited = invoke(edit, {"prompt": "add a bow tie", "image_urls": [str(tmp_path / "cat.png")]})
    assert isinstance(first.artifact, ImageResult) and isinstance(edited.artifact, ImageResult)
    task_id = edited.artifact.task_id
    assert task_id is not None
    looked_up = invoke(task, {"task_id": task_id})
    # The API did send base64 (the local file) and account fields (the task record) ...
    sent = submissions(sim)[1]["image_urls"][0]
    assert sent.startswith("data:image/png;base64,iVBORw0KG")
    record = sim.tasks[task_id]
    assert all(record[field] for field in ACCOUNT_FIELDS)
    # ... and none of it reaches the model, nor the artifact's raw JSON.
    for message in (first, edited, looked_up):
        assert message.status == "success"
        assert_no_secrets(text_of(message), sim.token)
        assert isinstance(message.artifact, ImageResult)
        assert_no_secrets(str(message.artifact.raw), sim.token)
    assert looked_up.artifact.urls == edited.artifact.urls


def test_image_blocks_are_standard_and_off_by_default(
    client: NanoBananaClient, sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    plain = invoke(NanoBananaGenerateTool(client=client), {"prompt": "a fox"})
    assert isinstance(plain.content, str)
    tool = NanoBananaGenerateTool(client=client, include_image_blocks=True)
    message = invoke(tool, {"prompt": "a fox in snow", "aspect_ratio": "16:9", "count": 2})
    result = message.artifact
    assert isinstance(result, ImageResult) and len(result.urls) == 2
    assert isinstance(message.content, list)
    head, *blocks = message.content
    assert isinstance(head, dict) and head["type"] == "text"
    assert all(url in head["text"] for url in result.urls)
    assert [(b["type"], b["url"]) for b in blocks] == [("image", u) for u in result.urls]  # type: ignore[index]
    for block, url in zip(blocks, result.urls, strict=True):
        expected = dict(create_image_block(url=url))
        assert isinstance(block, dict)
        assert set(block) == set(expected)  # type, url, id: the standard shape
        assert "base64" not in block
    # LangChain itself reads them as standard image blocks.
    parsed = [b for b in message.content_blocks if b["type"] == "image"]
    assert [b.get("url") for b in parsed] == result.urls
    # The served images are real PNGs of the requested aspect ratio.
    assert png_size(requests.get(result.urls[0], timeout=5).content) == ASPECT_SIZES["16:9"]


def test_download_dir_saves_and_lists_files(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path, invoke: Invoke
) -> None:
    out = tmp_path / "out"
    tool = NanoBananaGenerateTool(client=client, download_dir=str(out))
    message = invoke(tool, {"prompt": "a tall lighthouse", "aspect_ratio": "2:3", "count": 2})
    assert message.status == "success"
    files = sorted(out.iterdir())
    assert len(files) == 2
    for path in files:
        assert path.suffix == ".png"
        assert png_size(path.read_bytes()) == (832, 1248)
        assert str(path) in text_of(message)
    assert "Saved to:" in text_of(message)
    gets = [r for r in sim.requests if r.method == "GET"]
    assert sorted(r.path for r in gets) == sorted(
        "/files/" + u.rsplit("/", 1)[1] for u in message.artifact.urls
    )


def test_plain_invoke_returns_the_content_only(tools: dict[str, BaseTool]) -> None:
    content = tools["nano_banana_generate"].invoke({"prompt": "a teapot"})
    assert isinstance(content, str) and content.startswith("Generated 1 image(s)")


# --------------------------------------------------------------------- pending tasks & callbacks


def test_wait_false_then_task_tool_reports_running_then_finished(
    client: NanoBananaClient, sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.task_duration = 60.0  # stays running until complete_task
    generate = NanoBananaGenerateTool(client=client, wait=False)
    task = NanoBananaTaskTool(client=client)
    pending = invoke(generate, {"prompt": "a slow sunset"})
    assert pending.status == "success"
    result = pending.artifact
    assert isinstance(result, ImageResult) and result.status == "pending" and not result.urls
    assert result.task_id in sim.tasks
    assert f"task_id={result.task_id}" in pending.content
    assert "still running" in text_of(pending)
    assert sim.requests_to(TASKS) == []  # wait=False does not poll

    running = invoke(task, {"task_id": result.task_id})
    assert running.status == "success"
    assert isinstance(running.artifact, ImageResult) and running.artifact.status == "pending"
    assert "still running" in text_of(running) and result.task_id in text_of(running)

    sim.complete_task(result.task_id)
    done = invoke(task, {"task_id": result.task_id})
    assert isinstance(done.artifact, ImageResult) and done.artifact.status == "succeeded"
    assert done.artifact.urls and all(u in text_of(done) for u in done.artifact.urls)
    assert len(sim.requests_to(IMAGES)) == 1  # looking up never resubmits
    assert [r.json for r in sim.requests_to(TASKS)] == [
        {"action": "retrieve", "id": result.task_id}
    ] * 2


def test_callback_url_returns_pending_task_id(
    client: NanoBananaClient, sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.task_duration = 60.0  # no callback delivery during the test
    callback = "https://hooks.example.com/nano-banana"
    tool = NanoBananaGenerateTool(client=client, callback_url=callback)
    message = invoke(tool, {"prompt": "a red kite"})
    result = message.artifact
    assert isinstance(result, ImageResult) and result.status == "pending"
    assert result.task_id and result.task_id in text_of(message)
    assert submissions(sim) == [
        {"action": "generate", "prompt": "a red kite", "callback_url": callback}
    ]
    assert sim.requests_to(TASKS) == []


def test_unknown_task_id_is_a_handled_error(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    message = invoke(tools["nano_banana_task"], {"task_id": "no-such-task"})
    assert_handled_error(
        message,
        "task_id='no-such-task'",
        "not found",
        "returned by an image call",
        token=sim.token,
    )
    assert re.search(rf"trace_id={UUID}", message.content)  # type: ignore[arg-type]


# ------------------------------------------------------------------ errors the model can fix


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(
            {"prompt": "a cat", "aspect_ratio": "5:4"},
            ["aspect_ratio", "'5:4'", *ASPECT_RATIOS],
            id="bad-aspect-ratio",
        ),
        pytest.param(
            {"prompt": "a cat", "resolution": "4K"},
            ["resolution", "'4K'", "1K images only", "leave resolution out"],
            id="4K-on-nano-banana",
        ),
        pytest.param(
            {"prompt": "a cat", "resolution": "8K"},
            ["resolution", "'8K'", "leave resolution out"],
            id="bad-resolution",
        ),
        pytest.param({"prompt": "a cat", "count": 9}, ["count", "9", "from 1 to 4"], id="count-9"),
        pytest.param({"prompt": "a cat", "count": 0}, ["count", "0", "from 1 to 4"], id="count-0"),
        pytest.param({"prompt": ""}, ["prompt", "''", "non-empty"], id="empty-prompt"),
        pytest.param({"prompt": "   "}, ["prompt", "'   '", "non-empty"], id="blank-prompt"),
        pytest.param(
            {"style": "noir"},
            ["prompt is missing (required); use a non-empty text", "style='noir'"],
            id="missing-prompt",
        ),
        pytest.param(
            {"prompt": "a cat", "model": "nano-banana-pro"},
            ["model", "'nano-banana-pro'", "does not exist, leave it out"],
            id="extra-arg-model",
        ),
        pytest.param(
            {"prompt": "a cat", "style": "noir"},
            ["style", "'noir'", "does not exist, leave it out"],
            id="extra-arg-style",
        ),
    ],
)
def test_generate_bad_arguments_come_back_to_the_model(
    tools: dict[str, BaseTool],
    sim: FakeNanoBananaServer,
    invoke: Invoke,
    args: dict[str, Any],
    needles: list[str],
) -> None:
    message = invoke(tools["nano_banana_generate"], args)
    content = assert_handled_error(message, *needles, token=sim.token)
    assert content.startswith("Invalid arguments, fix and call again:")
    assert message.tool_call_id == "call-1"
    assert sim.requests == []  # refused before any request


PNG_B64 = base64.b64encode(make_png(8, 8)).decode()


@pytest.mark.parametrize(
    ("image_urls", "needles"),
    [
        pytest.param(
            ["data:image/png;base64,aGVsbG8="],
            ["image_urls[0]", "not a PNG, JPEG", "data:image/png;base64,aGVsbG8=", "Allowed:"],
            id="data-uri-not-an-image",
        ),
        pytest.param(
            ["data:image/png;base64,@@@"],
            ["image_urls[0]", "not valid standard base64", "Allowed:"],
            id="data-uri-bad-base64",
        ),
        pytest.param(
            ["ftp://example.com/cat.png"],
            ["image_urls[0]", "unsupported URL scheme", "ftp://example.com/cat.png", "http(s)"],
            id="ftp-url",
        ),
        pytest.param(
            ["https://example.com/a.png", "/etc/passwd"],
            ["image_urls[1]", "local file paths are not allowed", "'/etc/passwd'", "http(s) URL"],
            id="local-path-when-not-allowed",
        ),
        pytest.param(
            [], ["image_urls=[]", "at least 1 item", "at least one http(s) URL"], id="no-images"
        ),
    ],
)
def test_edit_bad_images_come_back_to_the_model(
    tools: dict[str, BaseTool],
    sim: FakeNanoBananaServer,
    invoke: Invoke,
    image_urls: list[str],
    needles: list[str],
) -> None:
    message = invoke(tools["nano_banana_edit"], {"prompt": "add a hat", "image_urls": image_urls})
    content = assert_handled_error(message, *needles, token=sim.token)
    assert PNG_B64 not in content
    assert sim.requests == []


@pytest.fixture
def image_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """``allowed/`` with a PNG and a symlink pointing out, ``outside/`` with a secret PNG."""
    allowed, outside = make_image_dirs(tmp_path, "cat.png", make_png(40, 60), make_png(10, 10))
    (allowed / "link.png").symlink_to(outside / "secret.png")
    return allowed, outside


def test_edit_local_file_inside_allowed_dir_is_sent_as_data_uri(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    image_dirs: tuple[Path, Path],
    invoke: Invoke,
) -> None:
    allowed, _ = image_dirs
    tool = NanoBananaEditTool(client=client, allowed_image_dir=str(allowed))
    message = invoke(tool, {"prompt": "add a hat", "image_urls": [str(allowed / "cat.png")]})
    assert message.status == "success"
    (body,) = submissions(sim)
    expected = "data:image/png;base64," + base64.b64encode(make_png(40, 60)).decode()
    assert body["image_urls"] == [expected]
    assert_no_secrets(text_of(message), sim.token)
    # The simulator sizes an edit from its first image: the edit result is 40x60 too.
    url = message.artifact.urls[0]
    assert png_size(requests.get(url, timeout=5).content) == (40, 60)


@pytest.mark.parametrize("escape", ["dotdot", "symlink"])
def test_edit_paths_escaping_allowed_dir_are_refused(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    image_dirs: tuple[Path, Path],
    invoke: Invoke,
    escape: str,
) -> None:
    allowed = image_dirs[0]
    path = (
        os.path.join(str(allowed), "..", "outside", "secret.png")
        if escape == "dotdot"
        else str(allowed / "link.png")
    )
    tool = NanoBananaEditTool(client=client, allowed_image_dir=str(allowed))
    message = invoke(tool, {"prompt": "add a hat", "image_urls": [path]})
    assert_handled_error(
        message,
        "image_urls[0]",
        "local files must be inside",
        "this path resolves outside it",
        str(allowed)[:20],
        "http(s) URL",
        token=sim.token,
    )
    assert sim.requests == []


def test_simulator_400_comes_back_to_the_model(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    """A 400 the client cannot foresee (a server-side content rule) travels back over HTTP and
    reaches the model as a handled error with its code and trace_id."""
    sim.inject_fault("400", path="/nano-banana/images")
    message = invoke(tools["nano_banana_generate"], {"prompt": "a forbidden cat"})
    content = assert_handled_error(
        message,
        "The prompt was rejected",
        "HTTP 400",
        "code=token_mismatched",
        token=sim.token,
    )
    assert re.search(rf"trace_id={UUID}", content)
    assert len(submissions(sim)) == 1 and sim.tasks == {}


def test_rate_limit_after_retries_comes_back_to_the_model(
    sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.inject_fault("429", count=10, retry_after="7")
    with NanoBananaClient(sim.token or "", base_url=sim.base_url, max_retries=0) as client:
        message = invoke(NanoBananaGenerateTool(client=client), {"prompt": "a cat"})
    content = assert_handled_error(
        message, "HTTP 429", "code=too_many_requests", "wait 7 s", token=sim.token
    )
    assert re.search(rf"trace_id={UUID}", content)
    assert len(submissions(sim)) == 1  # max_retries=0: one attempt
    assert sim.tasks == {}


def test_failed_task_comes_back_with_code_and_ids(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.fail_next_tasks(1, code="content_policy_violation", message="The prompt was refused.")
    message = invoke(tools["nano_banana_generate"], {"prompt": "a cat"})
    ((task_id, record),) = sim.tasks.items()
    assert_handled_error(
        message,
        "content_policy_violation",
        "The prompt was refused.",
        f"task_id={task_id}",
        f"trace_id={record['trace_id']}",
        token=sim.token,
    )
    assert len(submissions(sim)) == 1  # a failed task is not resubmitted


def test_failed_task_seen_through_the_task_tool(
    client: NanoBananaClient, sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.fail_next_tasks(1, code="generation_failed", message="Try a different prompt.")
    pending = invoke(NanoBananaGenerateTool(client=client, wait=False), {"prompt": "a cat"})
    task_id = pending.artifact.task_id
    message = invoke(NanoBananaTaskTool(client=client), {"task_id": task_id})
    assert isinstance(message.artifact, ImageResult) and message.artifact.status == "failed"
    assert "generation_failed" in text_of(message) and task_id in text_of(message)
    assert "Try a different prompt." in text_of(message)


# ------------------------------------------------------------------------- errors that raise


@pytest.mark.parametrize("name", ["nano_banana_generate", "nano_banana_edit", "nano_banana_task"])
def test_wrong_token_raises(sim: FakeNanoBananaServer, invoke: Invoke, name: str) -> None:
    wrong = "wrong-token-5e1f"
    with NanoBananaClient(wrong, base_url=sim.base_url) as client:
        tool = {t.name: t for t in NanoBananaToolkit(client=client).get_tools()}[name]
        args_by_tool: dict[str, dict[str, Any]] = {
            "nano_banana_generate": {"prompt": "a cat"},
            "nano_banana_edit": {"prompt": "a hat", "image_urls": [sim.image_url(8, 8)]},
            "nano_banana_task": {"task_id": "abc"},
        }
        args = args_by_tool[name]
        with pytest.raises(AuthenticationError) as info:
            invoke(tool, args)
    assert info.value.status_code == 401 and info.value.code == "invalid_token"
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert len(sim.requests) == 1
    assert sim.requests[0].headers["authorization"] == f"Bearer {wrong}"  # it was really sent


def test_missing_token_raises_naming_the_env_var(sim: FakeNanoBananaServer, invoke: Invoke) -> None:
    client = NanoBananaClient(base_url=sim.base_url)
    with pytest.raises(AuthenticationError, match="ACEDATACLOUD_API_TOKEN"):
        invoke(NanoBananaGenerateTool(client=client), {"prompt": "a cat"})
    assert sim.requests == []


# ------------------------------------------------------------------------------------- async


async def test_arun_does_not_block_the_event_loop(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    """Two concurrent ``ainvoke`` calls: the second is submitted while the first task is still
    running (a blocking ``_arun`` would submit it only after the first finished)."""
    sim.task_duration = 0.5
    tool = NanoBananaGenerateTool(client=client)
    first, second = await asyncio.gather(
        tool.ainvoke(tool_call_input(tool, {"prompt": "one"}, "a")),
        tool.ainvoke(tool_call_input(tool, {"prompt": "two"}, "b")),
    )
    assert first.status == second.status == "success"
    records = sorted(sim.tasks.values(), key=lambda r: r["created_at"])
    assert len(records) == 2
    assert records[1]["created_at"] < records[0]["finished_at"]


async def test_parallel_tool_calls_share_poll_rounds(sim: FakeNanoBananaServer) -> None:
    """16 parallel calls (an agent's parallel tool calls) on one toolkit wait on the client's one
    poller: their reads are shared rounds, not 16 separate polls."""
    sim.task_duration = 1.0
    with NanoBananaClient(
        sim.token or "", base_url=sim.base_url, poll_interval=0.25, max_poll_interval=10.0
    ) as client:
        generate = NanoBananaToolkit(client=client).get_tools()[0]
        alone = await generate.ainvoke(tool_call_input(generate, {"prompt": "alone"}, "solo"))
        assert alone.status == "success"
        one_waiter_rounds = len(sim.requests_to(TASKS))
        sim.clear_requests()

        messages = await asyncio.gather(
            *(
                generate.ainvoke(tool_call_input(generate, {"prompt": f"cat {i}"}, f"c{i}"))
                for i in range(16)
            )
        )

    assert [m.status for m in messages] == ["success"] * 16
    assert len({m.artifact.task_id for m in messages}) == 16
    reads = [r.json for r in sim.requests_to(TASKS)]
    chunks = math.ceil(16 / 50)
    assert len(reads) <= 2 * one_waiter_rounds * chunks, (one_waiter_rounds, reads)
    assert max(len(r.get("ids", [r.get("id")])) for r in reads if isinstance(r, dict)) > 1


# ------------------------------------------------------------------------------ configuration


def test_toolkit_with_a_misspelt_model_fails_when_built() -> None:
    with pytest.raises(ValueError) as info:
        NanoBananaToolkit(
            client=NanoBananaClient("t", base_url="http://127.0.0.1:9"), model="nano-banana-pro2"
        )
    assert "nano-banana-pro2" in str(info.value)
    assert "did you mean 'nano-banana-pro'" in str(info.value)


@pytest.mark.parametrize("cls", [NanoBananaGenerateTool, NanoBananaEditTool, NanoBananaToolkit])
@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"model": "nano-banana-pro2"}, ["nano-banana-pro"]),
        ({"callback_url": "not a url"}, ["callback_url"]),
    ],
)
def test_bad_fixed_fields_fail_when_built(
    cls: type[Any], kwargs: dict[str, Any], needles: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        cls(client=NanoBananaClient("t", base_url="http://127.0.0.1:9"), **kwargs)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    "cls", [NanoBananaGenerateTool, NanoBananaEditTool, NanoBananaTaskTool, NanoBananaToolkit]
)
def test_unknown_keywords_are_a_type_error(cls: type[Any]) -> None:
    client = NanoBananaClient("t", base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"'include_image_block'.*did you mean") as info:
        cls(client=client, include_image_block=True)
    assert "allowed:" in str(info.value)


def test_tools_accept_api_token_and_base_url(sim: FakeNanoBananaServer) -> None:
    toolkit = NanoBananaToolkit(api_token=sim.token, base_url=sim.base_url)
    generate, _, task = toolkit.get_tools()
    try:
        message = invoke_tool(generate, {"prompt": "a cat from a token"})
        looked_up = invoke_tool(task, {"task_id": message.artifact.task_id})
    finally:
        toolkit.client.close()
    assert message.status == looked_up.status == "success"
    assert generate.client is toolkit.client is task.client  # type: ignore[attr-defined]
    assert {r.headers["authorization"] for r in sim.requests} == {f"Bearer {sim.token}"}
    assert sim.token and sim.token not in repr(toolkit) + repr(generate) + str(toolkit.model_dump())


def test_client_together_with_api_token_is_an_error(client: NanoBananaClient) -> None:
    with pytest.raises(ValueError, match="not both"):
        NanoBananaToolkit(client=client, api_token="another")
    with pytest.raises(ValueError, match="not both"):
        NanoBananaGenerateTool(client=client, base_url="http://127.0.0.1:9")


# ------------------------------------------------------------------------------ task_ids


def test_task_ids_are_read_in_one_retrieve_batch(
    client: NanoBananaClient, sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.task_duration = 60.0
    generate = NanoBananaGenerateTool(client=client, wait=False)
    ids = [invoke(generate, {"prompt": f"cat {i}"}).artifact.task_id for i in range(3)]
    sim.complete_task(ids[1])
    asked = [ids[0], ids[1], "no-such-task", ids[2]]

    message = invoke(NanoBananaTaskTool(client=client), {"task_ids": asked})

    assert message.status == "success"
    results = message.artifact
    assert isinstance(results, list) and [r.task_id for r in results] == asked  # in order
    assert [r.status for r in results] == ["pending", "succeeded", "failed", "pending"]
    assert results[2].error.code == "not_found"
    text = text_of(message)
    assert all(task_id in text for task_id in asked)
    assert all(url in text for url in results[1].urls)
    assert [r.json for r in sim.requests_to(TASKS)] == [
        {"action": "retrieve_batch", "ids": asked}
    ]  # one request for up to 50 ids
    assert_no_secrets(text, sim.token)


def test_more_than_50_task_ids_are_chunked(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    known = client.generate("a cat", wait=False).task_id
    assert known is not None
    asked = [known, *(f"unknown-{i}" for i in range(55))]

    message = invoke_tool(NanoBananaTaskTool(client=client), {"task_ids": asked})

    assert [r.task_id for r in message.artifact] == asked
    assert [len(r.json["ids"]) for r in sim.requests_to(TASKS)] == [50, 6]  # type: ignore[index]


@pytest.mark.parametrize(
    "args", [{}, {"task_id": "a", "task_ids": ["b"]}, {"task_ids": []}], ids=["none", "both", "[]"]
)
def test_task_tool_needs_exactly_one_of_task_id_or_task_ids(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, args: dict[str, Any]
) -> None:
    message = invoke_tool(tools["nano_banana_task"], args)
    content = assert_handled_error(message, "task_id", token=sim.token)
    assert content.startswith("Invalid arguments, fix and call again:")
    assert sim.requests == []


# ------------------------------------------------------------------- who handles which error

MODERATION = {"success": False, "error": {"code": "content_blocked", "message": "refused"}}


def test_moderation_refusal_comes_back_asking_to_rephrase(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    sim.inject_fault("body", status=403, body=MODERATION, path=IMAGES, create_task=False)

    message = invoke(tools["nano_banana_generate"], {"prompt": "something refused"})

    content = assert_handled_error(
        message, "refused", "HTTP 403", "content moderation", "rephrase", token=sim.token
    )
    assert "content_blocked" in content
    assert sim.tasks == {}


@pytest.mark.parametrize(
    ("status", "code"),
    [(402, "payment_required"), (402, None), (403, "used_up"), (200, "used_up")],
    ids=["402", "402-no-code", "403-used_up", "200-used_up"],
)
def test_insufficient_balance_raises(
    tools: dict[str, BaseTool],
    sim: FakeNanoBananaServer,
    invoke: Invoke,
    status: int,
    code: str | None,
) -> None:
    error: dict[str, Any] = {"message": "Your balance is used up."}
    if code:
        error["code"] = code
    body = {"success": False, "error": error}
    sim.inject_fault("body", status=status, body=body, path=IMAGES, create_task=False)

    with pytest.raises(InsufficientBalanceError) as info:
        invoke(tools["nano_banana_generate"], {"prompt": "a cat"})

    assert "balance" in str(info.value)
    assert len(submissions(sim)) == 1 and sim.tasks == {}


def test_disabled_resource_raises_permission_denied(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    body = {"success": False, "error": {"code": "disabled", "message": "API disabled."}}
    sim.inject_fault("body", status=403, body=body, path=IMAGES, create_task=False)

    with pytest.raises(PermissionDeniedError) as info:
        invoke(tools["nano_banana_generate"], {"prompt": "a cat"})

    assert not isinstance(info.value, ContentModerationError)
    assert info.value.code == "disabled"


def test_uncertain_submission_raises_out_of_the_tool(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    # The generation may have run and been billed: the model must not resubmit it, so it is not
    # handed back as a tool message (an agent would call again and maybe pay twice).
    sim.inject_fault("500", path=IMAGES)

    with pytest.raises(SubmissionUncertainError) as info:
        invoke(tools["nano_banana_generate"], {"prompt": "a cat"})

    assert "do not resubmit" in str(info.value)
    assert len(submissions(sim)) == 1  # never retried


def test_count_true_is_a_validation_message(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, invoke: Invoke
) -> None:
    message = invoke(tools["nano_banana_generate"], {"prompt": "a cat", "count": True})

    content = assert_handled_error(message, "count=True", "from 1 to 4", token=sim.token)
    assert content.startswith("Invalid arguments, fix and call again:")
    assert sim.requests == []


# ------------------------------------------------------------- a paid result is never lost


def test_download_dir_that_cannot_be_written_returns_the_result_with_a_note(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    invoke: Invoke,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "out"
    blocked.write_text("a file where the folder should be")
    tool = NanoBananaGenerateTool(client=client, download_dir=str(blocked))

    message = invoke(tool, {"prompt": "a paid cat"})

    assert message.status == "success"
    result = message.artifact
    assert isinstance(result, ImageResult) and result.status == "succeeded"
    text = text_of(message)
    assert all(url in text for url in result.urls)
    assert "Note:" in text and f"task_id={result.task_id}" in text.split("Note:", 1)[1]
    assert str(blocked) in text
    assert len(submissions(sim)) == 1
    assert result.task_id is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(result.task_id in w for w in warnings)


# ------------------------------------------------------------------------------- progress


class ProgressEvents(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))


def test_tools_dispatch_progress_events_while_waiting(
    tools: dict[str, BaseTool], sim: FakeNanoBananaServer, mode: str
) -> None:
    sim.task_duration = 0.3
    handler = ProgressEvents()
    tool = tools["nano_banana_generate"]
    call = tool_call_input(tool, {"prompt": "a slow cat"})
    config: RunnableConfig = {"callbacks": [handler]}

    if mode == "sync":
        message = tool.invoke(call, config=config)
    else:
        message = asyncio.run(tool.ainvoke(call, config=config))

    task_id = message.artifact.task_id
    assert handler.events, "no nano_banana_progress event"
    assert {name for name, _ in handler.events} == {PROGRESS_EVENT}
    first = handler.events[0][1]
    assert first["tasks"] == {task_id: "pending"} and first["round"] == 1
    assert (first["pending"], first["succeeded"], first["failed"]) == (1, 0, 0)
    assert handler.events[-1][1]["tasks"] == {task_id: "succeeded"}  # the round that ended it
    assert len(handler.events) == len(sim.requests_to(TASKS))  # one event per poll round


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_sync_mode_client_makes_one_blocking_post_from_the_tools(
    sim: FakeNanoBananaServer,
) -> None:
    """With ``mode="sync"`` the tools wait inside the submission (no ``async``, no task reads),
    sync and async alike; a failed sync generation still comes back to the model."""
    client = NanoBananaClient(sim.token, base_url=sim.base_url, mode="sync")
    tool = NanoBananaGenerateTool(client=client)
    message = invoke_tool(tool, {"prompt": "a lantern"})
    assert message.status == "success" and message.artifact.status == "succeeded"
    amessage = asyncio.run(tool.ainvoke(tool_call_input(tool, {"prompt": "a kite"})))
    assert amessage.status == "success" and amessage.artifact.status == "succeeded"
    bodies = [r.json for r in sim.requests_to("/nano-banana/images")]
    assert len(bodies) == 2 and all(isinstance(b, dict) and "async" not in b for b in bodies)
    assert sim.requests_to("/nano-banana/tasks") == []
    sim.fail_next_tasks(1, code="content_policy", message="refused")
    failed = invoke_tool(tool, {"prompt": "a storm"})
    assert failed.status == "error" and "content_policy" in str(failed.content)
    client.close()
