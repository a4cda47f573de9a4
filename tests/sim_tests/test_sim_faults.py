"""The simulator's newer fault kinds, over raw loopback HTTP (``requests``, ``http.client`` and
plain sockets; never the package client): redirects, slow-drip answers, a lower-case
``retry-after`` header and arbitrary bodies."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN

AUTH = {"authorization": f"Bearer {SIM_TOKEN}"}
IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
GENERATE = {"action": "generate", "prompt": "a red kite", "async": True}


def post(sim: FakeNanoBananaServer, path: str, body: Any, **kw: Any) -> requests.Response:
    kw.setdefault("timeout", 5)
    return requests.post(f"{sim.base_url}{path}", json=body, headers=AUTH, **kw)


def raw_exchange(
    sim: FakeNanoBananaServer, body: bytes, path: str = IMAGES
) -> tuple[bytes, list[float]]:
    """Send one POST on a fresh socket; return every byte received and each recv's time."""
    port = urlsplit(sim.base_url).port
    assert port is not None
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SIM_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    chunks: list[bytes] = []
    times: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode() + body)
        while data := conn.recv(65536):
            chunks.append(data)
            times.append(time.monotonic())
    return b"".join(chunks), times


# -- redirects -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["307", "308"])
def test_followed_307_308_resends_the_body_and_pays_twice(
    sim: FakeNanoBananaServer, kind: str
) -> None:
    sim.inject_fault(kind, path=IMAGES)
    resp = post(sim, IMAGES, GENERATE)  # requests follows 307/308 with method and body
    assert resp.status_code == 200 and resp.history[0].status_code == int(kind)
    log = sim.requests_to(IMAGES)
    assert [r.fault for r in log] == [kind, None]
    assert [r.method for r in log] == ["POST", "POST"]
    assert log[0].body == log[1].body and log[1].json == GENERATE
    assert len(sim.tasks) == 2  # the redirected submission ran too (create_task=True)


def test_redirect_location_and_create_task_false(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("307", create_task=False)
    resp = post(sim, f"{IMAGES}?trace=1", GENERATE, allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["location"] == f"{sim.base_url}{IMAGES}?trace=1"
    assert resp.headers["content-type"] == "text/html" and "307" in resp.text
    assert sim.tasks == {}


def test_redirect_keeps_the_path_prefix() -> None:
    with FakeNanoBananaServer(token=SIM_TOKEN, path_prefix="/v1") as sim:
        sim.inject_fault("308", path=IMAGES)
        first = post(sim, f"/v1{IMAGES}", GENERATE, allow_redirects=False)
        assert first.headers["location"] == f"{sim.base_url}/v1{IMAGES}"
        assert sim.api_base_url == f"{sim.base_url}/v1"


@pytest.mark.parametrize("kind", ["301", "302"])
def test_followed_301_302_turns_into_get(sim: FakeNanoBananaServer, kind: str) -> None:
    sim.inject_fault(kind)
    resp = post(sim, IMAGES, GENERATE)
    assert resp.history[0].status_code == int(kind)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "api_not_implemented"
    assert [r.method for r in sim.requests_to(IMAGES)] == ["POST", "GET"]
    assert len(sim.tasks) == 1


# -- slow drip -----------------------------------------------------------------------------------
def test_slow_answer_takes_the_set_time_in_small_pieces(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("slow", retry_after="1.0")
    start = time.monotonic()
    raw, times = raw_exchange(sim, json.dumps(GENERATE).encode())
    gaps = [b - a for a, b in zip([start, *times[:-1]], times, strict=True)]
    assert 0.85 <= times[-1] - start <= 1.6
    assert len(times) >= 8 and max(gaps) <= 0.25, gaps
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    answer = json.loads(body)
    assert answer["success"] is True and answer["task_id"] in sim.tasks
    assert sim.requests[-1].fault == "slow"


def test_slow_answer_beats_a_per_read_timeout(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("slow", retry_after="0.8", path=TASKS)
    start = time.monotonic()
    resp = post(sim, TASKS, {"action": "retrieve_batch", "ids": []}, timeout=(2, 0.3))
    assert resp.json() == {"items": [], "count": 0}
    assert time.monotonic() - start >= 0.75


def test_slow_error_body_is_padded_to_keep_gaps_short(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("slow", retry_after="2")
    start = time.monotonic()
    raw, times = raw_exchange(sim, b"{")  # a short 400 answer: ~300 bytes for 21 pieces
    gaps = [b - a for a, b in zip([start, *times[:-1]], times, strict=True)]
    assert max(gaps) <= 0.25 and times[-1] - start >= 1.8
    body = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "token_mismatched"


def test_stop_ends_a_slow_answer_promptly() -> None:
    sim = FakeNanoBananaServer(token=SIM_TOKEN).start()
    sim.inject_fault("slow", retry_after="30")
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(sim.base_url).port, timeout=5)
    conn.request("POST", IMAGES, json.dumps(GENERATE), AUTH)
    time.sleep(0.2)
    start = time.monotonic()
    sim.stop()
    assert time.monotonic() - start < 1
    conn.close()


# -- 429 with a lower-case header -----------------------------------------------------------------
def test_429_lower_sends_the_header_name_in_lower_case(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("429_lower")
    raw, _ = raw_exchange(sim, json.dumps(GENERATE).encode())
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 429 ")
    assert b"\r\nretry-after: 1\r\n" in head + b"\r\n" and b"Retry-After" not in head

    sim.inject_fault("429_lower", retry_after="7")
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(sim.base_url).port, timeout=5)
    try:
        conn.request("POST", IMAGES, json.dumps(GENERATE), AUTH)
        resp = conn.getresponse()
        names = [name for name, _ in resp.getheaders()]
        assert "retry-after" in names and "Retry-After" not in names
        assert resp.getheader("retry-after") == "7"
        assert json.loads(resp.read())["error"]["code"] == "too_many_requests"
    finally:
        conn.close()
    assert sim.tasks == {}
    assert [r.fault for r in sim.requests] == ["429_lower", "429_lower"]


# -- arbitrary bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"success": True, "trace_id": "t"},  # a submission answer without task_id
        {"success": True, "task_id": "x", "data": [{"prompt": 7, "image_url": None}]},
        {"success": False, "error": {"code": "invalid_token"}},
        {"success": False, "error": "a bare string"},
        {"success": False, "error": None},
        [1, 2, 3],
        None,
    ],
)
def test_body_fault_sends_any_json(sim: FakeNanoBananaServer, body: Any) -> None:
    sim.inject_fault("body", body=body)
    resp = post(sim, IMAGES, GENERATE)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json() == body
    assert len(sim.tasks) == 1  # processed first: the fault replaced only the answer


def test_body_fault_status_headers_raw_text_and_no_task(sim: FakeNanoBananaServer) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    sim.inject_fault("body", body=deep, create_task=False, path=IMAGES)
    assert post(sim, IMAGES, GENERATE).text == deep
    sim.inject_fault(
        "body",
        status=503,
        body=b"\xff\xfenot utf-8",
        headers={"Content-Type": "text/plain", "x-odd": "1"},
        create_task=False,
    )
    resp = post(sim, IMAGES, GENERATE)
    assert resp.status_code == 503 and resp.content == b"\xff\xfenot utf-8"
    assert resp.headers["content-type"] == "text/plain" and resp.headers["x-odd"] == "1"
    assert sim.tasks == {}
    record = {"created_at": "yesterday", "request": None}  # a task record without id
    task_id = post(sim, IMAGES, GENERATE).json()["task_id"]
    sim.inject_fault("body", body=record, path=TASKS)
    assert post(sim, TASKS, {"action": "retrieve", "id": task_id}).json() == record
    with pytest.raises(TypeError):
        sim.inject_fault("body", body=object())


def test_unknown_kind_and_bad_count_are_refused(sim: FakeNanoBananaServer) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.inject_fault("418")
    with pytest.raises(ValueError, match="count"):
        sim.inject_fault("slow", count=0)
