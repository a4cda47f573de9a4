"""``langchain_nanobanana.middleware``: images in tool results, made valid for Chat Completions.

The payload checks use ``langchain-openai``'s own Chat Completions conversion
(``_convert_message_to_dict``, which ``ChatOpenAI`` runs on every message), so they fail if that
conversion changes. No request is sent.
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.content import create_image_block
from langchain_core.tools import tool

from langchain_nanobanana import middleware
from langchain_nanobanana.middleware import IMAGE_BLOCK_TYPES, move_tool_images_to_user
from langchain_nanobanana.testing.chat import ScriptedChatModel

URL = "https://platform.cdn.acedata.cloud/nanobanana/cat.png"
PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhK"
    "mMIQAAAABJRU5ErkJggg=="
)
DATA_URI = f"data:image/png;base64,{PNG_B64}"


def generate_call(call_id: str, prompt: str) -> dict[str, Any]:
    return {
        "name": "nano_banana_generate",
        "args": {"prompt": prompt},
        "id": call_id,
        "type": "tool_call",
    }


def tool_result(call_id: str, text: str, image: Mapping[str, Any]) -> ToolMessage:
    return ToolMessage(
        content=[{"type": "text", "text": text}, dict(image)],
        tool_call_id=call_id,
        name="nano_banana_generate",
        artifact={"task_id": f"task-{call_id}"},
        id=f"msg-{call_id}",
    )


def history() -> list[BaseMessage]:
    """System, user, an AI turn with two tool calls, their image results (URL, base64), an AI."""
    return [
        SystemMessage("You draw pictures with the nano_banana tools."),
        HumanMessage("Draw a cat and a dog."),
        AIMessage(
            "", tool_calls=[generate_call("call_1", "a cat"), generate_call("call_2", "a dog")]
        ),
        tool_result("call_1", f"succeeded: {URL}", create_image_block(url=URL)),
        tool_result(
            "call_2",
            "succeeded: task-call_2",
            create_image_block(base64=PNG_B64, mime_type="image/png"),
        ),
        AIMessage("Here are a cat and a dog."),
    ]


def chat_completions_messages(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The ``messages`` of a Chat Completions request body, as ``langchain-openai`` builds them.

    ``_convert_message_to_dict`` is what ``ChatOpenAI._get_request_payload`` runs on each message
    (without building a ``ChatOpenAI``, whose constructor probes socket options).
    """
    base = pytest.importorskip("langchain_openai.chat_models.base")
    return [base._convert_message_to_dict(message) for message in messages]


def non_text_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [part for part in content if not (isinstance(part, dict) and part["type"] == "text")]


def assert_tool_calls_answered_in_order(messages: list[dict[str, Any]]) -> None:
    """OpenAI's rule: the tool messages answering an assistant's tool calls come right after it,
    every tool_call_id answered before the next non-tool message.
    """
    open_ids: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_ids, message
            open_ids.remove(message["tool_call_id"])
            continue
        assert not open_ids, f"unanswered {open_ids} before a {message['role']} message"
        open_ids = {call["id"] for call in message.get("tool_calls") or []}
    assert not open_ids


# -- the transform, as Chat Completions sees it -----------------------------------------------


def test_before_the_transform_the_tool_messages_carry_images_chat_completions_refuses() -> None:
    body = chat_completions_messages(history())
    tool_parts = [non_text_parts(m) for m in body if m["role"] == "tool"]
    assert tool_parts == [
        [{"type": "image_url", "image_url": {"url": URL}}],
        [{"type": "image_url", "image_url": {"url": DATA_URI}}],
    ]


def test_after_the_transform_only_user_messages_carry_images() -> None:
    moved = move_tool_images_to_user(history())
    body = chat_completions_messages(moved)

    assert [m["role"] for m in body] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
        "assistant",
    ]
    for message in body:
        if message["role"] == "tool":
            assert non_text_parts(message) == [], message
    assert_tool_calls_answered_in_order(body)

    tools = [m for m in body if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tools] == ["call_1", "call_2"]
    assert tools[0]["content"] == [
        {"type": "text", "text": f"succeeded: {URL}"},
        {"type": "text", "text": "(image attached in the next message)"},
    ]

    images_message = body[5]
    assert non_text_parts(images_message) == [
        {"type": "image_url", "image_url": {"url": URL}},
        {"type": "image_url", "image_url": {"url": DATA_URI}},
    ]
    texts = [part["text"] for part in images_message["content"] if part["type"] == "text"]
    assert "not sent by the user" in texts[0]
    assert texts[1:] == [
        "From nano_banana_generate (tool_call_id call_1):",
        "From nano_banana_generate (tool_call_id call_2):",
    ]


def test_openai_style_image_url_parts_are_moved_too() -> None:
    messages: list[BaseMessage] = [
        HumanMessage("Show me."),
        AIMessage("", tool_calls=[generate_call("c", "x")]),
        ToolMessage(
            content=[
                {"type": "text", "text": "one image"},
                {"type": "image_url", "image_url": {"url": DATA_URI}},
            ],
            tool_call_id="c",
        ),
    ]
    moved = move_tool_images_to_user(messages)
    assert moved[2].content == [
        {"type": "text", "text": "one image"},
        {"type": "text", "text": "(image attached in the next message)"},
    ]
    assert isinstance(moved[3], HumanMessage)
    assert moved[3].content[1:] == [
        {"type": "text", "text": "From (tool_call_id c):"},
        {"type": "image_url", "image_url": {"url": DATA_URI}},
    ]
    body = chat_completions_messages(moved)
    assert [m["role"] for m in body] == ["user", "assistant", "tool", "user"]
    assert non_text_parts(body[2]) == []


def test_each_ai_turn_gets_its_own_images_message_right_after_its_tool_messages() -> None:
    messages: list[BaseMessage] = [
        HumanMessage("A cat, then make it wear a hat."),
        AIMessage("", tool_calls=[generate_call("g1", "a cat")]),
        tool_result("g1", "cat", create_image_block(url=URL)),
        AIMessage("", tool_calls=[generate_call("e1", "a hat"), generate_call("t1", "a task")]),
        tool_result("e1", "cat with hat", create_image_block(url=URL + "?hat")),
        ToolMessage("task t1 still pending", tool_call_id="t1"),  # a text-only answer in the run
        AIMessage("Done."),
    ]
    moved = move_tool_images_to_user(messages)
    assert [type(m).__name__ for m in moved] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert moved[6] is messages[5]  # no image: the same object
    body = chat_completions_messages(moved)
    assert_tool_calls_answered_in_order(body)
    assert [non_text_parts(m) for m in body if m["role"] == "user"][1:] == [
        [{"type": "image_url", "image_url": {"url": URL}}],
        [{"type": "image_url", "image_url": {"url": URL + "?hat"}}],
    ]


# -- properties of the transform --------------------------------------------------------------


def test_does_not_mutate_its_input_and_is_idempotent() -> None:
    messages = history()
    snapshot = copy.deepcopy(messages)
    once = move_tool_images_to_user(messages)
    assert messages == snapshot
    twice = move_tool_images_to_user(once)
    assert twice == once
    assert all(a is b for a, b in zip(twice, once, strict=True))


def test_tool_messages_keep_their_identity_fields() -> None:
    moved = move_tool_images_to_user(history())
    original = history()[3]
    stripped = moved[3]
    assert isinstance(stripped, ToolMessage) and isinstance(original, ToolMessage)
    assert (stripped.tool_call_id, stripped.name, stripped.id, stripped.status) == (
        original.tool_call_id,
        original.name,
        original.id,
        original.status,
    )
    assert stripped.artifact == {"task_id": "task-call_1"}


def test_a_history_without_tool_images_passes_through() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("s"),
        HumanMessage(content=[{"type": "text", "text": "see"}, dict(create_image_block(url=URL))]),
        AIMessage("", tool_calls=[generate_call("c", "x")]),
        ToolMessage("a text result", tool_call_id="c"),
        ToolMessage(content=[{"type": "text", "text": "listed"}], tool_call_id="d"),
        AIMessage("ok"),
    ]
    moved = move_tool_images_to_user(messages)
    assert moved == messages
    assert all(a is b for a, b in zip(moved, messages, strict=True))
    assert move_tool_images_to_user([]) == []


def test_a_history_that_ends_with_tool_messages_ends_with_the_images() -> None:
    """What an agent's model sees right after its tools ran."""
    moved = move_tool_images_to_user(history()[:-1])
    assert isinstance(moved[-1], HumanMessage)
    assert [b["type"] for b in moved[-1].content if isinstance(b, dict)].count("image") == 2


def test_image_block_types() -> None:
    assert frozenset({"image", "image_url"}) == IMAGE_BLOCK_TYPES


# -- the agent middleware ---------------------------------------------------------------------

needs_langchain = pytest.mark.skipif(
    importlib.util.find_spec("langchain") is None, reason="langchain is in the test extra"
)


@tool(response_format="content_and_artifact")
def draw(prompt: str, inline: bool = False) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Draw ``prompt``; returns the image as a content block (URL, or base64 when inline)."""
    image = (
        create_image_block(base64=PNG_B64, mime_type="image/png")
        if inline
        else create_image_block(url=URL)
    )
    return [{"type": "text", "text": f"drew {prompt}"}, dict(image)], {"prompt": prompt}


def agent_script() -> ScriptedChatModel:
    return ScriptedChatModel(
        steps=[
            AIMessage(
                "",
                tool_calls=[
                    {"name": "draw", "args": {"prompt": "a cat"}, "id": "d1", "type": "tool_call"},
                    {
                        "name": "draw",
                        "args": {"prompt": "a dog", "inline": True},
                        "id": "d2",
                        "type": "tool_call",
                    },
                ],
            ),
            AIMessage("A cat and a dog."),
        ]
    )


def image_blocks(message: BaseMessage) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return []
    return [
        b for b in message.content if isinstance(b, dict) and b.get("type") in IMAGE_BLOCK_TYPES
    ]


def check_agent_run(model: ScriptedChatModel, state: dict[str, Any]) -> None:
    assert len(model.received) == 2
    second_call = model.received[1]
    assert [type(m).__name__ for m in second_call] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "HumanMessage",
    ]
    for message in second_call:
        if isinstance(message, ToolMessage):
            assert image_blocks(message) == []
    images = image_blocks(second_call[-1])
    assert [(b.get("url"), b.get("base64")) for b in images] == [(URL, None), (None, PNG_B64)]
    # The agent's state keeps the tool results as the tools returned them.
    kept = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert [len(image_blocks(m)) for m in kept] == [1, 1]
    assert state["messages"][-1].content == "A cat and a dog."


@needs_langchain
def test_agent_middleware_moves_images_before_the_model_call() -> None:
    from langchain.agents import create_agent

    from langchain_nanobanana.middleware import ToolImagesToUserMiddleware

    model = agent_script()
    agent = create_agent(model, [draw], middleware=[ToolImagesToUserMiddleware()])
    state = agent.invoke({"messages": [HumanMessage("Draw a cat and a dog.")]})
    check_agent_run(model, state)


@needs_langchain
async def test_agent_middleware_async() -> None:
    from langchain.agents import create_agent

    model = agent_script()
    agent = create_agent(model, [draw], middleware=[middleware.ToolImagesToUserMiddleware()])
    state = await agent.ainvoke({"messages": [HumanMessage("Draw a cat and a dog.")]})
    check_agent_run(model, state)


@needs_langchain
def test_without_the_middleware_the_model_gets_images_in_tool_messages() -> None:
    """The control: what the middleware fixes."""
    from langchain.agents import create_agent

    model = agent_script()
    agent = create_agent(model, [draw])
    agent.invoke({"messages": [HumanMessage("Draw a cat and a dog.")]})
    assert [len(image_blocks(m)) for m in model.received[1] if isinstance(m, ToolMessage)] == [1, 1]


@needs_langchain
def test_middleware_is_an_agent_middleware() -> None:
    from langchain.agents.middleware import AgentMiddleware

    cls = middleware.ToolImagesToUserMiddleware
    assert issubclass(cls, AgentMiddleware)
    assert cls.__module__ == "langchain_nanobanana.middleware"
    assert cls.__name__ == cls.__qualname__ == "ToolImagesToUserMiddleware"
    assert cls is middleware.ToolImagesToUserMiddleware  # built once
    assert cls().name == "ToolImagesToUserMiddleware"
    assert "agents" in (cls.__doc__ or "")


def test_without_langchain_the_function_works_and_the_class_names_the_extra() -> None:
    probe = textwrap.dedent(
        """
        import sys
        for name in ("langchain", "langchain.agents", "langchain.agents.middleware"):
            sys.modules[name] = None  # as if langchain were not installed
        from langchain_core.messages import AIMessage, ToolMessage
        from langchain_nanobanana import middleware
        from langchain_nanobanana.middleware import move_tool_images_to_user

        call = {"name": "t", "args": {}, "id": "c", "type": "tool_call"}
        image = {"type": "image", "url": "https://example.com/a.png"}
        moved = move_tool_images_to_user(
            [AIMessage("", tool_calls=[call]), ToolMessage([image], tool_call_id="c")]
        )
        print(type(moved[-1]).__name__)
        try:
            from langchain_nanobanana.middleware import ToolImagesToUserMiddleware
        except ImportError as exc:
            print("ImportError:", exc)
        try:
            middleware.Nope
        except AttributeError:
            print("AttributeError")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "HumanMessage"
    assert lines[1].startswith("ImportError: ToolImagesToUserMiddleware needs langchain")
    assert "pip install 'langchain-nanobanana[agents]'" in lines[1]
    assert lines[2] == "AttributeError"


def test_importing_the_module_does_not_import_langchain() -> None:
    probe = "import sys, langchain_nanobanana.middleware; print('langchain' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
