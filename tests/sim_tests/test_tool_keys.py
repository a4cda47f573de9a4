"""Tool keys know their conversation: a tool's default idempotency key is the run's thread
(``configurable.thread_id``) plus the ``tool_call_id``. A ``tool_call_id`` reused by another
thread ("0", "call-1" from local or scripted models) is a new request — never the other
conversation's image, never an ``IdempotencyKeyMismatchError``; the same thread and id again
(a replay from a checkpoint) pays nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from langchain_core.runnables import RunnableConfig

from langchain_nanobanana import NanoBananaGenerateTool
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import fast_client, invoke_tool

SUBMIT = "/nano-banana/images"


def _thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


def test_reused_tool_call_id_in_another_thread_is_a_new_request(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    with fast_client(sim, journal=tmp_path / "runs.sqlite") as client:
        tool = NanoBananaGenerateTool(client=client)
        cat = invoke_tool(tool, {"prompt": "a cat"}, _thread("alice"))
        # another conversation, same id, same prompt: its own image (a second task)
        cat_bob = invoke_tool(tool, {"prompt": "a cat"}, _thread("bob"))
        # another conversation, same id, another prompt: no IdempotencyKeyMismatchError
        dog = invoke_tool(tool, {"prompt": "a dog"}, _thread("carol"))
        # the same conversation replayed: the recorded image, nothing sent
        again = invoke_tool(tool, {"prompt": "a cat"}, _thread("alice"))
    assert cat.artifact.task_id != cat_bob.artifact.task_id
    assert dog.status != "error" and dog.artifact.task_id not in (
        cat.artifact.task_id,
        cat_bob.artifact.task_id,
    )
    assert again.artifact.task_id == cat.artifact.task_id
    assert len(sim.requests_to(SUBMIT)) == 3


def test_async_tool_keys_know_their_thread(sim: FakeNanoBananaServer, tmp_path: Path) -> None:
    async def main() -> list[str]:
        with fast_client(sim, journal=tmp_path / "runs.sqlite") as client:
            tool = NanoBananaGenerateTool(client=client)
            ids = []
            for thread in ("t1", "t2", "t1"):
                call = {"type": "tool_call", "id": "0", "name": tool.name, "args": {"prompt": "x"}}
                message = await tool.ainvoke(call, config=_thread(thread))
                ids.append(message.artifact.task_id)
            return ids

    first, second, replay = asyncio.run(main())
    assert first != second and replay == first
    assert len(sim.requests_to(SUBMIT)) == 2
