"""A LangGraph agent worker for ``test_durable_agent.py``: ``create_agent`` with our tools,
checkpointed by ``PostgresSaver``, the PostgreSQL journal in the same database.

Usage: ``python durable_worker.py start|resume BASE_URL PG_URL THREAD_ID OUT_JSON``. ``start``
sends the user's request (the scripted model calls ``nano_banana_generate`` with tool call id
``call-1``, then answers); ``resume`` continues the thread from its last checkpoint (input
``None``). Either writes the tool messages it ends with to ``OUT_JSON``.
"""

from __future__ import annotations

import json
import sys

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres import PostgresSaver

from langchain_nanobanana import ImageResult, NanoBananaClient, NanoBananaToolkit
from langchain_nanobanana.testing.chat import ScriptedChatModel, tool_call


def main(argv: list[str]) -> int:
    mode, base_url, pg_url, thread_id, out = argv
    steps: list[AIMessage] = [AIMessage("Here is your cat.")]
    if mode == "start":
        steps.insert(0, tool_call("nano_banana_generate", {"prompt": "a cat"}, id="call-1"))
    client = NanoBananaClient(
        "sim-token", base_url=base_url, journal=pg_url, poll_interval=0.05, max_poll_interval=0.2
    )
    with PostgresSaver.from_conn_string(pg_url) as saver:
        saver.setup()
        agent = create_agent(
            ScriptedChatModel(steps=steps),
            tools=NanoBananaToolkit(client=client).get_tools(),
            checkpointer=saver,
        )
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        if mode == "start":
            state = agent.invoke({"messages": [HumanMessage("Draw a cat.")]}, config)
        else:
            state = agent.invoke(None, config)  # resume from the thread's last checkpoint
    tools = [
        {
            "tool_call_id": m.tool_call_id,
            "task_id": m.artifact.task_id if isinstance(m.artifact, ImageResult) else None,
            "urls": m.artifact.urls if isinstance(m.artifact, ImageResult) else [],
            "content": str(m.content),
        }
        for m in state["messages"]
        if isinstance(m, ToolMessage)
    ]
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"tools": tools, "last": str(state["messages"][-1].content)}, fh)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
