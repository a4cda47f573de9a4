"""Agents that use the Nano Banana tools, driven by a scripted tool-calling chat model.

The script is the SPEC's main job: generate "a white siamese cat", edit the returned URL with
"give the cat a small red bow tie", then answer. It runs through ``langchain.agents.create_agent``
(sync and async) and through a LangGraph ``StateGraph`` with ``ToolNode``, all against the loopback
simulator. The assertions look at both ends: the exact requests the simulator received, and the
exact messages the model received (``ScriptedChatModel.received``).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import InputAgentState
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_nanobanana import ASPECT_RATIOS, ImageResult, NanoBananaClient, NanoBananaToolkit
from langchain_nanobanana.testing import FakeNanoBananaServer
from langchain_nanobanana.testing.chat import ScriptedChatModel, last_image_urls, tool_call

IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
CAT = "a white siamese cat"
BOW_TIE = "give the cat a small red bow tie"
TOOL_NAMES = ["nano_banana_generate", "nano_banana_edit", "nano_banana_task"]


def edit_the_last_image(messages: list[BaseMessage]) -> AIMessage:
    """Step 2: edit the image the generate call returned (read from its ToolMessage)."""
    return tool_call(
        "nano_banana_edit",
        {"prompt": BOW_TIE, "image_urls": last_image_urls(messages)},
        id="edit-1",
    )


def answer(messages: list[BaseMessage]) -> AIMessage:
    """Step 3: the final answer names the edited image."""
    return AIMessage(content=f"Here is your cat with a bow tie: {last_image_urls(messages)[0]}")


def cat_script() -> ScriptedChatModel:
    return ScriptedChatModel(
        steps=[
            tool_call("nano_banana_generate", {"prompt": CAT}, id="gen-1"),
            edit_the_last_image,
            answer,
        ]
    )


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def image_blocks(message: BaseMessage) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return []
    return [b for b in message.content if isinstance(b, dict) and b.get("type") == "image"]


def check_cat_run(
    sim: FakeNanoBananaServer, model: ScriptedChatModel, messages: list[BaseMessage]
) -> tuple[ImageResult, ImageResult]:
    """The assertions every run of the cat script must pass; returns (generated, edited)."""
    generated_msg, edited_msg = tool_messages(messages)
    generated, edited = generated_msg.artifact, edited_msg.artifact
    assert isinstance(generated, ImageResult) and isinstance(edited, ImageResult)
    assert generated.status == edited.status == "succeeded"
    assert (generated_msg.tool_call_id, generated_msg.name, generated_msg.status) == (
        "gen-1",
        "nano_banana_generate",
        "success",
    )
    assert (edited_msg.tool_call_id, edited_msg.name, edited_msg.status) == (
        "edit-1",
        "nano_banana_edit",
        "success",
    )
    (generated_url,) = generated.urls
    (edited_url,) = edited.urls
    assert generated_url != edited_url

    # Exactly what the simulator received, in order: two billable submissions, each followed by
    # the look-up of its own task, and nothing else.
    assert [(r.method, r.path, r.json) for r in sim.requests] == [
        ("POST", IMAGES, {"action": "generate", "prompt": CAT, "async": True}),
        ("POST", TASKS, {"action": "retrieve", "id": generated.task_id}),
        (
            "POST",
            IMAGES,
            {"action": "edit", "prompt": BOW_TIE, "image_urls": [generated_url], "async": True},
        ),
        ("POST", TASKS, {"action": "retrieve", "id": edited.task_id}),
    ]
    assert set(sim.tasks) == {generated.task_id, edited.task_id}

    # The conversation: human, call, result, call, result, answer.
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.content == f"Here is your cat with a bow tie: {edited_url}"
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    ai_calls = [m.tool_calls for m in messages if isinstance(m, AIMessage)]
    assert ai_calls[0] == [
        {
            "name": "nano_banana_generate",
            "args": {"prompt": CAT},
            "id": "gen-1",
            "type": "tool_call",
        }
    ]
    assert ai_calls[1][0]["args"] == {"prompt": BOW_TIE, "image_urls": [generated_url]}

    # What the model saw: three calls, each with the whole conversation so far.
    assert len(model.received) == 3
    assert [len(call) for call in model.received] == [1, 3, 5]
    assert model.received[0][0].content == "Draw a white siamese cat, then give it a red bow tie."
    assert model.received[1][-1].tool_call_id == "gen-1"  # type: ignore[attr-defined]
    assert generated_url in model.received[1][-1].text
    assert model.received[2][-1].tool_call_id == "edit-1"  # type: ignore[attr-defined]
    assert edited_url in model.received[2][-1].text
    for call in model.received:
        for message in call:
            assert "base64" not in str(message.content)
            assert "user_id" not in str(message.content)
    return generated, edited


REQUEST = HumanMessage("Draw a white siamese cat, then give it a red bow tie.")
#: The user's request as the input of a ``create_agent`` agent ...
PROMPT: InputAgentState = {"messages": [REQUEST]}
#: ... and of a ``StateGraph(MessagesState)``.
GRAPH_PROMPT: MessagesState = {"messages": [REQUEST]}


def test_create_agent_generates_then_edits(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    model = cat_script()
    agent = create_agent(model, tools=NanoBananaToolkit(client=client).get_tools())
    result = agent.invoke(PROMPT)
    assert model.bound_tools == TOOL_NAMES
    check_cat_run(sim, model, result["messages"])
    for message in model.received[1] + model.received[2]:
        assert image_blocks(message) == []  # include_image_blocks is off by default
        if isinstance(message, ToolMessage):
            assert isinstance(message.content, str)


def test_create_agent_model_receives_image_blocks(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    model = cat_script()
    tools = NanoBananaToolkit(client=client, include_image_blocks=True).get_tools()
    result = create_agent(model, tools=tools).invoke(PROMPT)
    generated, edited = check_cat_run(sim, model, result["messages"])

    # 2nd model call: the generate ToolMessage carries a standard image block with its URL.
    second = model.received[1][-1]
    assert isinstance(second, ToolMessage) and second.status == "success"
    assert isinstance(second.content, list) and second.content[0]["type"] == "text"  # type: ignore[index]
    assert [(b["type"], b["url"]) for b in image_blocks(second)] == [("image", generated.urls[0])]
    # 3rd model call: both tool results, each with its own image block, in order.
    seen = [
        [b["url"] for b in image_blocks(m)] for m in model.received[2] if isinstance(m, ToolMessage)
    ]
    assert seen == [generated.urls, edited.urls]
    # LangChain reads them as standard image content blocks.
    standard = [b for b in model.received[2][-1].content_blocks if b["type"] == "image"]
    assert [b.get("url") for b in standard] == edited.urls
    # The first call saw no tool output at all.
    assert [type(m) for m in model.received[0]] == [HumanMessage]


def test_langgraph_tool_node_generates_then_edits(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    model = cat_script()
    tools = NanoBananaToolkit(client=client, include_image_blocks=True).get_tools()
    bound = model.bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    result = graph.compile().invoke(GRAPH_PROMPT)
    generated, edited = check_cat_run(sim, model, result["messages"])
    assert [b["url"] for b in image_blocks(model.received[1][-1])] == generated.urls
    assert [b["url"] for b in image_blocks(model.received[2][-1])] == edited.urls


async def test_create_agent_async(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.1  # the tools wait (with asyncio.sleep) for the task inside the call
    model = cat_script()
    agent = create_agent(model, tools=NanoBananaToolkit(client=client).get_tools())
    result = await agent.ainvoke(PROMPT)
    messages = result["messages"]
    generated_msg, edited_msg = tool_messages(messages)
    assert isinstance(generated_msg.artifact, ImageResult)
    assert isinstance(edited_msg.artifact, ImageResult)
    bodies = [r.json for r in sim.requests_to(IMAGES)]
    assert bodies == [
        {"action": "generate", "prompt": CAT, "async": True},
        {
            "action": "edit",
            "prompt": BOW_TIE,
            "image_urls": generated_msg.artifact.urls,
            "async": True,
        },
    ]
    polls = [r.json for r in sim.requests_to(TASKS)]
    assert {p["id"] for p in polls} == {generated_msg.artifact.task_id, edited_msg.artifact.task_id}  # type: ignore[index]
    assert messages[-1].content == f"Here is your cat with a bow tie: {edited_msg.artifact.urls[0]}"
    assert len(model.received) == 3


def test_model_corrects_a_bad_argument_after_a_handled_error(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    def correct_the_aspect_ratio(messages: list[BaseMessage]) -> AIMessage:
        error = messages[-1]
        assert isinstance(error, ToolMessage) and error.status == "error"
        assert isinstance(error.content, str)
        # A model reads the allowed values from the message and picks one.
        allowed = [r for r in ASPECT_RATIOS if r in error.content.split("use ", 1)[1]]
        assert allowed == list(ASPECT_RATIOS)
        return tool_call("nano_banana_generate", {"prompt": CAT, "aspect_ratio": "4:3"}, id="gen-2")

    model = ScriptedChatModel(
        steps=[
            tool_call("nano_banana_generate", {"prompt": CAT, "aspect_ratio": "5:4"}, id="gen-1"),
            correct_the_aspect_ratio,
            lambda messages: AIMessage(content=f"Done: {last_image_urls(messages)[0]}"),
        ]
    )
    agent = create_agent(model, tools=NanoBananaToolkit(client=client).get_tools())
    messages = agent.invoke(PROMPT)["messages"]

    failed, succeeded = tool_messages(messages)
    assert (failed.tool_call_id, failed.status, failed.artifact) == ("gen-1", "error", None)
    assert "aspect_ratio='5:4'" in failed.content
    assert "Tool input validation error" not in failed.content
    assert (succeeded.tool_call_id, succeeded.status) == ("gen-2", "success")
    assert isinstance(succeeded.artifact, ImageResult)
    # The model saw the error message itself in its second call.
    assert model.received[1][-1].content == failed.content
    # One task, one billable submission: the bad call never reached the API.
    assert len(sim.tasks) == 1
    assert [r.json for r in sim.requests_to(IMAGES)] == [
        {"action": "generate", "prompt": CAT, "aspect_ratio": "4:3", "async": True}
    ]
    assert messages[-1].content == f"Done: {succeeded.artifact.urls[0]}"


def test_authentication_error_stops_the_agent(sim: FakeNanoBananaServer) -> None:
    """Not model-fixable: the error propagates instead of being handed to the model."""
    from langchain_nanobanana import AuthenticationError

    model = ScriptedChatModel(steps=[tool_call("nano_banana_generate", {"prompt": CAT}, id="g")])
    with NanoBananaClient("wrong-token", base_url=sim.base_url) as wrong:
        agent = create_agent(model, tools=NanoBananaToolkit(client=wrong).get_tools())
        with pytest.raises(AuthenticationError):
            agent.invoke(PROMPT)
    assert len(model.received) == 1  # the model was never asked to "fix" a bad token
    assert len(sim.requests_to(IMAGES)) == 1 and sim.tasks == {}


MODERATION = {"success": False, "error": {"code": "content_blocked", "message": "refused"}}
REPHRASED = "a white siamese cat sitting politely on a cushion"


def test_moderation_refusal_goes_back_to_the_model_which_rephrases(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    # The API refuses the first prompt (403 without a known code: content moderation); nothing
    # runs, nothing is billed. The model reads the tool message and tries another prompt.
    sim.inject_fault("body", status=403, body=MODERATION, path=IMAGES, create_task=False)

    def rephrase(messages: list[BaseMessage]) -> AIMessage:
        refusal = messages[-1]
        assert isinstance(refusal, ToolMessage) and refusal.status == "error"
        assert "rephrase" in refusal.text and "refused" in refusal.text
        return tool_call("nano_banana_generate", {"prompt": REPHRASED}, id="gen-2")

    model = ScriptedChatModel(
        steps=[
            tool_call("nano_banana_generate", {"prompt": CAT}, id="gen-1"),
            rephrase,
            lambda messages: AIMessage(content=f"Done: {last_image_urls(messages)[0]}"),
        ]
    )
    agent = create_agent(model, tools=NanoBananaToolkit(client=client).get_tools())

    messages = agent.invoke(PROMPT)["messages"]

    refused, drawn = tool_messages(messages)
    assert (refused.tool_call_id, refused.status, refused.artifact) == ("gen-1", "error", None)
    assert (drawn.tool_call_id, drawn.status) == ("gen-2", "success")
    assert isinstance(drawn.artifact, ImageResult) and drawn.artifact.status == "succeeded"
    assert messages[-1].content == f"Done: {drawn.artifact.urls[0]}"
    assert [r.json for r in sim.requests_to(IMAGES)] == [
        {"action": "generate", "prompt": CAT, "async": True},
        {"action": "generate", "prompt": REPHRASED, "async": True},
    ]
    assert list(sim.tasks) == [drawn.artifact.task_id]  # one billed task
    assert len(model.received) == 3


def test_insufficient_balance_stops_the_agent(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    """The model cannot top up the account: the error propagates instead of going back to it."""
    from langchain_nanobanana import InsufficientBalanceError

    body = {"success": False, "error": {"code": "used_up", "message": "Balance used up."}}
    sim.inject_fault("body", status=402, body=body, path=IMAGES, create_task=False)
    model = ScriptedChatModel(steps=[tool_call("nano_banana_generate", {"prompt": CAT}, id="g")])
    agent = create_agent(model, tools=NanoBananaToolkit(client=client).get_tools())

    with pytest.raises(InsufficientBalanceError) as info:
        agent.invoke(PROMPT)

    assert info.value.status_code == 402 and info.value.code == "used_up"
    assert len(model.received) == 1  # never asked to "fix" it
    assert len(sim.requests_to(IMAGES)) == 1 and sim.tasks == {}


async def test_insufficient_balance_stops_the_async_agent(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    from langchain_nanobanana import InsufficientBalanceError

    body = {"success": False, "error": {"code": "used_up", "message": "Balance used up."}}
    sim.inject_fault("body", status=402, body=body, path=IMAGES, create_task=False)
    model = ScriptedChatModel(steps=[tool_call("nano_banana_generate", {"prompt": CAT}, id="g")])
    agent = create_agent(model, tools=NanoBananaToolkit(client=client).get_tools())

    with pytest.raises(InsufficientBalanceError):
        await agent.ainvoke(PROMPT)

    assert len(model.received) == 1 and sim.tasks == {}
