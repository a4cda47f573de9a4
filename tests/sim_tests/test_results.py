"""``ImageResult``, ``GeneratedImage`` and ``TaskRecord`` (shapes: seed 000, vendor Tasks API)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from langchain_nanobanana import (
    GeneratedImage,
    ImageResult,
    NanoBananaClient,
    NanoBananaError,
    TaskFailedError,
    TaskRecord,
)
from langchain_nanobanana.testing import FakeNanoBananaServer, png_size

ACCOUNT = {
    "user_id": "acct-user-17",
    "credential_id": "acct-cred-17",
    "application_id": "acct-app-17",
    "api_id": "acct-api-17",
}
CDN = "https://platform.cdn.acedata.cloud/nanobanana"
SUCCESS: dict[str, Any] = {
    "success": True,
    "task_id": "task-1",
    "trace_id": "trace-1",
    "data": [
        {"prompt": "a cat", "image_url": f"{CDN}/one.png"},
        {"prompt": "a cat", "image_url": "https://cdn.acedata2.cloud/two.png"},
    ],
}
FAILURE = {
    "success": False,
    "task_id": "task-2",
    "trace_id": "trace-2",
    "error": {"code": "content_blocked", "message": "The prompt was blocked."},
}
ACK = {"success": True, "task_id": "task-3", "trace_id": "trace-3"}


def no_account_fields(value: Any, values: Any = None) -> bool:
    values = ACCOUNT.values() if values is None else values
    text = value if isinstance(value, str) else json.dumps(value)
    return not any(f'"{key}"' in text for key in ACCOUNT) and not any(v in text for v in values)


# -- from_response --------------------------------------------------------------------------------
def test_success() -> None:
    result = ImageResult.from_response(SUCCESS)
    assert result.status == "succeeded"
    assert result.task_id == "task-1" and result.trace_id == "trace-1"
    assert result.images == [
        GeneratedImage(prompt="a cat", image_url=f"{CDN}/one.png"),
        GeneratedImage(prompt="a cat", image_url="https://cdn.acedata2.cloud/two.png"),
    ]
    assert result.urls == [f"{CDN}/one.png", "https://cdn.acedata2.cloud/two.png"]
    assert result.error is None and result.raw == SUCCESS
    assert result.raise_for_status() is result


def test_failure() -> None:
    result = ImageResult.from_response(FAILURE)
    assert result.status == "failed" and result.urls == [] and result.images == []
    assert result.error is not None
    assert (result.error.code, result.error.message) == (
        "content_blocked",
        "The prompt was blocked.",
    )
    with pytest.raises(TaskFailedError) as info:
        result.raise_for_status()
    error = info.value
    assert (error.task_id, error.trace_id, error.code) == ("task-2", "trace-2", "content_blocked")
    assert "content_blocked" in str(error) and "trace-2" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        {"success": False},
        {"success": False, "error": "just text"},
        {"error": {"code": "x", "message": "y"}},
    ],
)
def test_failure_shapes(body: dict[str, Any]) -> None:
    result = ImageResult.from_response(body, task_id="fallback-task", trace_id="fallback-trace")
    assert result.status == "failed" and result.error is not None and result.error.message
    assert result.task_id == "fallback-task" and result.trace_id == "fallback-trace"


def test_acknowledgement_is_pending() -> None:
    result = ImageResult.from_response(ACK)
    assert result.status == "pending" and result.task_id == "task-3" and result.urls == []
    assert result.raise_for_status() is result
    assert "task-3" in result.to_text() and "still running" in result.to_text()


def test_body_ids_win_over_fallbacks_and_junk_items_are_skipped() -> None:
    body = {"success": True, "task_id": "t", "data": [{"prompt": "p"}, "junk", {"image_url": 5}]}
    body["data"].append({"image_url": "https://x.example/a.png"})  # type: ignore[attr-defined]
    result = ImageResult.from_response(body, task_id="other", trace_id="tr")
    assert result.task_id == "t" and result.trace_id == "tr"
    assert result.urls == ["https://x.example/a.png"] and result.images[0].prompt is None


def test_account_fields_are_stripped_everywhere() -> None:
    body = {**SUCCESS, **ACCOUNT, "data": [{**SUCCESS["data"][0], **ACCOUNT}]}
    result = ImageResult.from_response(body)
    assert no_account_fields(result.raw) and no_account_fields(result.model_dump())
    record = TaskRecord.from_api(
        {
            "id": "task-1",
            "created_at": 1700000000.5,
            "finished_at": 1700000042.0,
            "request": {"action": "generate", "prompt": "a cat", **ACCOUNT},
            "response": body,
            "trace_id": "trace-1",
            "type": "images",
            **ACCOUNT,
        }
    )
    assert no_account_fields(record.raw) and no_account_fields(record.request)
    assert no_account_fields(record.model_dump()) and no_account_fields(record.model_dump_json())
    assert record.raw is not None and record.raw["type"] == "images"


def test_account_fields_stripped_from_simulator_records(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    result = client.generate("a cat")
    raw_record = sim.tasks[result.task_id or ""]
    values = [raw_record[key] for key in ACCOUNT]
    assert all(values)  # the API sends them ...
    record = client.get_task(result.task_id or "")
    assert no_account_fields(record.model_dump(), values)  # ... we never keep them
    assert no_account_fields(result.model_dump(), values)
    assert no_account_fields(result.to_text(), values)


def test_results_are_frozen() -> None:
    result = ImageResult.from_response(SUCCESS)
    with pytest.raises(ValueError, match="frozen"):
        result.status = "failed"  # type: ignore[misc]


# -- TaskRecord -----------------------------------------------------------------------------------
def test_task_record_states() -> None:
    base = {"id": "t1", "created_at": 1700000000, "request": {"action": "generate"}}
    pending = TaskRecord.from_api({**base, "trace_id": "tr"})
    assert pending.status == "pending" and pending.result is None
    assert pending.created_at == 1700000000.0 and isinstance(pending.created_at, float)
    assert pending.finished_at is None and pending.request == {"action": "generate"}
    fallback = pending.to_result()
    assert (fallback.status, fallback.task_id, fallback.trace_id) == ("pending", "t1", "tr")

    ok = {**SUCCESS, "task_id": "t1"}
    done = TaskRecord.from_api({**base, "response": ok, "finished_at": 1700000030.25})
    assert done.status == "succeeded" and done.result is not None
    assert done.result.urls == ImageResult.from_response(ok).urls
    assert done.finished_at == 1700000030.25 and done.to_result() is done.result

    failed = TaskRecord.from_api({**base, "response": {**FAILURE, "task_id": "t1"}})
    assert failed.status == "failed" and failed.result is not None
    assert failed.result.error is not None and failed.result.error.code == "content_blocked"

    # A response without images nor error is not a finished task.
    not_yet = TaskRecord.from_api({**base, "response": {"success": True, "task_id": "t1"}})
    assert not_yet.status == "pending" and not_yet.result is None
    # ... unless the record says it finished: then it cannot be read (never polled to max_wait)
    with pytest.raises(NanoBananaError, match="no images"):
        TaskRecord.from_api({**base, "response": {"success": True}, "finished_at": 1.0})
    # another task's response under this id is never taken for this task
    with pytest.raises(NanoBananaError, match="holds the response of"):
        TaskRecord.from_api({**base, "response": SUCCESS})


def test_task_record_ids_and_types() -> None:
    assert TaskRecord.from_api({"task_id": "t2"}).id == "t2"
    odd = TaskRecord.from_api({"id": "t3", "created_at": True, "request": "x"})
    assert odd.created_at is None and odd.request is None and odd.status == "pending"
    # a response that is not an object cannot be read: an error, never "still running"
    responses: list[object] = [[], "done", 5]
    for response in responses:
        with pytest.raises(NanoBananaError, match="response is a"):
            TaskRecord.from_api({"id": "t3", "response": response})
    # No id at all: a NanoBananaError (the answer layer makes it an APIResponseValidationError
    # naming the task), never a bare ValueError / pydantic error.
    for record in ({"created_at": 1.0}, {"id": 5}, {"id": ""}, {"task_id": None}):
        with pytest.raises(NanoBananaError, match="without an id") as info:
            TaskRecord.from_api(record)
        assert not isinstance(info.value, ValidationError)
    assert TaskRecord.from_api({"created_at": 1.0}, task_id="asked").id == "asked"
    assert TaskRecord.from_api({"id": "own"}, task_id="asked").id == "own"
    junks: list[object] = [None, [], "text", 3]
    for junk in junks:
        with pytest.raises(NanoBananaError, match="not an object"):
            TaskRecord.from_api(junk, task_id="asked")


@pytest.mark.parametrize(
    "record",
    [
        {"id": "t", "finished_at": "yesterday", "trace_id": 7, "response": {"success": "yes"}},
        {"id": "t", "response": {"success": False, "error": ["not", "an", "object"]}},
        {"id": "t", "response": {"success": False, "error": {"code": 5, "message": None}}},
        {"id": "t", "state": 5, "status": ["failed"], "request": None},
    ],
)
def test_odd_types_in_records_never_raise(record: dict[str, Any]) -> None:
    parsed = TaskRecord.from_api(record)
    assert parsed.id == "t" and parsed.status in ("pending", "failed")
    assert parsed.trace_id is None or isinstance(parsed.trace_id, str)
    if parsed.result is not None and parsed.result.error is not None:
        assert isinstance(parsed.result.error.message, str)


@pytest.mark.parametrize(
    "word", ["failed", "FAILED", "error", "cancelled", "canceled", "rejected", "timeout"]
)
@pytest.mark.parametrize("key", ["state", "status"])
def test_failure_word_without_response_ends_the_task(key: str, word: str) -> None:
    """SPEC Part 1: a record that signals failure only by a state word is failed at once."""
    record = TaskRecord.from_api(
        {"id": "t", key: word, "finished_at": 1700000001, "trace_id": "tr"}
    )
    assert record.status == "failed" and record.result is not None
    result = record.result
    assert (result.status, result.task_id, result.trace_id) == ("failed", "t", "tr")
    assert result.error is not None and result.error.code == word.lower()
    with pytest.raises(TaskFailedError) as info:
        result.raise_for_status()
    assert info.value.task_id == "t" and word.lower() in str(info.value)


@pytest.mark.parametrize("word", ["running", "queued", "processing", "succeeded", "", None])
def test_other_words_without_response_stay_pending(word: str | None) -> None:
    assert TaskRecord.from_api({"id": "t", "state": word}).status == "pending"


def test_data_of_the_wrong_shape_is_unreadable() -> None:
    record = {"id": "t", "response": {"success": True, "data": {"image_url": "https://x/a.png"}}}
    with pytest.raises(NanoBananaError, match="data is a dict"):
        TaskRecord.from_api(record)


def test_response_wins_over_a_state_word() -> None:
    response = {**SUCCESS, "task_id": "t"}
    record = TaskRecord.from_api({"id": "t", "state": "failed", "response": response})
    assert record.status == "succeeded" and record.result is not None and record.result.urls


def test_result_error_model() -> None:
    from langchain_nanobanana import results

    assert "ResultError" in results.__all__ and not hasattr(results, "ImageError")
    error = ImageResult.from_response(FAILURE).error
    assert isinstance(error, results.ResultError)
    assert results.ResultError().message == "unknown error"


# -- from_callback ---------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["dict", "str", "bytes"])
def test_from_callback_accepts_dict_str_bytes(form: str) -> None:
    payload: Any = {
        "dict": SUCCESS,
        "str": json.dumps(SUCCESS),
        "bytes": json.dumps(SUCCESS).encode(),
    }
    result = ImageResult.from_callback(payload[form])
    assert result.status == "succeeded" and result.urls == ImageResult.from_response(SUCCESS).urls
    failed = ImageResult.from_callback(json.dumps(FAILURE).encode())
    assert failed.status == "failed" and failed.task_id == "task-2"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ("{}", "no task_id"),
        ('{"success": true, "data": []}', "no task_id"),
        (json.dumps(ACK), "without images"),
        ({"task_id": "", "success": True}, "no task_id"),
    ],
)
def test_from_callback_rejects_bad_bodies(payload: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageResult.from_callback(payload)


def test_from_callback_with_a_real_simulator_callback(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    sim.task_duration = 60
    pending = client.generate("x", callback_url="http://127.0.0.1:9/unreachable")
    sim.complete_task(pending.task_id or "")
    deadline = time.monotonic() + 5
    while not sim.callbacks_sent and time.monotonic() < deadline:
        time.sleep(0.01)
    (sent,) = sim.callbacks_sent  # the exact body the simulator POSTed (delivery failed: port 9)
    result = ImageResult.from_callback(json.dumps(sent["payload"]).encode())
    assert result.task_id == pending.task_id and result.status == "succeeded"
    assert result.urls == client.poll_task(pending.task_id or "").urls


# -- helpers ---------------------------------------------------------------------------------
def test_download_writes_valid_pngs(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    result = client.generate("a lighthouse", aspect_ratio="9:16", count=3)
    paths = result.download(tmp_path / "nested" / "out", client=client)
    assert [p.parent for p in paths] == [tmp_path / "nested" / "out"] * 3
    assert [p.name for p in paths] == [f"{result.task_id}-{n}.png" for n in (1, 2, 3)]
    assert all(png_size(p.read_bytes()) == (768, 1344) for p in paths)
    again = result.download(tmp_path / "nested" / "out", prefix="../../escape")
    assert all(p.parent == tmp_path / "nested" / "out" for p in again)  # sanitised, own session
    assert len(set(paths + again)) == 6  # never overwrites
    single = client.generate("one").download(tmp_path, prefix="cover")
    assert [p.name for p in single] == ["cover.png"]


def test_download_size_cap(client: NanoBananaClient, tmp_path: Path) -> None:
    result = client.generate("big", aspect_ratio="16:9")
    with pytest.raises(NanoBananaError, match="max_bytes"):
        result.download(tmp_path, max_bytes=100)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_download_without_client_ignores_the_base_url_environment(
    client: NanoBananaClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = client.generate("a cat")  # the client was given its base_url explicitly
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", "http://api.example.com")
    (path,) = result.download(tmp_path)  # downloads use no API base URL and no token
    assert png_size(path.read_bytes()) == (1024, 1024)


@pytest.mark.parametrize("body", [FAILURE, ACK])
def test_download_without_images(body: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(NanoBananaError, match="Nothing to download"):
        ImageResult.from_response(body).download(tmp_path)


def test_content_blocks() -> None:
    blocks = ImageResult.from_response(SUCCESS).to_content_blocks()
    assert [b["type"] for b in blocks] == ["image", "image"]
    assert [b["url"] for b in blocks] == ImageResult.from_response(SUCCESS).urls
    assert all(set(b) <= {"type", "url", "id"} for b in blocks)
    assert ImageResult.from_response(ACK).to_content_blocks() == []


def test_to_text() -> None:
    text = ImageResult.from_response(SUCCESS).to_text()
    assert "2 image(s)" in text and f"{CDN}/one.png" in text and "task-1" in text
    assert "content_blocked" in ImageResult.from_response(FAILURE).to_text()


def test_repr_html() -> None:
    html = ImageResult.from_response(SUCCESS)._repr_html_()
    assert html.count("<img ") == 2 and f'src="{CDN}/one.png"' in html
    assert "task-1" in html and "trace-1" in html
    hostile = {
        "success": True,
        "task_id": "<b>t</b>",
        "data": [{"prompt": '"><script>alert(1)</script>', "image_url": 'https://x/a.png?"q=<1>'}],
    }
    html = ImageResult.from_response(hostile)._repr_html_()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and 'src="https://x/a.png?&quot;q=&lt;1&gt;"' in html
    failed = ImageResult.from_response(FAILURE)._repr_html_()
    assert "<img" not in failed and "content_blocked" in failed


def test_repr_hides_raw() -> None:
    text = repr(ImageResult.from_response({**SUCCESS, "secret_field": "zzz"}))
    assert "zzz" not in text and "task-1" in text
