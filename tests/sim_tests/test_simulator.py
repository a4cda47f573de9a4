"""Tests of the simulator itself, over real loopback HTTP with ``requests`` (no mocks)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from langchain_nanobanana.testing import (
    FakeNanoBananaServer,
    RecordedRequest,
    make_png,
    padded_png,
    png_size,
)
from tests.helpers import SIZES_1K

TOKEN = "sim-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def sim() -> Iterator[FakeNanoBananaServer]:
    with FakeNanoBananaServer() as server:
        yield server


def submit(sim: FakeNanoBananaServer, body: dict[str, Any], **kw: Any) -> requests.Response:
    return requests.post(f"{sim.base_url}/nano-banana/images", json=body, headers=AUTH, **kw)


def tasks(sim: FakeNanoBananaServer, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{sim.base_url}/nano-banana/tasks", json=body, headers=AUTH, timeout=5)


def assert_error(resp: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert len(body["trace_id"]) == 36
    return body  # type: ignore[no-any-return]


# -- PNG -----------------------------------------------------------------------------------------
def test_png_helpers() -> None:
    data = make_png(37, 5, b"seed")
    assert png_size(data) == (37, 5)
    assert make_png(37, 5, b"seed") == data
    with pytest.raises(ValueError):
        png_size(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError):
        make_png(0, 5)
    assert len(padded_png(100_000)) == 100_000
    assert png_size(padded_png(100_000)) == (16, 16)
    start = time.perf_counter()
    big = make_png(4096, 4096, b"a-new-seed-for-timing")
    assert time.perf_counter() - start < 1.5
    assert png_size(big) == (4096, 4096)


# -- sync generation and sizes -------------------------------------------------------------------
@pytest.mark.parametrize(("ratio", "size"), SIZES_1K.items())
def test_sync_generate_sizes(sim: FakeNanoBananaServer, ratio: str, size: tuple[int, int]) -> None:
    resp = submit(sim, {"action": "generate", "prompt": "a cat", "aspect_ratio": ratio})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["success"] is True
    assert set(body) == {"success", "task_id", "trace_id", "data"}
    assert body["data"][0]["prompt"] == "a cat"
    img = requests.get(body["data"][0]["image_url"], timeout=5)
    assert img.status_code == 200
    assert img.headers["content-type"] == "image/png"
    assert int(img.headers["content-length"]) == len(img.content)
    assert png_size(img.content) == size


@pytest.mark.parametrize(
    ("model", "resolution", "scale"),
    [("nano-banana-pro", "2K", 2), ("nano-banana-pro", "4K", 4), ("nano-banana-2", "2K", 2)],
)
def test_high_resolution(
    sim: FakeNanoBananaServer, model: str, resolution: str, scale: int
) -> None:
    body = {"action": "generate", "prompt": "x", "model": model, "resolution": resolution}
    body["aspect_ratio"] = "3:4"
    url = submit(sim, body).json()["data"][0]["image_url"]
    assert png_size(requests.get(url, timeout=5).content) == (864 * scale, 1184 * scale)


def test_count_three_distinct_images(sim: FakeNanoBananaServer) -> None:
    body = submit(sim, {"action": "generate", "prompt": "dogs", "count": 3}).json()
    urls = [d["image_url"] for d in body["data"]]
    assert len(set(urls)) == 3
    assert all(d["prompt"] == "dogs" for d in body["data"])
    assert all(png_size(requests.get(u, timeout=5).content) == (1024, 1024) for u in urls)


# -- async, tasks, durations ---------------------------------------------------------------------
def test_async_retrieve_and_batch(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.3
    start = time.monotonic()
    first = submit(sim, {"action": "generate", "prompt": "p1", "async": True}).json()
    assert time.monotonic() - start < 0.25
    assert set(first) == {"success", "task_id", "trace_id"}
    second = submit(sim, {"action": "generate", "prompt": "p2", "async": True}).json()

    running = tasks(sim, {"action": "retrieve", "id": first["task_id"]}).json()
    assert "response" not in running and "finished_at" not in running
    assert running["id"] == first["task_id"]
    assert running["trace_id"] == first["trace_id"]
    assert running["type"] == "images"
    assert running["request"] == {"action": "generate", "prompt": "p1", "async": True}
    for key in ("user_id", "credential_id", "application_id", "api_id"):
        assert running[key]
    assert isinstance(running["created_at"], float)

    time.sleep(0.35)
    done = tasks(sim, {"action": "retrieve", "id": first["task_id"]}).json()
    assert done["response"]["success"] is True
    assert done["response"]["task_id"] == first["task_id"]
    assert done["response"]["data"][0]["prompt"] == "p1"
    assert done["finished_at"] >= done["created_at"]
    assert done["duration"] == pytest.approx(0.3, abs=0.01)

    ids = [first["task_id"], "no-such-task", second["task_id"]]
    batch = tasks(sim, {"action": "retrieve_batch", "ids": ids}).json()
    assert batch["count"] == 2
    assert [item["id"] for item in batch["items"]] == [first["task_id"], second["task_id"]]
    assert set(sim.tasks) == {first["task_id"], second["task_id"]}


def test_complete_task_and_not_found(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 60
    task_id = submit(sim, {"action": "generate", "prompt": "p", "async": True}).json()["task_id"]
    assert "response" not in sim.tasks[task_id]
    sim.complete_task(task_id)
    assert sim.tasks[task_id]["response"]["success"] is True
    assert_error(tasks(sim, {"action": "retrieve", "id": "nope"}), 404, "not_found")
    assert_error(tasks(sim, {"action": "cancel", "id": task_id}), 400, "api_not_implemented")
    assert_error(tasks(sim, {"action": "retrieve"}), 400, "token_mismatched")


def test_sync_waits_for_task_duration_and_latency(sim: FakeNanoBananaServer) -> None:
    sim.task_duration = 0.3
    start = time.monotonic()
    assert submit(sim, {"action": "generate", "prompt": "p"}).json()["success"] is True
    assert time.monotonic() - start >= 0.29
    sim.task_duration = 0.0
    sim.submit_latency = 0.2
    start = time.monotonic()
    submit(sim, {"action": "generate", "prompt": "p", "async": True})
    assert time.monotonic() - start >= 0.19


def test_fail_next_tasks(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(2, code="content_blocked", message="Blocked.")
    resp = submit(sim, {"action": "generate", "prompt": "p"})
    assert resp.status_code == 500
    failed = resp.json()
    assert failed["success"] is False and failed["task_id"]
    assert failed["error"] == {"code": "content_blocked", "message": "Blocked."}
    task_id = submit(sim, {"action": "generate", "prompt": "p", "async": True}).json()["task_id"]
    record = tasks(sim, {"action": "retrieve", "id": task_id}).json()
    assert record["response"]["success"] is False
    assert record["response"]["error"]["code"] == "content_blocked"
    assert submit(sim, {"action": "generate", "prompt": "p"}).json()["success"] is True


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_callback_delivery(sim: FakeNanoBananaServer) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True).start()
    try:
        sim.task_duration = 0.2
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        answer = submit(sim, {"action": "generate", "prompt": "cb", "callback_url": hook}).json()
        assert set(answer) == {"success", "task_id", "trace_id"}
        assert sim.callbacks_sent == []
        deadline = time.monotonic() + 3
        while not sim.callbacks_sent and time.monotonic() < deadline:
            time.sleep(0.02)
        (sent,) = sim.callbacks_sent
        assert sent["url"] == hook and sent["status"] == 204
        (payload,) = _Receiver.received
        assert payload == sent["payload"]
        assert payload["success"] is True and payload["task_id"] == answer["task_id"]
        assert payload["data"][0]["prompt"] == "cb"
    finally:
        receiver.shutdown()
        receiver.server_close()


# -- errors --------------------------------------------------------------------------------------
def test_auth(sim: FakeNanoBananaServer) -> None:
    url = f"{sim.base_url}/nano-banana/images"
    body = {"action": "generate", "prompt": "p"}
    assert_error(requests.post(url, json=body, timeout=5), 401, "invalid_token")
    bad = {"authorization": "Bearer wrong"}
    assert_error(requests.post(url, json=body, headers=bad, timeout=5), 401, "invalid_token")
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(url, json=body, headers=ok, timeout=5).status_code == 200
    assert sim.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    sim.token = None
    assert requests.post(url, json=body, timeout=5).status_code == 200


DATA_PNG = "data:image/png;base64," + base64.b64encode(make_png(40, 30, b"d")).decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "p"}, "action"),
        ({"action": "draw", "prompt": "p"}, "action"),
        ({"action": "generate"}, "prompt"),
        ({"action": "generate", "prompt": "   "}, "prompt"),
        ({"action": "generate", "prompt": "p", "model": "dall-e"}, "model"),
        ({"action": "edit", "prompt": "p"}, "image_urls"),
        ({"action": "edit", "prompt": "p", "image_urls": []}, "image_urls"),
        ({"action": "edit", "prompt": "p", "image_urls": ["ftp://x/a.png"]}, "image_urls[0]"),
        (
            {"action": "edit", "prompt": "p", "image_urls": ["data:image/png;base64,@@"]},
            "image_urls",
        ),
        ({"action": "generate", "prompt": "p", "aspect_ratio": "5:4"}, "aspect_ratio"),
        ({"action": "generate", "prompt": "p", "resolution": "8K"}, "resolution"),
        ({"action": "generate", "prompt": "p", "resolution": "2K"}, "resolution"),
        ({"action": "generate", "prompt": "p", "count": 5}, "count"),
        ({"action": "generate", "prompt": "p", "count": True}, "count"),
        ({"action": "generate", "prompt": "p", "callback_url": "/hook"}, "callback_url"),
        ({"action": "generate", "prompt": "p", "async": "yes"}, "async"),
        ({"action": "generate", "prompt": "p", "size": "big"}, "size"),
    ],
)
def test_bad_parameters(sim: FakeNanoBananaServer, body: dict[str, Any], field: str) -> None:
    err = assert_error(submit(sim, body), 400, "token_mismatched")
    assert field in err["error"]["message"]
    assert sim.tasks == {}


def test_oversized_data_uri_and_bad_json(sim: FakeNanoBananaServer) -> None:
    huge = "data:image/png;base64," + base64.b64encode(bytes(10 * 2**20 + 1)).decode()
    err = assert_error(
        submit(sim, {"action": "edit", "prompt": "p", "image_urls": [huge]}),
        400,
        "token_mismatched",
    )
    assert "image_urls[0]" in err["error"]["message"]
    raw = requests.post(f"{sim.base_url}/nano-banana/images", data=b"{", headers=AUTH, timeout=5)
    assert_error(raw, 400, "token_mismatched")
    # Seeds 000/002/003: an endpoint that does not exist is 400 api_not_implemented.
    assert_error(requests.get(f"{sim.base_url}/nope", timeout=5), 400, "api_not_implemented")
    assert_error(
        requests.get(f"{sim.base_url}/nano-banana/images", timeout=5), 400, "api_not_implemented"
    )


def test_rate_limit(sim: FakeNanoBananaServer) -> None:
    sim.rate_limit = 2
    body = {"action": "generate", "prompt": "p", "async": True}
    statuses = [submit(sim, body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    resp = submit(sim, body)
    assert_error(resp, 429, "too_many_requests")
    assert resp.headers["retry-after"] == "1"
    assert len(sim.tasks) == 2
    sim.rate_limit = None
    assert submit(sim, body).status_code == 200


@pytest.mark.parametrize(
    ("kind", "status", "ctype"),
    [
        ("429", 429, "application/json"),
        ("500", 500, "application/json"),
        ("502", 502, "text/html"),
        ("503", 503, "application/json"),
        ("html", 500, "text/html; charset=utf-8"),
    ],
)
def test_status_faults(sim: FakeNanoBananaServer, kind: str, status: int, ctype: str) -> None:
    sim.inject_fault(kind, count=2, path="/nano-banana/images", retry_after="2")
    tasks(sim, {"action": "retrieve_batch", "ids": []})  # other path: unaffected
    for _ in range(2):
        resp = submit(sim, {"action": "generate", "prompt": "p"}, timeout=5)
        assert resp.status_code == status
        assert resp.headers["content-type"] == ctype
        assert resp.headers["retry-after"] == "2"
        if ctype == "application/json":
            code = "too_many_requests" if kind == "429" else "api_error"
            assert_error(resp, status, code)
        else:
            assert "<html" in resp.text.lower()
    assert sim.tasks == {}
    assert submit(sim, {"action": "generate", "prompt": "p"}).status_code == 200
    assert [r.fault for r in sim.requests_to("/nano-banana/images")] == [kind, kind, None]


def test_malformed_and_truncated(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("malformed")
    resp = submit(sim, {"action": "generate", "prompt": "p"}, timeout=5)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        resp.json()
    sim.inject_fault("truncated", path="/nano-banana/tasks")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        tasks(sim, {"action": "retrieve_batch", "ids": list(sim.tasks)})
    assert len(sim.tasks) == 1  # the malformed answer hid a real, billed task


def test_drop_creates_task(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("drop", path="/nano-banana/images")
    with pytest.raises(requests.exceptions.ConnectionError):
        submit(sim, {"action": "generate", "prompt": "dropped", "async": True}, timeout=5)
    (record,) = sim.tasks.values()
    assert record["request"]["prompt"] == "dropped"
    sim.inject_fault("drop", create_task=False)
    with pytest.raises(requests.exceptions.ConnectionError):
        submit(sim, {"action": "generate", "prompt": "p"}, timeout=5)
    assert len(sim.tasks) == 1
    assert [r.fault for r in sim.requests] == ["drop", "drop"]


def test_timeout_fault(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("timeout", retry_after="0.5")
    with pytest.raises(requests.exceptions.ReadTimeout):
        submit(sim, {"action": "generate", "prompt": "slow"}, timeout=0.2)
    sim.inject_fault("timeout", retry_after="0.2")
    assert submit(sim, {"action": "generate", "prompt": "slow"}, timeout=5).status_code == 200
    with pytest.raises(ValueError):
        sim.inject_fault("teapot")


# -- log, keep-alive, edit sizes, files ----------------------------------------------------------
def test_request_log_and_keep_alive(sim: FakeNanoBananaServer) -> None:
    with requests.Session() as session:
        session.headers.update(AUTH)
        for i in range(4):
            body = {"action": "generate", "prompt": f"p{i}", "async": True}
            r = session.post(f"{sim.base_url}/nano-banana/images", json=body, timeout=5)
            assert r.status_code == 200
        session.post(
            f"{sim.base_url}/nano-banana/tasks", json={"action": "retrieve_batch", "ids": []}
        )
    assert sim.connections_accepted == 1
    log = sim.requests
    assert len(log) == 5 and all(isinstance(r, RecordedRequest) for r in log)
    assert [r.time for r in log] == sorted(r.time for r in log)
    first = sim.requests_to("/nano-banana/images")[0]
    assert first.method == "POST" and first.json == {
        "action": "generate",
        "prompt": "p0",
        "async": True,
    }
    assert json.loads(first.body) == first.json
    assert first.headers["Authorization"] == f"Bearer {TOKEN}" and first.fault is None
    assert len(sim.requests_to("/nano-banana/tasks")) == 1
    sim.clear_requests()
    assert sim.requests == []


def test_edit_uses_first_image_size(sim: FakeNanoBananaServer) -> None:
    cases = [
        ([sim.image_url(300, 200), sim.image_url(64, 64)], (300, 200)),
        ([DATA_PNG], (40, 30)),
        (["https://example.com/photo.jpg"], (1024, 1024)),
        ([f"{sim.base_url}/files/padded/5000.png"], (16, 16)),
    ]
    for urls, size in cases:
        body = {"action": "edit", "prompt": "edit", "image_urls": urls, "aspect_ratio": "16:9"}
        out = submit(sim, body).json()["data"][0]["image_url"]
        assert png_size(requests.get(out, timeout=5).content) == size


def test_served_files(sim: FakeNanoBananaServer) -> None:
    resp = requests.get(f"{sim.base_url}/files/padded/250000.png", timeout=5)
    assert resp.status_code == 200 and len(resp.content) == 250_000
    assert png_size(resp.content) == (16, 16)
    assert png_size(requests.get(sim.image_url(8, 9), timeout=5).content) == (8, 9)
    missing = f"{sim.base_url}/files/00000000-0000-0000-0000-000000000000.png"
    assert requests.get(missing, timeout=5).status_code == 404


def test_concurrent_submissions(sim: FakeNanoBananaServer) -> None:
    sim.submit_latency = 0.1
    body = {"action": "generate", "prompt": "many", "async": True}
    start = time.monotonic()
    with ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(lambda _: submit(sim, body, timeout=10).status_code, range(100)))
    assert codes == [200] * 100
    assert len(sim.tasks) == 100
    assert time.monotonic() - start < 3


def test_stop_is_prompt_and_leaks_no_threads() -> None:
    before = threading.active_count()
    for _ in range(20):
        # The session leaves an idle keep-alive connection open on the server.
        with FakeNanoBananaServer() as server, requests.Session() as session:
            session.get(f"{server.base_url}/files/padded/10.png", timeout=5)
            start = time.monotonic()
            server.stop()
            assert time.monotonic() - start < 1
    slow = FakeNanoBananaServer(task_duration=30).start()
    outcome: list[BaseException] = []

    def blocked_call() -> None:
        try:
            submit(slow, {"action": "generate", "prompt": "p"}, timeout=10)
        except requests.RequestException as exc:
            outcome.append(exc)

    pending = threading.Thread(target=blocked_call, daemon=True)
    pending.start()
    time.sleep(0.1)
    start = time.monotonic()
    slow.stop()
    pending.join(2)
    assert time.monotonic() - start < 1 and len(outcome) == 1
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before
    with pytest.raises(RuntimeError):
        _ = FakeNanoBananaServer().base_url


def test_standalone_main() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_nanobanana.testing", "--port", "0", "--token", "t0k"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        base_url = first.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")
        assert "t0k" in proc.stdout.readline()
        body = {"action": "generate", "prompt": "p"}
        headers = {"authorization": "Bearer t0k"}
        resp = requests.post(
            f"{base_url}/nano-banana/images", json=body, headers=headers, timeout=5
        )
        assert resp.json()["success"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
