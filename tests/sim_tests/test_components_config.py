"""The Python API a LangChain user expects (issue "first contact"): ``api_key`` as an alias of
``api_token`` everywhere a token is taken; ``timeout`` and ``max_retries`` on the tools, toolkit
and Runnable, forwarded to the client they build; "did you mean" only for close names, with the
synonyms saying where a knob belongs; tool schemas offering only what the fixed model supports.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from langchain_nanobanana import (
    MODELS,
    ConfigurationError,
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
    NanoBananaTaskTool,
    NanoBananaToolkit,
)
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import invoke_tool

COMPONENTS: list[type[Any]] = [
    NanoBananaGenerateTool,
    NanoBananaEditTool,
    NanoBananaTaskTool,
    NanoBananaToolkit,
    NanoBananaImageGenerator,
]


def test_client_takes_api_key_as_an_alias(sim: FakeNanoBananaServer) -> None:
    with NanoBananaClient(api_key=sim.token, base_url=sim.base_url, poll_interval=0.02) as client:
        assert client.generate("a cat").status == "succeeded"
    with pytest.raises(ConfigurationError, match="not both"):
        NanoBananaClient("a", api_key="b", base_url=sim.base_url)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_components_take_api_key_timeout_and_max_retries(
    sim: FakeNanoBananaServer, component: type[Any]
) -> None:
    built = component(api_key=sim.token, base_url=sim.base_url, timeout=7.5, max_retries=0)
    assert built.client.timeout == 7.5 and built.client.max_retries == 0
    assert built.api_token.get_secret_value() == sim.token
    assert str(sim.token) not in repr(built)
    with pytest.raises(ConfigurationError, match="not both"):
        component(api_key="a", api_token="b", base_url=sim.base_url)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_a_client_and_the_settings_it_carries_do_not_mix(
    sim: FakeNanoBananaServer, component: type[Any]
) -> None:
    client = NanoBananaClient(sim.token, base_url=sim.base_url)
    for clash in ({"timeout": 5}, {"max_retries": 1}, {"api_key": "x"}):
        with pytest.raises(ConfigurationError, match="not both"):
            component(client=client, **clash)
    client.close()


@pytest.mark.parametrize(
    ("component", "typo", "expected"),
    [
        (NanoBananaGenerateTool, "max_wait", "belongs to the client"),
        (NanoBananaImageGenerator, "max_wait", "NanoBananaClient(max_wait=...)"),
        (NanoBananaToolkit, "poll_interval", "NanoBananaClient(poll_interval=...)"),
        (NanoBananaImageGenerator, "aspect", "did you mean 'aspect_ratio'"),
        (NanoBananaGenerateTool, "retries", "did you mean 'max_retries'"),
        (NanoBananaImageGenerator, "request_timeout", "did you mean 'timeout'"),
        (NanoBananaGenerateTool, "callbak_url", "did you mean 'callback_url'"),
    ],
)
def test_did_you_mean_only_for_close_names_and_synonyms(
    sim: FakeNanoBananaServer, component: type[Any], typo: str, expected: str
) -> None:
    with pytest.raises(TypeError) as info:
        component(api_token=sim.token, base_url=sim.base_url, **{typo: 1})
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("component", "typo", "not_suggested"),
    [
        (NanoBananaGenerateTool, "max_wait", "'wait'"),  # a bool: never the answer to max_wait
        (NanoBananaImageGenerator, "zzz_count", "'count'"),
        (NanoBananaGenerateTool, "max_retrys_x", "'return_direct'"),
    ],
)
def test_no_far_fetched_suggestion(
    sim: FakeNanoBananaServer, component: type[Any], typo: str, not_suggested: str
) -> None:
    with pytest.raises(TypeError) as info:
        component(api_token=sim.token, base_url=sim.base_url, **{typo: 1})
    assert f"did you mean {not_suggested}" not in str(info.value)


def _schema(tool: BaseTool) -> dict[str, Any]:
    return tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]


@pytest.mark.parametrize("tool_class", [NanoBananaGenerateTool, NanoBananaEditTool])
@pytest.mark.parametrize("model", [None, *MODELS])
def test_tool_schemas_offer_only_what_the_fixed_model_supports(
    sim: FakeNanoBananaServer, tool_class: type[BaseTool], model: str | None
) -> None:
    tool = tool_class(api_token=sim.token, base_url=sim.base_url, model=model)
    properties = _schema(tool)["properties"]
    high = MODELS[model or "nano-banana"].high_resolution
    if not high:
        assert "resolution" not in properties  # only 1K exists: the field is left out
    else:
        (enum,) = [a["enum"] for a in properties["resolution"]["anyOf"] if "enum" in a]
        assert enum == ["1K", "2K", "4K"]
    assert {"prompt", "aspect_ratio", "count"} <= set(properties)


def test_a_resolution_the_model_cannot_do_is_refused_by_the_schema_nothing_sent(
    sim: FakeNanoBananaServer,
) -> None:
    tool = NanoBananaGenerateTool(api_token=sim.token, base_url=sim.base_url)
    message = invoke_tool(tool, {"prompt": "a cat", "resolution": "4K"})
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert "resolution" in str(message.content)
    assert sim.requests == []
