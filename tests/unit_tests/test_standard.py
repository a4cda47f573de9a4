"""``langchain_tests`` standard unit tests (``ToolsUnitTests``) for the three tools.

No network: every tool gets a client pointed at an unused loopback port (``127.0.0.1:9``, the
discard port); the standard unit suite only builds tools and checks their schemas.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_nanobanana import (
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaGenerateTool,
    NanoBananaTaskTool,
)

UNUSED_URL = "http://127.0.0.1:9"
ENV = {"ACEDATACLOUD_API_TOKEN": "env-token-xyz", "ACEDATACLOUD_API_BASE_URL": UNUSED_URL}


def _offline_client() -> NanoBananaClient:
    return NanoBananaClient("unit-token", base_url=UNUSED_URL)


class TestGenerateToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaGenerateTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"client": _offline_client(), "model": "nano-banana-pro"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {
            "prompt": "a white siamese cat on a red velvet cushion, soft window light",
            "aspect_ratio": "2:3",
            "resolution": "2K",
            "count": 2,
        }

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ENV, {}, {"name": "nano_banana_generate"}


class TestEditToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaEditTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"client": _offline_client()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {
            "prompt": "give the cat a small red bow tie",
            "image_urls": ["https://platform.cdn.acedata.cloud/nanobanana/cat.png"],
            "count": 1,
        }

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ENV, {}, {"name": "nano_banana_edit"}


class TestTaskToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaTaskTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"client": _offline_client()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"task_id": "6af45757-e955-4d39-8adb-2e16c8287f57"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ENV, {}, {"name": "nano_banana_task"}


@pytest.mark.parametrize("cls", [NanoBananaGenerateTool, NanoBananaEditTool, NanoBananaTaskTool])
def test_default_client_reads_the_environment(
    cls: type[BaseTool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the standard ``test_init_from_env`` cannot see: the env vars reach the client, and
    the token stays secret in every repr."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    tool: Any = cls()
    assert tool.client.base_url == UNUSED_URL
    assert tool.client._token.get_secret_value() == "env-token-xyz"
    schema = str(tool.tool_call_schema.model_json_schema())
    for text in (repr(tool), str(tool), repr(tool.client), str(tool.model_dump()), schema):
        assert "env-token-xyz" not in text
