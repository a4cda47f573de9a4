"""The world's HTTP, proven on the simulator: compressed answers, unparseable redirects, huge or
dripping 3xx bodies, lone surrogates in records, an error page that echoes our token, ``fork``,
and a download that drips. Every failure is our error, with the right facts.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from langchain_nanobanana import (
    APIResponseValidationError,
    BadRequestError,
    NanoBananaAPIError,
    NanoBananaClient,
    NanoBananaError,
    NanoBananaGenerateTool,
    SubmissionUncertainError,
)
from langchain_nanobanana.cli import main
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN, fast_client, invoke_tool

SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


def journaled(sim: FakeNanoBananaServer, tmp_path: Path, **kw: Any) -> NanoBananaClient:
    return fast_client(sim, journal=tmp_path / "runs.sqlite", **kw)


# -- 1. compressed answers -------------------------------------------------------------------------


def test_api_requests_ask_for_identity_and_a_compressing_proxy_is_harmless(
    sim: FakeNanoBananaServer,
) -> None:
    sim.compress = True  # gzips whenever the request accepts gzip (requests' default does)
    sim.task_duration = 0.1
    result = fast_client(sim).generate("a red kite")
    assert result.status == "succeeded" and result.task_id
    for request in sim.requests_to(SUBMIT) + sim.requests_to(TASKS):
        assert request.headers.get("accept-encoding") == "identity"


@pytest.mark.parametrize("path", [SUBMIT, TASKS])
def test_answers_compressed_anyway_are_decoded(sim: FakeNanoBananaServer, path: str) -> None:
    sim.task_duration = 0.1
    sim.inject_fault("gzip", path=path, count=2)  # ignores our Accept-Encoding
    result = fast_client(sim).generate("a red kite")
    assert result.status == "succeeded" and result.urls
    assert [r.fault for r in sim.requests_to(path)][:1] == ["gzip"]


def test_a_gzip_bomb_stops_at_the_cap_counting_decoded_bytes(sim: FakeNanoBananaServer) -> None:
    bomb = gzip.compress(b" " * (64 * 2**20))  # 64 MiB of JSON whitespace in ~64 KiB
    assert len(bomb) < 2**20
    sim.inject_fault("body", path=SUBMIT, body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(SubmissionUncertainError, match="too large") as info:
        fast_client(sim).generate("a red kite")
    assert info.value.billed == "maybe"  # the task was created before the answer


def test_a_truncated_gzip_answer_is_not_taken_for_a_short_one(sim: FakeNanoBananaServer) -> None:
    cut = gzip.compress(json.dumps({"success": True, "task_id": "t" * 400}).encode())[:-12]
    sim.inject_fault("body", path=SUBMIT, body=cut, headers={"Content-Encoding": "gzip"})
    with pytest.raises(SubmissionUncertainError, match="truncated compressed"):
        fast_client(sim).generate("a red kite")


# -- 2. redirects: unparseable Location, huge or dripping bodies ---------------------------------

BAD_LOCATION = {"Location": "http://[::1"}


def test_unparseable_location_on_the_paid_post_may_have_run(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    sim.inject_fault("body", path=SUBMIT, status=302, body="", headers=BAD_LOCATION)
    client = journaled(sim, tmp_path)
    with pytest.raises(NanoBananaError) as info:
        client.generate("a red kite", idempotency_key="k1")
    error = info.value
    assert isinstance(error, APIResponseValidationError) and error.status_code == 302
    assert error.billed == "maybe"
    assert not isinstance(error.__cause__, ValueError) and error.__cause__ is None
    # The key is uncertain, not freed: the same key never pays again silently.
    with pytest.raises(SubmissionUncertainError):
        client.generate("a red kite", idempotency_key="k1")
    assert len(sim.requests_to(SUBMIT)) == 1


def test_unparseable_location_on_a_read_names_the_task(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)
    task_id = client.generate("a red kite", wait=False).task_id
    assert task_id
    sim.inject_fault("body", path=TASKS, status=307, body="", headers=BAD_LOCATION)
    with pytest.raises(NanoBananaAPIError) as info:
        client.get_task(task_id)
    assert info.value.task_id == task_id and info.value.status_code == 307


def test_a_huge_3xx_body_is_capped(sim: FakeNanoBananaServer) -> None:
    body = b"<html>" + b"x" * (9 * 2**20) + b"</html>"  # over the 8 MiB submission cap
    sim.inject_fault("body", path=SUBMIT, status=302, body=body, headers=BAD_LOCATION)
    with pytest.raises(SubmissionUncertainError, match="too large"):
        fast_client(sim).generate("a red kite")


def test_a_dripping_3xx_body_ends_at_the_deadline(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault(
        "body",
        path=SUBMIT,
        status=302,
        body="<html>" + "x" * 400 + "</html>",
        headers={**BAD_LOCATION, "Content-Type": "text/html"},
        retry_after="8",  # the answer drips over 8 s
    )
    start = time.monotonic()
    with pytest.raises(SubmissionUncertainError, match="deadline"):
        fast_client(sim, timeout=1.0).generate("a red kite")
    assert time.monotonic() - start < 6  # bounded by timeout=1, not by the drip


# -- 3. lone surrogates --------------------------------------------------------------------------


def test_a_record_with_lone_surrogates_is_cleaned_and_journaled(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    sim.task_duration = 0.05
    sim.inject_fault("surrogates", path=TASKS, count=50)
    client = journaled(sim, tmp_path)
    result = client.generate("a red kite", idempotency_key="s1")
    assert result.status == "succeeded"
    prompt = result.images[0].prompt
    assert prompt is not None and prompt.endswith("\ufffd") and prompt.encode("utf-8")
    again = client.generate("a red kite", idempotency_key="s1")  # from the journal
    assert again.urls == result.urls
    assert json.dumps(result.raw, ensure_ascii=False).encode("utf-8")


def test_surrogates_in_an_acknowledgement_are_cleaned(sim: FakeNanoBananaServer) -> None:
    body = '{"success": true, "task_id": "t-1", "data": [], "trace_id": "\\udc00x\\ud83d\\ude00"}'
    sim.inject_fault("body", path=SUBMIT, body=body)
    result = fast_client(sim).generate("a red kite", wait=False)
    assert result.trace_id == "\ufffdx\U0001f600"  # the lone one replaced, the pair kept


# -- 4. the token echoed by an error page ---------------------------------------------------------


def _assert_clean(text: str, where: str) -> None:
    assert SIM_TOKEN not in text, where
    assert "Bearer sim-token" not in text, where


def test_an_echoed_token_is_scrubbed_from_the_error(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("echo", path=SUBMIT, create_task=False)
    with pytest.raises(BadRequestError) as info:
        fast_client(sim).generate("a red kite")
    error = info.value
    for where, text in {
        "str": str(error),
        "repr": repr(error),
        "body": json.dumps(error.body),
        "message": error.message,
    }.items():
        _assert_clean(text, where)
    assert "<redacted>" in str(error)


def test_an_echoed_token_is_scrubbed_from_the_tool_message(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("echo", path=SUBMIT, create_task=False)
    message = invoke_tool(NanoBananaGenerateTool(client=fast_client(sim)), {"prompt": "a kite"})
    assert message.status == "error"
    _assert_clean(str(message.content), "ToolMessage")
    _assert_clean(repr(message.artifact), "artifact")


def test_an_echoed_token_is_scrubbed_from_the_cli_manifest(
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    sim.inject_fault("echo", path=SUBMIT, create_task=False, count=2)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "r1", "prompt": "a red kite"}) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["batch", str(rows), "--out", str(out), "--json", "--base-url", sim.base_url])
    captured = capsys.readouterr()
    assert code != 0
    manifest = out / "manifest.jsonl"
    assert '"error"' in manifest.read_text(encoding="utf-8")
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json", ".html"):
            _assert_clean(path.read_text(encoding="utf-8"), str(path))
    code = main(["generate", "a red kite", "--json", "--out", str(out), "--base-url", sim.base_url])
    captured2 = capsys.readouterr()
    assert code != 0 and "token_mismatched" in captured2.out + captured2.err
    _assert_clean(captured2.out + captured2.err, "CLI generate output")
    _assert_clean(captured.out + captured.err, "CLI output")


# -- 5. fork ---------------------------------------------------------------------------------------


def _child(client: NanoBananaClient, conn: Any) -> None:
    try:
        result = client.generate("a red kite in the child")
        conn.send(("ok", result.status))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        conn.send(("error", repr(exc)))


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_a_forked_child_gets_its_own_connection_pool(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim)  # poll mode: the child needs its own pool and its own poller
    assert client.generate("a red kite in the parent").status == "succeeded"
    before = sim.connections_accepted
    assert before >= 1  # the parent holds a pooled keep-alive connection
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(client, child_conn))
    proc.start()
    outcome = parent_conn.recv() if parent_conn.poll(30) else ("error", "no answer")
    proc.join(10)
    assert outcome == ("ok", "succeeded")
    # The child connected on its own (new TCP connections), it did not reuse the parent's socket.
    assert sim.connections_accepted > before
    # And the parent's pooled connection still works after the child exited.
    assert client.generate("a red kite in the parent again").status == "succeeded"
    client.close()


# -- 6. downloads have an overall deadline --------------------------------------------------------


def test_a_dripping_download_ends_at_its_deadline(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    client = fast_client(sim, timeout=1.0)
    result = client.generate("a red kite")
    sim.inject_fault("slow", path="/files/", retry_after="8")  # the CDN drips for 8 s
    start = time.monotonic()
    with pytest.raises(NanoBananaError):
        client.download(result, tmp_path)
    assert time.monotonic() - start < 6  # bounded by timeout=1, not by the drip
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".png"]


def test_a_download_redirect_to_an_unparseable_location_is_our_error(
    sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    client = fast_client(sim)
    result = client.generate("a red kite")
    sim.inject_fault("body", path="/files/", status=302, body="", headers=BAD_LOCATION)
    with pytest.raises(NanoBananaError, match="Location"):
        client.download(result, tmp_path)


# -- 7. the simulator's own lows ------------------------------------------------------------------


def test_padded_files_are_capped(sim: FakeNanoBananaServer) -> None:
    small = requests.get(f"{sim.base_url}/files/padded/1000.png", timeout=5)
    assert small.status_code == 200 and len(small.content) == 1000
    huge = requests.get(f"{sim.base_url}/files/padded/{2**30}.png", timeout=5)
    assert huge.status_code == 404


def test_the_standalone_simulator_prints_the_host_it_bound() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_nanobanana.testing", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    assert "listening on http://0.0.0.0:" in first, first
    assert first.strip().rsplit(" ", 1)[-1].startswith("http://127.0.0.1:"), first


# -- a .netrc or a session's auth never replaces the token -----------------------------------------


def test_a_netrc_default_entry_does_not_replace_the_token(
    sim: FakeNanoBananaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests' ``Session.prepare_request`` applies a ``.netrc`` entry (``default`` matches
    every host) as Basic auth over an explicit ``Authorization`` header: the API would answer
    401 for a token that is right. API requests are prepared without it.
    """
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    session = requests.Session()
    session.auth = ("other", "secret")  # a session's auth is not ours to send either
    session.headers["X-Team"] = "imaging"  # the session's own headers still go out
    sim.task_duration = 0.1
    with fast_client(sim, session=session) as client:
        result = client.generate("a red kite")
    assert result.status == "succeeded"
    for request in sim.requests_to(SUBMIT) + sim.requests_to(TASKS):
        assert request.headers.get("authorization") == f"Bearer {SIM_TOKEN}"
        assert request.headers.get("x-team") == "imaging"
