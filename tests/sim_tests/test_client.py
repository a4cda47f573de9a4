"""``NanoBananaClient`` against the simulator over real loopback HTTP (nothing is mocked)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from langchain_nanobanana import (
    AuthenticationError,
    ImageRequest,
    ImageResult,
    NanoBananaClient,
    NanoBananaError,
    TaskFailedError,
    TaskRecord,
    TaskTimeoutError,
)
from langchain_nanobanana.testing import FakeNanoBananaServer, make_png, png_size
from tests.helpers import eventually, fast_client

IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
ACCOUNT_FIELDS = ("user_id", "credential_id", "application_id", "api_id")


def bodies(sim: FakeNanoBananaServer, path: str) -> list[Any]:
    return [r.json for r in sim.requests_to(path)]


def fetch(url: str) -> bytes:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.content


# -- modes --------------------------------------------------------------------------------------
def test_poll_mode_submits_async_then_reads_the_task(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    sim.task_duration = 0.15
    result = client.generate("a white siamese cat", aspect_ratio="2:3", count=2)
    assert result.status == "succeeded"
    assert len(result.urls) == 2
    assert [i.prompt for i in result.images] == ["a white siamese cat"] * 2
    assert bodies(sim, IMAGES) == [
        {
            "action": "generate",
            "prompt": "a white siamese cat",
            "aspect_ratio": "2:3",
            "count": 2,
            "async": True,
        }
    ]
    reads = bodies(sim, TASKS)
    assert len(reads) >= 2  # at least one read while running, one when done
    assert all(r == {"action": "retrieve", "id": result.task_id} for r in reads)
    assert sim.requests[0].path == IMAGES
    assert result.trace_id == sim.tasks[result.task_id or ""]["trace_id"]
    assert png_size(fetch(result.urls[0])) == (832, 1248)


def test_sync_mode_is_one_post_without_async(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.1
    with fast_client(sim, mode="sync") as client:
        result = client.generate("a red fox", model="nano-banana-2")
    assert result.status == "succeeded" and result.task_id
    assert [(r.method, r.path) for r in sim.requests] == [("POST", IMAGES)]
    assert bodies(sim, IMAGES) == [
        {"action": "generate", "prompt": "a red fox", "model": "nano-banana-2"}
    ]


@pytest.mark.parametrize("mode", ["poll", "sync"])
def test_wait_false_returns_pending_then_poll_task_resumes(
    sim: FakeNanoBananaServer, mode: str
) -> None:
    sim.task_duration = 0.2
    with fast_client(sim, mode=mode) as client:
        pending = client.generate("a boat", wait=False)
        assert pending.status == "pending" and pending.task_id and pending.trace_id
        assert pending.images == [] and pending.urls == []
        assert sim.requests_to(TASKS) == []
        assert bodies(sim, IMAGES)[0]["async"] is True  # even in sync mode: it must not block
        done = client.poll_task(pending.task_id)
    assert done.status == "succeeded" and done.task_id == pending.task_id
    assert done.trace_id == pending.trace_id
    assert len(sim.requests_to(IMAGES)) == 1  # resumed, never resubmitted


@pytest.mark.parametrize("mode", ["poll", "sync"])
def test_callback_url_returns_pending_at_once(sim: FakeNanoBananaServer, mode: str) -> None:
    sim.task_duration = 30  # a sync submission would block for 30 s
    callback = "https://example.com/hooks/nano-banana"
    with fast_client(sim, mode=mode) as client:
        result = client.generate("a kite", callback_url=callback)
    assert result.status == "pending" and result.task_id in sim.tasks
    assert bodies(sim, IMAGES) == [
        {"action": "generate", "prompt": "a kite", "callback_url": callback}
    ]
    assert sim.requests_to(TASKS) == []


def test_submit_a_prebuilt_request(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    request = ImageRequest(action="generate", prompt="a lamp", model="nano-banana-pro", count=1)
    result = client.submit(request)
    assert result.status == "succeeded"
    assert bodies(sim, IMAGES) == [request.to_payload(async_=True)]


# -- tasks --------------------------------------------------------------------------------------
def test_get_task_pending_then_done(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    pending = client.generate("a bridge", wait=False)
    assert pending.task_id
    record = client.get_task(pending.task_id)
    assert isinstance(record, TaskRecord)
    assert record.id == pending.task_id and record.status == "pending"
    assert record.result is None and record.finished_at is None
    assert record.created_at is not None and record.trace_id == pending.trace_id
    assert record.request == {"action": "generate", "prompt": "a bridge", "async": True}
    assert record.to_result().status == "pending"
    # The simulator's record carries account fields; the parsed one never does.
    assert all(key in sim.tasks[pending.task_id] for key in ACCOUNT_FIELDS)
    assert not any(key in (record.raw or {}) for key in ACCOUNT_FIELDS)

    sim.complete_task(pending.task_id)
    done = client.get_task(pending.task_id)
    assert done.status == "succeeded" and done.result is not None
    assert done.finished_at is not None and done.finished_at >= (done.created_at or 0)
    assert done.result.urls and done.to_result() == done.result
    assert bodies(sim, TASKS) == [{"action": "retrieve", "id": pending.task_id}] * 2


def test_get_task_unknown_id(client: NanoBananaClient) -> None:
    with pytest.raises(NanoBananaError) as info:
        client.get_task("no-such-task")
    assert "no-such-task" in str(info.value) and "not_found" in str(info.value)


def test_get_tasks_chunks_of_50_in_input_order(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    ids = [client.generate(f"image {n}", wait=False).task_id or "" for n in range(120)]
    wanted = ids[::-1]  # not the creation order
    records = client.get_tasks(wanted)
    assert [r.id for r in records] == wanted
    assert all(r.status == "succeeded" for r in records)
    batches = bodies(sim, TASKS)
    assert [b["action"] for b in batches] == ["retrieve_batch"] * 3
    assert [len(b["ids"]) for b in batches] == [50, 50, 20]
    assert [i for b in batches for i in b["ids"]] == wanted


def test_get_tasks_skips_unknown_and_keeps_duplicates(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    a = client.generate("a", wait=False).task_id or ""
    b = client.generate("b", wait=False).task_id or ""
    records = client.get_tasks([b, "missing", a, b])
    assert [r.id for r in records] == [b, a, b]  # input order, repeats kept, unknown left out
    assert bodies(sim, TASKS) == [{"action": "retrieve_batch", "ids": [b, "missing", a]}]
    assert client.get_tasks([]) == []
    assert len(bodies(sim, TASKS)) == 1  # each id read once; nothing to read, nothing sent


def test_timeout_keeps_task_id_and_poll_task_resumes(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    with fast_client(sim, max_wait=0.2) as client:
        with pytest.raises(TaskTimeoutError) as info:
            client.generate("a slow painting")
        error = info.value
        assert error.task_id in sim.tasks
        assert error.task_id in str(error) and "poll_task" in str(error)
        assert error.waited >= 0.2
        sim.complete_task(error.task_id)
        result = client.poll_task(error.task_id)
    assert result.status == "succeeded" and result.task_id == error.task_id
    assert len(sim.requests_to(IMAGES)) == 1


def test_poll_task_max_wait_override(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    with fast_client(sim, max_wait=30) as client:
        task_id = client.generate("x", wait=False).task_id or ""
        with pytest.raises(TaskTimeoutError) as info:
            client.poll_task(task_id, max_wait=0.1)
    assert info.value.task_id == task_id


def test_task_failed_error_carries_ids(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(code="content_blocked", message="The prompt was blocked.")
    with pytest.raises(TaskFailedError) as info:
        client.generate("something forbidden")
    error = info.value
    (task_id,) = sim.tasks
    assert error.task_id == task_id
    assert error.code == "content_blocked" and error.message == "The prompt was blocked."
    assert error.trace_id == sim.tasks[task_id]["trace_id"]
    for part in ("content_blocked", "The prompt was blocked.", task_id, str(error.trace_id)):
        assert part in str(error)
    assert client.generate("something fine").status == "succeeded"


def test_sync_mode_failed_task_keeps_task_id(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(code="content_blocked")
    with fast_client(sim, mode="sync") as client, pytest.raises(NanoBananaError) as info:
        client.generate("something forbidden")
    (task_id,) = sim.tasks
    assert info.value.task_id == task_id
    assert task_id in str(info.value)
    assert len(sim.requests_to(IMAGES)) == 1


# -- async twins ----------------------------------------------------------------------------------
async def test_async_twins(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.1
    generated = await client.agenerate("a cat", aspect_ratio="16:9")
    assert generated.status == "succeeded"
    assert bodies(sim, IMAGES)[0] == {
        "action": "generate",
        "prompt": "a cat",
        "aspect_ratio": "16:9",
        "async": True,
    }
    edited = await client.aedit("make it blue", generated.urls)
    assert edited.status == "succeeded"
    assert png_size(fetch(edited.urls[0])) == (1344, 768)

    submitted = await client.asubmit(ImageRequest(action="generate", prompt="x"), wait=False)
    assert submitted.status == "pending" and submitted.task_id
    record = await client.aget_task(submitted.task_id)
    assert record.id == submitted.task_id
    records = await client.aget_tasks([submitted.task_id, generated.task_id or ""])
    assert [r.id for r in records] == [submitted.task_id, generated.task_id]
    resumed = await client.apoll_task(submitted.task_id)
    assert resumed.status == "succeeded"
    sim.fail_next_tasks()
    with pytest.raises(TaskFailedError):
        await client.agenerate("fails")


async def test_async_timeout_then_resume(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    async with fast_client(sim, max_wait=0.15) as client:
        with pytest.raises(TaskTimeoutError) as info:
            await client.agenerate("slow")
        task_id = str(info.value.task_id)
        sim.complete_task(task_id)
        result = await client.apoll_task(task_id)
    assert result.status == "succeeded"


async def test_async_wait_keeps_the_event_loop_running(sim: FakeNanoBananaServer) -> None:
    """While ``agenerate`` waits between polls, other coroutines keep running.

    A ticker coroutine notes when it runs. The client waits 0.4 s between polls; a wait that
    blocked the loop (``time.sleep``, or blocking HTTP on the loop) would leave a gap of at least
    0.4 s between two ticks, while a free loop ticks every few milliseconds.
    """
    sim.task_duration = 0.9
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def generate() -> ImageResult:
        try:
            return await client.agenerate("cat")
        finally:
            done.set()

    async with fast_client(sim, poll_interval=0.4, max_poll_interval=0.4) as client:
        result, _ = await asyncio.gather(generate(), ticker())
    assert result.status == "succeeded"
    assert len(sim.requests_to(TASKS)) >= 3  # it did wait (at least twice) between polls
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 20
    assert max(gaps) < 0.3, f"the event loop was blocked for {max(gaps):.3f} s"


# -- base URL, environment, token ---------------------------------------------------------------
@pytest.fixture
def prefixed_sim() -> Iterator[FakeNanoBananaServer]:
    with FakeNanoBananaServer(token="prefixed-token", path_prefix="/v1") as server:
        yield server


@pytest.mark.parametrize("suffix", ["/v1", "/v1/"])
def test_base_url_with_path_prefix(prefixed_sim: FakeNanoBananaServer, suffix: str) -> None:
    with NanoBananaClient(
        "prefixed-token", base_url=prefixed_sim.base_url + suffix, poll_interval=0.02
    ) as client:
        assert client.base_url == prefixed_sim.base_url + "/v1"
        result = client.generate("a mirror")
        assert client.get_tasks([result.task_id or ""])[0].status == "succeeded"
    assert result.status == "succeeded"
    paths = [r.path for r in prefixed_sim.requests]
    assert paths[0] == "/v1/nano-banana/images"
    assert set(paths[1:]) == {"/v1/nano-banana/tasks"}


def test_base_url_trailing_slash(sim: FakeNanoBananaServer) -> None:
    with fast_client(sim, base_url=sim.base_url + "/") as client:
        assert client.base_url == sim.base_url
        assert client.generate("x").status == "succeeded"
    assert {r.path for r in sim.requests} == {IMAGES, TASKS}


def test_environment_variables(sim: FakeNanoBananaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", sim.token or "")
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", sim.base_url)
    with NanoBananaClient(poll_interval=0.02) as client:
        assert client.base_url == sim.base_url
        assert client.generate("from the environment").status == "succeeded"
    assert sim.requests[0].headers["authorization"] == f"Bearer {sim.token}"


def test_explicit_arguments_beat_environment(
    sim: FakeNanoBananaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "wrong-env-token")
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", "https://api.acedata.cloud")
    with NanoBananaClient(sim.token, base_url=sim.base_url, poll_interval=0.02) as client:
        assert client.generate("explicit").status == "succeeded"


def test_default_base_url() -> None:
    client = NanoBananaClient("t")
    assert client.base_url == "https://api.acedata.cloud"
    client.close()


def test_missing_token_fails_before_any_request(
    sim: FakeNanoBananaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "")
    with NanoBananaClient(base_url=sim.base_url) as client:
        for call in (
            lambda: client.generate("cat"),
            lambda: client.get_task("some-task"),
            lambda: client.get_tasks(["a", "b"]),
        ):
            with pytest.raises(AuthenticationError) as info:
                call()
            assert "ACEDATACLOUD_API_TOKEN" in str(info.value)
            assert info.value.code == "no_token" and info.value.status_code == 401
    assert sim.requests == []


async def test_missing_token_async(sim: FakeNanoBananaServer) -> None:
    async with NanoBananaClient(base_url=sim.base_url) as client:
        with pytest.raises(AuthenticationError, match="ACEDATACLOUD_API_TOKEN"):
            await client.agenerate("cat")
    assert sim.requests == []


def test_wrong_token(sim: FakeNanoBananaServer) -> None:
    wrong = "wrong-token-5d1e"
    with NanoBananaClient(wrong, base_url=sim.base_url) as client:
        for call in (lambda: client.generate("cat"), lambda: client.get_task("x")):
            with pytest.raises(AuthenticationError) as info:
                call()
            error = info.value
            assert error.status_code == 401 and error.code == "invalid_token"
            assert error.trace_id and error.trace_id in str(error)
            assert "invalid_token" in str(error)
            assert wrong not in str(error) and wrong not in repr(error)
        assert wrong not in repr(client)
    assert sim.tasks == {}  # nothing ran, nothing billed
    assert len(sim.requests_to(IMAGES)) == 1  # a 401 is not retried


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.acedata.cloud",
        "http://api.xhuoapi.ai/v1",
        "http://10.0.0.8:8080",
        "http://192.168.1.1",
        "http://localhost.example.com",
        "ftp://api.acedata.cloud",
        "api.acedata.cloud",
        "https://",
        "https://api.acedata.cloud/v1?x=1",
    ],
)
def test_refused_base_urls(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        NanoBananaClient("secret-token-value", base_url=base_url)
    assert "secret-token-value" not in str(info.value)
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", base_url)
    with pytest.raises(ValueError, match="base_url"):
        NanoBananaClient("t")


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.acedata.cloud",
        "https://api.xhuoapi.ai/v1",
        "http://localhost:8765",
        "http://127.0.0.1:8765/v1",
        "http://127.5.6.7",
        "http://[::1]:8765",
    ],
)
def test_accepted_base_urls(base_url: str) -> None:
    client = NanoBananaClient("t", base_url=base_url)
    assert client.base_url == base_url
    client.close()


@pytest.mark.parametrize(
    "option",
    ["timeout", "sync_timeout", "backoff_factor", "poll_interval", "max_poll_interval", "max_wait"],
)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, True, "5"])
def test_bad_numbers_refused_naming_the_field(option: str, bad: object) -> None:
    options: dict[str, Any] = {option: bad}
    with pytest.raises(ValueError, match=option) as info:
        NanoBananaClient("secret-token-value", **options)
    assert repr(bad) in str(info.value) and "secret-token-value" not in str(info.value)


@pytest.mark.parametrize("option", ["max_retries", "pool_maxsize"])
@pytest.mark.parametrize("bad", [-1, 1.5, False, math.nan])
def test_bad_counts_refused_naming_the_field(option: str, bad: object) -> None:
    options: dict[str, Any] = {option: bad}
    with pytest.raises(ValueError, match=option):
        NanoBananaClient("t", **options)


def test_bad_max_wait_of_one_wait_refused(client: NanoBananaClient) -> None:
    for bad in (math.nan, -1.0, True):
        with pytest.raises(ValueError, match="max_wait"):
            client.poll_task("some-task", max_wait=bad)


def test_authorization_sent_to_api_but_not_to_image_hosts(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    result = client.generate("a cat", count=2)
    paths = result.download(tmp_path, client=client)
    paths += client.download(result, tmp_path / "again")
    assert [png_size(p.read_bytes()) for p in paths] == [(1024, 1024)] * 4
    api = [r for r in sim.requests if r.path.startswith("/nano-banana/")]
    files = [r for r in sim.requests if r.path.startswith("/files/")]
    assert len(files) == 4 and all(r.method == "GET" for r in files)
    assert all(r.headers["authorization"] == f"Bearer {sim.token}" for r in api)
    assert all(r.headers.get("content-type") == "application/json" for r in api)
    assert all(r.headers.get("accept") == "application/json" for r in api)
    assert not any("authorization" in r.headers for r in files)
    token = sim.token or "?"
    assert not any(token in str(r.headers) for r in files)
    assert "authorization" not in {k.lower() for k in client.session.headers}


def test_downloads_go_through_the_clients_session(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    """``result.download(dir, client=c)`` and ``c.download(result, dir)`` use ``c``'s session:
    its hooks see the file GETs and its pooled keep-alive connection is reused (no new
    connection); only a download without a client opens its own, token-less one.
    """
    session = requests.Session()
    seen: list[tuple[str, set[str]]] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        seen.append((str(request.url), {k.lower() for k in request.headers}))

    session.hooks["response"].append(hook)
    with fast_client(sim, session=session) as client:
        result = client.generate("a cat", count=2)
        files = [url for url, _ in seen if "/files/" in url]
        assert files == []
        before = sim.connections_accepted
        first = result.download(tmp_path / "a", client=client)
        second = client.download(result, tmp_path / "b", prefix="cover")
        assert sim.connections_accepted == before  # the client's pooled connection, reused
        assert [p.name for p in second] == ["cover-1.png", "cover-2.png"]
        downloads = [(url, headers) for url, headers in seen if "/files/" in url]
        assert [url for url, _ in downloads] == result.urls * 2
        assert not any("authorization" in headers for _, headers in downloads)
        assert len(first) == 2
        seen.clear()
        result.download(tmp_path / "c")  # no client: a short-lived token-less one
        assert seen == []  # not this session
        assert sim.connections_accepted > before
    file_gets = [r for r in sim.requests if r.path.startswith("/files/")]
    assert len(file_gets) == 6 and not any("authorization" in r.headers for r in file_gets)
    session.close()


# -- iter_outcomes, close, shared rounds ------------------------------------------------------
def test_iter_outcomes_yields_in_finishing_order(sim: FakeNanoBananaServer) -> None:
    durations = {"slow": 0.9, "fast": 0.1, "middle": 0.5}
    with fast_client(sim) as client:
        ids: dict[str, str] = {}
        for name, duration in durations.items():
            sim.task_duration = duration
            ids[name] = client.generate(name, wait=False).task_id or ""
        sim.task_duration = 0.3
        sim.fail_next_tasks(code="content_blocked")
        ids["failing"] = client.generate("failing", wait=False).task_id or ""
        names = {task_id: name for name, task_id in ids.items()}
        start = time.monotonic()
        order: list[tuple[str, float]] = []
        outcomes: dict[str, Any] = {}
        for task_id, outcome in client.iter_outcomes(list(ids.values())):
            order.append((names[task_id], time.monotonic() - start))
            outcomes[names[task_id]] = outcome
    assert [name for name, _ in order] == ["fast", "failing", "middle", "slow"]
    # Each yielded soon after it finished (polls every 20-100 ms), not at the end.
    for name, at in order:
        limit = {"fast": 0.1, "failing": 0.3, "middle": 0.5, "slow": 0.9}[name] + 0.6
        assert at < limit, (name, at)
    assert isinstance(outcomes["failing"], TaskFailedError)  # yielded in place, not raised
    assert outcomes["failing"].task_id == ids["failing"]
    for name in ("fast", "middle", "slow"):
        assert isinstance(outcomes[name], ImageResult) and outcomes[name].status == "succeeded"
        assert outcomes[name].task_id == ids[name]
    assert len(sim.requests_to(IMAGES)) == 4


async def test_aiter_outcomes_yields_in_finishing_order(sim: FakeNanoBananaServer) -> None:
    async with fast_client(sim) as client:
        ids = []
        for duration in (0.6, 0.1, 0.35):
            sim.task_duration = duration
            ids.append((await client.agenerate("x", wait=False)).task_id or "")
        seen = [task_id async for task_id, _ in client.aiter_outcomes(ids)]
    assert seen == [ids[1], ids[2], ids[0]]


def test_close_ends_a_waiting_poll_task_promptly(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    client = fast_client(sim, max_wait=30)
    task_id = client.generate("never finishes here", wait=False).task_id or ""
    caught: list[BaseException] = []
    ended = threading.Event()

    def wait() -> None:
        try:
            client.poll_task(task_id)
        except BaseException as exc:  # handed to the test thread
            caught.append(exc)
        finally:
            ended.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert eventually(lambda: len(sim.requests_to(TASKS)) >= 1)  # it is polling
    closed_at = time.monotonic()
    client.close()
    assert ended.wait(5)
    waited = time.monotonic() - closed_at
    waiter.join(1)
    assert waited < 0.5, f"the waiter ended {waited:.2f} s after close()"
    (error,) = caught
    assert isinstance(error, NanoBananaError) and not isinstance(error, TaskTimeoutError)
    assert task_id in str(error) and task_id in error.task_ids
    assert "closed" in str(error)
    assert len(sim.requests_to(IMAGES)) == 1  # never resubmitted
    reads = len(sim.requests_to(TASKS))
    time.sleep(0.3)
    assert len(sim.requests_to(TASKS)) == reads  # the poller stopped
    with pytest.raises(NanoBananaError, match="closed"):
        client.poll_task(task_id)


async def test_close_ends_an_async_waiter_promptly(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    client = fast_client(sim, max_wait=30)
    task_id = (await client.agenerate("x", wait=False)).task_id or ""
    waiting = asyncio.ensure_future(client.apoll_task(task_id))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    closed_at = time.monotonic()
    await asyncio.to_thread(client.close)  # from another thread, as a shutdown hook would
    with pytest.raises(NanoBananaError) as info:
        await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - closed_at < 0.5
    assert task_id in str(info.value) and task_id in info.value.task_ids


def _single_waiter_reads(duration: float, poll_interval: float, waiters: int) -> int:
    """Task reads one waiter alone would cause, times the requests one shared round needs for
    ``waiters`` tasks (50 ids per ``retrieve_batch``)."""
    rounds = math.ceil(duration / poll_interval) + 3
    return rounds * math.ceil(waiters / 50)


def _assert_shared_reads(sim: FakeNanoBananaServer, task_ids: set[str], budget: int) -> None:
    reads = bodies(sim, TASKS)
    assert len(reads) <= 2 * budget, f"{len(reads)} task reads, budget {budget}"
    read_ids = {i for r in reads for i in (r.get("ids") or [r.get("id")])}
    assert task_ids <= read_ids
    assert all(len(r.get("ids") or [1]) <= 50 for r in reads)


def test_64_threads_share_poll_rounds(sim: FakeNanoBananaServer) -> None:
    """64 threads waiting on one client cost about one ``retrieve_batch`` round per interval,
    not 64 reads per interval."""
    sim.task_duration = 1.0
    interval = 0.1
    barrier = threading.Barrier(64)

    def work(n: int) -> ImageResult:
        barrier.wait()
        return client.generate(f"thread {n}")

    with (
        fast_client(sim, poll_interval=interval, max_poll_interval=interval) as client,
        ThreadPoolExecutor(64) as pool,
    ):
        results = list(pool.map(work, range(64)))
    assert all(r.status == "succeeded" for r in results)
    assert len({r.task_id for r in results}) == 64 == len(sim.requests_to(IMAGES))
    budget = _single_waiter_reads(1.0, interval, 64)
    _assert_shared_reads(sim, {r.task_id or "" for r in results}, budget)
    assert len(sim.requests_to(TASKS)) < 64  # fewer reads than waiters, let alone 64 x rounds


async def test_16_async_tasks_share_poll_rounds(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 1.0
    interval = 0.1
    async with fast_client(sim, poll_interval=interval, max_poll_interval=interval) as client:
        results = await asyncio.gather(*(client.agenerate(f"task {n}") for n in range(16)))
    assert all(r.status == "succeeded" for r in results)
    assert len({r.task_id for r in results}) == 16 == len(sim.requests_to(IMAGES))
    budget = _single_waiter_reads(1.0, interval, 16)
    _assert_shared_reads(sim, {r.task_id or "" for r in results}, budget)


# -- edit inputs ----------------------------------------------------------------------------------
def test_edit_with_path_and_bytes(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    first = make_png(300, 200, b"first")
    second = make_png(120, 80, b"second")
    path = tmp_path / "photo.png"
    path.write_bytes(first)
    result = client.edit("make them friends", [path, second, sim.image_url(64, 64)])
    assert result.status == "succeeded"
    (body,) = bodies(sim, IMAGES)
    urls = body["image_urls"]
    assert urls[0] == "data:image/png;base64," + base64.b64encode(first).decode()
    assert urls[1] == "data:image/png;base64," + base64.b64encode(second).decode()
    assert urls[2].startswith(sim.base_url + "/files/")
    assert png_size(fetch(result.urls[0])) == (300, 200)  # the first image decides

    sim.clear_requests()
    swapped = client.edit("the other way", [second, str(path)])
    assert png_size(fetch(swapped.urls[0])) == (120, 80)
    single = client.edit("one image", path)
    assert bodies(sim, IMAGES)[-1]["image_urls"] == [urls[0]]
    assert single.status == "succeeded"


def test_edit_local_paths_restricted_to_allowed_dir(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    inside = tmp_path / "allowed"
    inside.mkdir()
    (inside / "ok.png").write_bytes(make_png(10, 10))
    (tmp_path / "secret.png").write_bytes(make_png(10, 10))
    assert client.edit("x", inside / "ok.png", allowed_image_dir=inside).status == "succeeded"
    with pytest.raises(NanoBananaError, match="inside"):
        client.edit("x", inside / ".." / "secret.png", allowed_image_dir=inside)
    assert len(sim.requests_to(IMAGES)) == 1


# -- lifecycle, sharing ---------------------------------------------------------------------------
def _open_pools(session: requests.Session) -> int:
    adapters: list[Any] = list(session.adapters.values())
    return sum(len(adapter.poolmanager.pools) for adapter in adapters)


def test_context_manager_closes_its_session(sim: FakeNanoBananaServer) -> None:
    with fast_client(sim) as client:
        client.generate("x")
        assert _open_pools(client.session) >= 1
    assert _open_pools(client.session) == 0


def test_close_leaves_a_callers_session_open(sim: FakeNanoBananaServer) -> None:
    session = requests.Session()
    with fast_client(sim, session=session) as client:
        assert client.session is session
        client.generate("x")
    assert _open_pools(session) >= 1
    session.close()


def test_repr_never_shows_the_token(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    assert (sim.token or "?") not in repr(client) and "token=set" in repr(client)
    assert "token=missing" in repr(NanoBananaClient(base_url=sim.base_url))
    client.close()


def test_one_client_shared_by_8_threads(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.05
    barrier = threading.Barrier(8)

    def work(n: int) -> list[ImageResult]:
        barrier.wait()
        return [client.generate(f"thread {n} image {k}") for k in range(3)]

    with fast_client(sim) as client, ThreadPoolExecutor(8) as pool:
        results = [r for batch in pool.map(work, range(8)) for r in batch]
    assert len(results) == 24 and all(r.status == "succeeded" for r in results)
    assert len({r.task_id for r in results}) == 24
    assert sorted(r.images[0].prompt or "" for r in results) == sorted(
        f"thread {n} image {k}" for n in range(8) for k in range(3)
    )
    assert len(sim.requests_to(IMAGES)) == 24
    # Pooled: one connection per thread and adapter at most (submissions, task reads).
    assert sim.connections_accepted <= 16
