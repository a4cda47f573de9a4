"""Inputs that used to slip through: each is refused before any request, through the public API,
with a message that names the field, the value and what is allowed.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool

from langchain_nanobanana import (
    InvalidImageError,
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
)
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import invoke_tool

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def nothing_sent(sim: FakeNanoBananaServer) -> None:
    assert sim.requests_to("/nano-banana/images") == []


@pytest.mark.parametrize("prompt", ["\u200b\u200b", "\x00\x00", "\u2060 \ufeff", "\u00ad"])
def test_prompt_of_only_invisible_characters(
    client: NanoBananaClient, sim: FakeNanoBananaServer, prompt: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.generate(prompt)
    message = str(info.value)
    assert "prompt=" in message and "blank" in message and "non-empty text" in message
    nothing_sent(sim)


def test_prompt_with_a_lone_surrogate(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    with pytest.raises(InvalidRequestError, match="lone surrogate"):
        client.generate("a cat \ud800")
    nothing_sent(sim)


def test_tool_count_true_is_refused(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    tool: BaseTool = NanoBananaGenerateTool(client=client)
    message = invoke_tool(tool, {"prompt": "a cat", "count": True})
    assert message.status == "error" and "count=True" in str(message.content)
    assert "1 to 4" in str(message.content)
    nothing_sent(sim)


@pytest.mark.parametrize(
    "callback", ["https://exa mple.com/cb", "https://example.com/c b", "http://[::1/cb"]
)
def test_callback_url_that_cannot_be_parsed(
    client: NanoBananaClient, sim: FakeNanoBananaServer, callback: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.generate("a cat", callback_url=callback)
    assert "callback_url=" in str(info.value) and "absolute http" in str(info.value)
    nothing_sent(sim)


def test_base_url_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="user:password@") as info:
        NanoBananaClient("t", base_url="https://alice:hunter2-secret@api.acedata.cloud")
    assert "hunter2-secret" not in str(info.value)


@pytest.mark.parametrize("option", ["max_wait", "poll_interval", "max_poll_interval", "timeout"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_non_finite_numbers_are_refused(option: str, bad: float) -> None:
    kwargs: dict[str, Any] = {option: bad}
    with pytest.raises(ValueError, match=option):
        NanoBananaClient("t", **kwargs)


def test_max_retries_nan_is_refused() -> None:
    kwargs: dict[str, Any] = {"max_retries": math.nan}
    with pytest.raises(ValueError, match="max_retries"):
        NanoBananaClient("t", **kwargs)


def test_data_uri_declaring_another_type_than_its_bytes(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    lying = "data:image/jpeg;base64," + base64.b64encode(PNG).decode()
    with pytest.raises(InvalidImageError) as info:
        client.edit("make it blue", [lying])
    assert "image/jpeg" in str(info.value) and "image/png" in str(info.value)
    nothing_sent(sim)


def test_relative_paths_are_relative_to_allowed_image_dir(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed = tmp_path / "inputs"
    allowed.mkdir()
    (allowed / "cat.png").write_bytes(PNG)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "cat.png").write_bytes(b"not the image you meant")
    monkeypatch.chdir(elsewhere)  # a relative path must not resolve against the cwd
    tool = NanoBananaEditTool(client=client, allowed_image_dir=str(allowed))
    message = invoke_tool(tool, {"prompt": "make it blue", "image_urls": ["cat.png"]})
    assert message.status == "success", message.content
    sent = sim.requests_to("/nano-banana/images")[0].json
    assert isinstance(sent, dict)
    assert sent["image_urls"][0] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    escape = invoke_tool(tool, {"prompt": "x", "image_urls": ["../cwd/cat.png"]})
    assert escape.status == "error" and "inside" in str(escape.content)


def test_runnable_dict_images_refuse_local_files_without_allowed_dir(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(PNG)
    generator = NanoBananaImageGenerator(client=client)
    with pytest.raises(InvalidImageError, match="local file paths are not allowed"):
        generator.invoke({"prompt": "edit", "images": [str(path)]})
    nothing_sent(sim)
    allowed = NanoBananaImageGenerator(client=client, allowed_image_dir=str(tmp_path))
    assert allowed.invoke({"prompt": "edit", "images": [str(path)]}).status == "succeeded"
    assert (
        NanoBananaImageGenerator(client=client)
        .invoke(
            {"prompt": "edit", "images": [PNG]}  # raw bytes are always fine
        )
        .status
        == "succeeded"
    )
