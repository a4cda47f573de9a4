"""Callbacks without polling: ``ImageResult.from_callback`` and the loopback ``WebhookReceiver``.

Deliveries come from the simulator's own callback dispatcher over real HTTP on 127.0.0.1 (the
same shape the API POSTs to a ``callback_url``, seed 000); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from langchain_core.messages import ToolMessage

from langchain_nanobanana import (
    NanoBananaClient,
    NanoBananaGenerateTool,
    NanoBananaImageGenerator,
    NanoBananaTaskTool,
)
from langchain_nanobanana.results import ImageResult
from langchain_nanobanana.testing import FakeNanoBananaServer, WebhookReceiver, png_size
from tests.helpers import eventually

SUCCESS: dict[str, Any] = {
    "success": True,
    "task_id": "6bbb8b02-6e0c-4b39-a1a4-0a1c8b1f5f6b",
    "trace_id": "9d3e0f3e-5f2c-4bde-9d0b-5b8b8c1e2a11",
    "data": [
        {
            "prompt": "a white siamese cat",
            "image_url": "https://platform.cdn.acedata.cloud/nanobanana/abc.png",
        }
    ],
}


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def _tasks_polled(sim: FakeNanoBananaServer) -> int:
    return len(sim.requests_to("/nano-banana/tasks"))


# -- ImageResult.from_callback ---------------------------------------------------------------------


@pytest.mark.parametrize("form", ["dict", "str", "bytes"])
def test_from_callback_parses_dict_str_and_bytes(form: str) -> None:
    forms: dict[str, dict[str, Any] | str | bytes] = {
        "dict": SUCCESS,
        "str": json.dumps(SUCCESS),
        "bytes": json.dumps(SUCCESS).encode(),
    }
    payload = forms[form]

    result = ImageResult.from_callback(payload)

    assert result.status == "succeeded"
    assert result.task_id == SUCCESS["task_id"]
    assert result.trace_id == SUCCESS["trace_id"]
    assert result.urls == ["https://platform.cdn.acedata.cloud/nanobanana/abc.png"]
    assert result.images[0].prompt == "a white siamese cat"
    assert result.raw == SUCCESS


def test_from_callback_strips_account_fields() -> None:
    payload = {**SUCCESS, "user_id": "u-1", "credential_id": "c-1", "api_id": "a-1"}

    result = ImageResult.from_callback(payload)

    assert result.raw is not None
    assert not {"user_id", "credential_id", "api_id"} & set(result.raw)
    assert "u-1" not in result.model_dump_json()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        ("", "not JSON"),
        (b'{"success": tru', "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('"just a string"', "must be a JSON object, got str"),
        (json.dumps({"success": True, "data": SUCCESS["data"]}), "no task_id"),
        (json.dumps({**SUCCESS, "task_id": ""}), "no task_id"),
        (json.dumps({**SUCCESS, "data": []}), "success without images"),
        (json.dumps({"success": True, "task_id": "t-1"}), "success without images"),
        (json.dumps({**SUCCESS, "data": [{"prompt": "no url"}]}), "success without images"),
    ],
)
def test_from_callback_rejects_bodies_that_are_not_callbacks(
    body: str | bytes, needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        ImageResult.from_callback(body)


def test_from_callback_rejects_a_non_object_given_as_python_value() -> None:
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        ImageResult.from_callback([SUCCESS])  # type: ignore[arg-type]


def test_from_callback_non_json_error_names_the_body_start() -> None:
    with pytest.raises(ValueError, match="body starts with '<html>502") as info:
        ImageResult.from_callback(b"<html>502 Bad Gateway</html>")
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_from_callback_failure_payload_is_failed_with_error() -> None:
    payload = {
        "success": False,
        "task_id": "t-9",
        "trace_id": "tr-9",
        "error": {"code": "generation_failed", "message": "The image could not be generated."},
    }

    result = ImageResult.from_callback(json.dumps(payload))

    assert result.status == "failed"
    assert result.task_id == "t-9"
    assert result.error is not None
    assert result.error.code == "generation_failed"
    assert result.error.message == "The image could not be generated."
    assert result.urls == []


# -- WebhookReceiver: the receiver itself ----------------------------------------------------------


def test_receiver_url_and_lifecycle() -> None:
    receiver = WebhookReceiver(path="/hooks/nb")
    with pytest.raises(RuntimeError, match="not started"):
        _ = receiver.url
    with receiver:
        assert receiver.url.startswith("http://127.0.0.1:")
        assert receiver.url.endswith("/hooks/nb")
        with pytest.raises(RuntimeError, match="already running"):
            receiver.start()
        resp = requests.post(receiver.url, json=SUCCESS, timeout=5)
        assert resp.status_code == 200
        assert resp.json() == {"ok": True, "task_id": SUCCESS["task_id"]}
    receiver.stop()  # idempotent
    assert [r.task_id for r in receiver.received] == [SUCCESS["task_id"]]
    with pytest.raises(requests.ConnectionError):
        requests.post(receiver.url, json=SUCCESS, timeout=5)


def test_receiver_rejects_garbage_with_400_and_keeps_it(hook: WebhookReceiver) -> None:
    bodies = [b"not json at all", b"[]", json.dumps({"success": True}).encode()]
    for body in bodies:
        resp = requests.post(
            hook.url, data=body, headers={"content-type": "application/json"}, timeout=5
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["ok"] is False
    assert hook.rejected == bodies
    assert hook.received == []


def test_receiver_answers_404_on_other_paths_and_405_on_get(hook: WebhookReceiver) -> None:
    base = hook.url.removesuffix("/nano-banana/callback")
    assert requests.post(f"{base}/elsewhere", json=SUCCESS, timeout=5).status_code == 404
    assert requests.get(hook.url, timeout=5).status_code == 405
    assert hook.received == []
    assert hook.rejected == []


def test_receiver_wait_for_times_out_naming_the_task(hook: WebhookReceiver) -> None:
    with pytest.raises(TimeoutError, match="task_id=never-sent"):
        hook.wait_for("never-sent", timeout=0.05)


async def test_receiver_await_for_times_out_naming_the_task(hook: WebhookReceiver) -> None:
    with pytest.raises(TimeoutError, match="task_id=never-sent"):
        await hook.await_for("never-sent", timeout=0.05)


def test_receiver_returns_an_earlier_delivery_at_once(hook: WebhookReceiver) -> None:
    requests.post(hook.url, json=SUCCESS, timeout=5).raise_for_status()

    result = hook.wait_for(SUCCESS["task_id"], timeout=0)

    assert result.urls == [SUCCESS["data"][0]["image_url"]]


async def test_await_for_does_not_block_the_event_loop(hook: WebhookReceiver) -> None:
    """While ``await_for`` waits, other coroutines run: the delivery below is sent from the same
    event loop (in a worker thread) *after* the wait started, so a blocking wait would deadlock
    until its timeout.
    """

    async def deliver_later() -> None:
        await asyncio.sleep(0.05)
        resp = await asyncio.to_thread(requests.post, hook.url, json=SUCCESS, timeout=5)
        resp.raise_for_status()

    sender = asyncio.create_task(deliver_later())
    result = await hook.await_for(SUCCESS["task_id"], timeout=10)
    await sender

    assert result.task_id == SUCCESS["task_id"]
    assert result.status == "succeeded"


# -- the simulator's callback_url deliveries -------------------------------------------------------


def test_client_generate_with_callback_url_is_delivered(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    sim.task_duration = 0.2

    pending = client.generate("a lighthouse at dawn", aspect_ratio="16:9", callback_url=hook.url)

    assert pending.status == "pending"
    assert pending.task_id is not None
    assert _tasks_polled(sim) == 0  # no polling with a callback_url
    [submitted] = sim.requests_to("/nano-banana/images")
    assert submitted.json == {
        "action": "generate",
        "prompt": "a lighthouse at dawn",
        "aspect_ratio": "16:9",
        "callback_url": hook.url,
    }

    delivered = hook.wait_for(pending.task_id, timeout=10)

    assert delivered.status == "succeeded"
    assert delivered.task_id == pending.task_id
    assert delivered.trace_id == pending.trace_id
    assert len(delivered.urls) == 1
    image = client.session.get(delivered.urls[0], timeout=5)
    assert png_size(image.content) == (1344, 768)  # 16:9 at 1K
    assert _tasks_polled(sim) == 0
    assert [c["status"] for c in sim.callbacks_sent] == [200]
    assert sim.callbacks_sent[0]["url"] == hook.url
    assert [r.task_id for r in hook.received] == [pending.task_id]


def test_client_edit_with_callback_url_is_delivered(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    source = sim.image_url(832, 1248)  # 2:3: the edit keeps the first image's size

    pending = client.edit("give the cat a red bow tie", [source], count=2, callback_url=hook.url)
    delivered = hook.wait_for(pending.task_id or "", timeout=10)

    assert pending.status == "pending"
    assert delivered.status == "succeeded"
    assert delivered.task_id == pending.task_id
    assert len(delivered.urls) == 2
    for url in delivered.urls:
        assert png_size(client.session.get(url, timeout=5).content) == (832, 1248)
    [submitted] = sim.requests_to("/nano-banana/images")
    assert isinstance(submitted.json, dict)
    assert submitted.json["action"] == "edit"
    assert submitted.json["image_urls"] == [source]
    assert submitted.json["callback_url"] == hook.url
    assert _tasks_polled(sim) == 0


async def test_async_generate_with_callback_url_await_for(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    sim.task_duration = 0.2

    pending = await client.agenerate("a red fox in snow", callback_url=hook.url)
    assert pending.status == "pending"
    assert pending.task_id is not None
    delivered = await hook.await_for(pending.task_id, timeout=10)

    assert delivered.status == "succeeded"
    assert delivered.task_id == pending.task_id
    assert delivered.images[0].prompt == "a red fox in snow"
    assert _tasks_polled(sim) == 0


async def test_async_edit_with_callback_url_await_for(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    pending = await client.aedit(
        "make it night", [sim.image_url(1024, 1024)], callback_url=hook.url
    )
    delivered = await hook.await_for(pending.task_id or "", timeout=10)

    assert delivered.status == "succeeded"
    assert delivered.task_id == pending.task_id
    assert _tasks_polled(sim) == 0


async def test_many_callbacks_awaited_concurrently(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    sim.task_duration = 0.1
    prompts = [f"variant {n}" for n in range(5)]
    pendings = [client.generate(p, callback_url=hook.url) for p in prompts]

    delivered = await asyncio.gather(*(hook.await_for(p.task_id or "", 10) for p in pendings))

    assert [d.task_id for d in delivered] == [p.task_id for p in pendings]
    assert [d.images[0].prompt for d in delivered] == prompts
    assert sorted(r.task_id or "" for r in hook.received) == sorted(
        p.task_id or "" for p in pendings
    )


def test_failed_task_callback_is_failed_with_error_code(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")

    pending = client.generate("something refused", callback_url=hook.url)
    delivered = hook.wait_for(pending.task_id or "", timeout=10)

    assert pending.status == "pending"  # the submission itself was accepted
    assert delivered.status == "failed"
    assert delivered.task_id == pending.task_id
    assert delivered.error is not None
    assert delivered.error.code == "content_policy"
    assert delivered.error.message == "The prompt was refused."
    assert delivered.urls == []
    assert hook.rejected == []  # a failure is a valid callback, not garbage


def test_generate_tool_with_callback_url_returns_pending_then_receiver_gets_result(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    sim.task_duration = 0.2
    tool = NanoBananaGenerateTool(client=client, callback_url=hook.url)

    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "call-1",
            "name": tool.name,
            "args": {"prompt": "a paper boat", "aspect_ratio": "3:2"},
        }
    )

    assert isinstance(message, ToolMessage)
    pending = message.artifact
    assert isinstance(pending, ImageResult)
    assert pending.status == "pending"
    assert pending.task_id is not None
    assert pending.task_id in str(message.content)
    assert "still running" in str(message.content)
    assert hook.url not in str(message.content)  # the developer's URL is not for the model
    assert _tasks_polled(sim) == 0

    delivered = hook.wait_for(pending.task_id, timeout=10)

    assert delivered.status == "succeeded"
    assert delivered.task_id == pending.task_id
    # The task tool finds the same finished task by id.
    looked_up = NanoBananaTaskTool(client=client).invoke(
        {
            "type": "tool_call",
            "id": "call-2",
            "name": "nano_banana_task",
            "args": {"task_id": pending.task_id},
        }
    )
    assert looked_up.artifact.urls == delivered.urls


async def test_generate_tool_async_with_callback_url(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    tool = NanoBananaGenerateTool(client=client, callback_url=hook.url)

    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c", "name": tool.name, "args": {"prompt": "a kite"}}
    )
    delivered = await hook.await_for(message.artifact.task_id, timeout=10)

    assert message.artifact.status == "pending"
    assert delivered.task_id == message.artifact.task_id
    assert delivered.status == "succeeded"


def test_runnable_with_callback_url_returns_pending_without_polling(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    sim.task_duration = 0.2
    generator = NanoBananaImageGenerator(client=client, aspect_ratio="9:16", callback_url=hook.url)

    pending = generator.invoke("a tall waterfall")

    assert pending.status == "pending"
    assert pending.task_id is not None
    assert _tasks_polled(sim) == 0
    [submitted] = sim.requests_to("/nano-banana/images")
    assert isinstance(submitted.json, dict)
    assert submitted.json["callback_url"] == hook.url
    assert "async" not in submitted.json  # a callback_url makes the API answer at once already

    delivered = hook.wait_for(pending.task_id, timeout=10)

    assert delivered.task_id == pending.task_id
    assert png_size(client.session.get(delivered.urls[0], timeout=5).content) == (768, 1344)
    assert _tasks_polled(sim) == 0


def test_runnable_fixed_sizes_apply_to_a_callback_edit(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    """The generator's ``aspect_ratio``/``resolution`` apply to edits too (SPEC: both actions),
    with a callback as without one."""
    source = sim.image_url(64, 64)
    generator = NanoBananaImageGenerator(
        client=client,
        model="nano-banana-pro",
        aspect_ratio="16:9",
        resolution="2K",
        callback_url=hook.url,
    )

    pending = generator.invoke({"prompt": "make it wide", "images": [source]})
    delivered = hook.wait_for(pending.task_id or "", timeout=10)

    [submitted] = sim.requests_to("/nano-banana/images")
    assert submitted.json == {
        "action": "edit",
        "prompt": "make it wide",
        "model": "nano-banana-pro",
        "image_urls": [source],
        "aspect_ratio": "16:9",
        "resolution": "2K",
        "callback_url": hook.url,
    }
    assert delivered.status == "succeeded" and delivered.task_id == pending.task_id
    image = client.session.get(delivered.urls[0], timeout=5)
    assert png_size(image.content) == (2688, 1536)  # 16:9 at 2K, not the source's 64x64
    assert _tasks_polled(sim) == 0


async def test_runnable_abatch_with_callback_url_matches_deliveries(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    generator = NanoBananaImageGenerator(client=client, callback_url=hook.url)

    pendings = await generator.abatch(["one", "two", {"prompt": "three", "count": 2}])

    assert [p.status for p in pendings] == ["pending"] * 3
    delivered = [await hook.await_for(p.task_id or "", timeout=10) for p in pendings]
    assert [d.task_id for d in delivered] == [p.task_id for p in pendings]
    assert [len(d.urls) for d in delivered] == [1, 1, 2]
    assert _tasks_polled(sim) == 0


def test_runnable_batch_with_callback_url_does_not_poll(
    sim: FakeNanoBananaServer, client: NanoBananaClient, hook: WebhookReceiver
) -> None:
    generator = NanoBananaImageGenerator(client=client, callback_url=hook.url)

    pendings = generator.batch(["alpha", "beta"])

    assert {p.status for p in pendings} == {"pending"}
    for p in pendings:
        assert hook.wait_for(p.task_id or "", timeout=10).status == "succeeded"
    assert _tasks_polled(sim) == 0


def test_callback_that_cannot_be_delivered_is_recorded_by_the_simulator(
    sim: FakeNanoBananaServer, client: NanoBananaClient
) -> None:
    """A receiver that is gone: the simulator records a failed delivery, and the task can still be
    read from ``/nano-banana/tasks`` (what the task tool does) — the result is not lost.
    """
    receiver = WebhookReceiver().start()
    url = receiver.url
    receiver.stop()

    pending = client.generate("lost callback", callback_url=url)
    assert pending.task_id is not None
    result = client.poll_task(pending.task_id)

    assert result.status == "succeeded"
    assert eventually(lambda: bool(sim.callbacks_sent), within=5.0)
    assert sim.callbacks_sent[0]["url"] == url
    assert sim.callbacks_sent[0]["status"] is None  # connection refused
    assert receiver.received == []
