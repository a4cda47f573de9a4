"""The simulator's record and error knobs, its fidelity fixes and its command line, over raw
loopback HTTP (``requests`` and sockets; never the package client)."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from langchain_nanobanana.testing import FakeNanoBananaServer, make_png, png_size
from langchain_nanobanana.testing.__main__ import main
from langchain_nanobanana.testing._callbacks import post_json
from tests.helpers import SIM_TOKEN, eventually

AUTH = {"authorization": f"Bearer {SIM_TOKEN}"}
IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
ASYNC = {"action": "generate", "prompt": "a lantern", "async": True}


def post(sim: FakeNanoBananaServer, path: str, body: Any, **kw: Any) -> requests.Response:
    return requests.post(f"{sim.base_url}{path}", json=body, headers=AUTH, timeout=5, **kw)


def post_raw(sim: FakeNanoBananaServer, data: bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{sim.base_url}{IMAGES}", data=data, headers={**AUTH, **headers}, timeout=5
    )


def retrieve(sim: FakeNanoBananaServer, task_id: str) -> requests.Response:
    return post(sim, TASKS, {"action": "retrieve", "id": task_id})


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# -- record_padding ------------------------------------------------------------------------------
def test_record_padding_grows_every_record_answer(sim: FakeNanoBananaServer) -> None:
    ids = [post(sim, IMAGES, ASYNC).json()["task_id"] for _ in range(2)]
    plain = retrieve(sim, ids[0]).content
    plain_batch = post(sim, TASKS, {"action": "retrieve_batch", "ids": ids}).content
    sim.record_padding = 5 * 2**20
    start = time.monotonic()
    padded = retrieve(sim, ids[0]).content
    batch = post(sim, TASKS, {"action": "retrieve_batch", "ids": ids}).content
    assert time.monotonic() - start < 2
    assert len(padded) - len(plain) == sim.record_padding + 21
    assert len(batch) - len(plain_batch) == 2 * (sim.record_padding + 21)
    record = json.loads(padded)
    assert record["request"]["x_sim_padding"] == "A" * sim.record_padding
    assert all(len(i["request"]["x_sim_padding"]) == 5 * 2**20 for i in json.loads(batch)["items"])
    sim.record_padding = 0
    assert retrieve(sim, ids[0]).content == plain
    with pytest.raises(ValueError, match="record_padding"):
        FakeNanoBananaServer(record_padding=-1)


def test_record_fields_follow_the_tasks_guide(sim: FakeNanoBananaServer) -> None:
    task_id = post(sim, IMAGES, ASYNC).json()["task_id"]
    record = retrieve(sim, task_id).json()
    assert len(record["_id"]) == 24 and int(record["_id"], 16) >= 0
    for key in ("id", "created_at", "request", "response", "trace_id", "type", "user_id"):
        assert key in record
    assert record["request"] == ASYNC and record["type"] == "images"
    unknown = post(sim, TASKS, {"action": "retrieve", "id": "no-such-task"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    batch = post(sim, TASKS, {"action": "retrieve_batch", "ids": [task_id, "nope", task_id]})
    assert [i["id"] for i in batch.json()["items"]] == [task_id, task_id]


# -- state words ---------------------------------------------------------------------------------
def test_state_words_on_every_record() -> None:
    with FakeNanoBananaServer(token=SIM_TOKEN, state_words=True, task_duration=60) as sim:
        running_id = post(sim, IMAGES, ASYNC).json()["task_id"]
        running = retrieve(sim, running_id).json()
        assert running["state"] == "running"
        assert "finished_at" not in running and "response" not in running
        sim.complete_task(running_id)
        done = retrieve(sim, running_id).json()
        assert done["state"] == "succeeded" and done["finished_at"] >= done["created_at"]
        assert done["response"]["success"] is True
        sim.fail_next_tasks()
        failed_id = post(sim, IMAGES, ASYNC).json()["task_id"]
        sim.complete_task(failed_id)
        failed = retrieve(sim, failed_id).json()
        assert failed["state"] == "failed" and failed["response"]["success"] is False


def test_state_only_failure_has_no_response(sim: FakeNanoBananaServer) -> None:
    sim.fail_next_tasks(2, code="moderation", message="Blocked.", state_only=True)
    task_id = post(sim, IMAGES, ASYNC).json()["task_id"]
    record = retrieve(sim, task_id).json()
    assert record["state"] == "failed" and "response" not in record
    assert record["finished_at"] >= record["created_at"]
    sync = post(sim, IMAGES, {"action": "generate", "prompt": "p"})  # the answer keeps the body
    assert sync.status_code == 500 and sync.json()["error"]["code"] == "moderation"
    ok = post(sim, IMAGES, ASYNC).json()["task_id"]
    assert "state" not in retrieve(sim, ok).json()  # state_words is off


# -- error_shape ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("object", {"code": "invalid_token"}),
        ("string", "Invalid or missing token (authorization: Bearer)."),
        ("null", None),
        ("missing", KeyError),
    ],
)
def test_error_shape(sim: FakeNanoBananaServer, shape: Any, expected: Any) -> None:
    sim.error_shape = shape
    body = requests.post(f"{sim.base_url}{IMAGES}", json=ASYNC, timeout=5).json()
    assert body["success"] is False and len(body["trace_id"]) == 36
    sim.fail_next_tasks(code="generation_failed", message="No image.")
    task_id = post(sim, IMAGES, ASYNC).json()["task_id"]
    response = retrieve(sim, task_id).json()["response"]
    assert response["success"] is False and response["task_id"] == task_id
    if expected is KeyError:
        assert "error" not in body and "error" not in response
    elif isinstance(expected, dict):
        assert body["error"]["code"] == "invalid_token"
        assert response["error"] == {"code": "generation_failed", "message": "No image."}
    else:
        assert body["error"] == expected
        assert response["error"] == (None if expected is None else "No image.")
    with pytest.raises(ValueError, match="error_shape"):
        FakeNanoBananaServer(error_shape="xml")  # type: ignore[arg-type]


# -- fidelity: odd inputs never crash a thread ---------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b'{"action": "generate", "prompt": "a \\ud800 cat"}',  # a lone surrogate
        b'{"action": "generate", "prompt": "\\u200b\\u2060 \\u0007"}',  # nothing visible
    ],
)
def test_odd_prompts_are_refused_not_crashed_on(sim: FakeNanoBananaServer, raw: bytes) -> None:
    resp = post_raw(sim, raw)
    assert resp.status_code == 400 and "prompt" in resp.json()["error"]["message"]
    assert sim.tasks == {} and sim.internal_errors == []


def test_callback_urls_never_kill_the_callback_thread(sim: FakeNanoBananaServer) -> None:
    for bad in ("http://[::1/hook", "http://127.0.0.1:99999/hook", "http://exa mple.test/hook"):
        resp = post(sim, IMAGES, {**ASYNC, "callback_url": bad})
        assert resp.status_code == 400 and "callback_url" in resp.json()["error"]["message"]
    # Accepted (ImageRequest accepts it too) but undeliverable: an empty host label makes
    # urllib raise before any DNS lookup; the delivery is recorded with status None.
    assert post(sim, IMAGES, {**ASYNC, "callback_url": "http://a..b/hook"}).status_code == 200
    # The thread lives on: a later delivery still happens (here to the simulator itself: 400).
    good = f"{sim.base_url}/hook"
    assert post(sim, IMAGES, {**ASYNC, "callback_url": good}).status_code == 200
    assert eventually(lambda: len(sim.callbacks_sent) == 2)
    assert [c["status"] for c in sim.callbacks_sent] == [None, 400]
    assert sim.internal_errors == []


def test_post_json_survives_urls_urllib_refuses() -> None:
    for url in ("http://127.0.0.1:99999/x", "http://exa mple.test/x", "http://a..b/x", "nope"):
        assert post_json(url, {"success": True}, 1.0) is None


def test_bad_framing_and_deep_json_answer_400(sim: FakeNanoBananaServer) -> None:
    deep = post_raw(sim, b"[" * 100_000 + b"]" * 100_000)
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "token_mismatched"
    port = urlsplit(sim.base_url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        head = f"POST {IMAGES} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        conn.sendall(head.encode() + b"zz\r\n")  # a chunk size that is not hex
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert sim.internal_errors == []


# -- fidelity: what ImageRequest refuses, the simulator refuses ----------------------------------
def test_edit_takes_aspect_ratio_and_resolution(sim: FakeNanoBananaServer) -> None:
    first = sim.image_url(300, 200)
    cases = [
        ({"model": "nano-banana-2.1", "resolution": "2K", "aspect_ratio": "16:9"}, (2688, 1536)),
        ({"model": "nano-banana-pro", "resolution": "2K"}, (2496, 1664)),  # nearest: 3:2
        ({"aspect_ratio": "9:16"}, (300, 200)),  # 1K: the first image decides (seed 001)
    ]
    for extra, size in cases:
        body = {"action": "edit", "prompt": "p", "image_urls": [first], **extra}
        resp = post(sim, IMAGES, body)
        assert resp.status_code == 200, resp.text
        url = resp.json()["data"][0]["image_url"]
        assert png_size(requests.get(url, timeout=5).content) == size
    refused = {"action": "edit", "prompt": "p", "image_urls": [first], "resolution": "4K"}
    assert "resolution" in post(sim, IMAGES, refused).json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"action": "generate", "prompt": "p", "image_urls": ["https://x.test/a.png"]},
            "image_urls",
        ),
        ({"action": "generate", "prompt": "p", "image_urls": []}, "image_urls"),
        ({"action": "edit", "prompt": "p", "image_urls": [data_uri(b"plain text")]}, "image_urls"),
        ({"action": "edit", "prompt": "p", "image_urls": [data_uri(b"")]}, "image_urls"),
        ({"action": "edit", "prompt": "p", "image_urls": ["data:image/png;base64,iVBO R w=="]}, ""),
        ({"action": "edit", "prompt": "p", "image_urls": ["http://x.test:99999/a.png"]}, ""),
        ({"action": "edit", "prompt": "p", "image_urls": ["https:///a.png"]}, "image_urls"),
    ],
)
def test_refused_like_image_request(sim: FakeNanoBananaServer, body: Any, field: str) -> None:
    resp = post(sim, IMAGES, body)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "token_mismatched"
    assert field in resp.json()["error"]["message"]
    assert sim.tasks == {}


def test_image_kinds_by_magic_bytes_and_the_10_mib_cap(sim: FakeNanoBananaServer) -> None:
    kinds = {
        "image/jpeg": b"\xff\xd8\xff\xe0" + bytes(20),
        "image/gif": b"GIF89a" + bytes(20),
        "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(8),
        "image/heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    }
    for mime, data in kinds.items():
        body = {"action": "edit", "prompt": "p", "image_urls": [data_uri(data, mime)]}
        assert post(sim, IMAGES, body).status_code == 200, mime
    big = make_png(8, 8, b"x") + bytes(10 * 2**20 - len(make_png(8, 8, b"x")))
    at_cap = {"action": "edit", "prompt": "p", "image_urls": [data_uri(big)]}
    assert post(sim, IMAGES, at_cap).status_code == 200
    over = {"action": "edit", "prompt": "p", "image_urls": [data_uri(big + b"\x00")]}
    assert "10 MB" in post(sim, IMAGES, over).json()["error"]["message"]


def test_null_optional_fields_count_as_absent(sim: FakeNanoBananaServer) -> None:
    body = {"action": "generate", "prompt": "p", "model": None, "count": None, "async": None}
    assert post(sim, IMAGES, {**body, "image_urls": None, "callback_url": None}).status_code == 200


# -- command line --------------------------------------------------------------------------------
def test_cli_help_lists_path_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--path-prefix", "--record-padding", "--state-words", "--error-shape"):
        assert option in out
    with pytest.raises(SystemExit) as bad:
        main(["--path-prefix", "v1"])
    assert bad.value.code == 2


def test_cli_serves_under_the_path_prefix() -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "langchain_nanobanana.testing", "--port", "0"),
            *("--token", "t0k", "--path-prefix", "/v1/", "--error-shape", "null"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        headers = {"authorization": "Bearer t0k"}
        body = {"action": "generate", "prompt": "p"}
        ok = requests.post(f"{base_url}{IMAGES}", json=body, headers=headers, timeout=5)
        assert ok.json()["success"] is True
        refused = requests.post(f"{base_url}{IMAGES}", json=body, timeout=5)
        assert refused.status_code == 401 and refused.json()["error"] is None
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
