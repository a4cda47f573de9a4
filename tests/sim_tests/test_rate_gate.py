"""Rate control per client, on the simulator: every sender of one client shares one gate. The
tests count what the simulator saw (429 answers, submissions), never durations.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from langchain_nanobanana import (
    NanoBananaClient,
    NanoBananaImageGenerator,
    RateLimitError,
)
from langchain_nanobanana.cli import main
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN, fast_client

SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


def gate_changes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "langchain_nanobanana._ratelimit"]


def test_senders_hitting_the_limit_share_one_pause(
    sim: FakeNanoBananaServer, caplog: pytest.LogCaptureFixture
) -> None:
    """20 threads submit at once against a 5/s limit: the 15 refused wait out ONE pause, then
    come back paced at the learned rate. Per-sender sleeps would come back together (another
    15-strong storm, then RateLimitError after max_retries)."""
    caplog.set_level(logging.INFO)
    sim.rate_limit = 5
    client = fast_client(sim, max_retries=2)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: client.generate(f"kite {i}", wait=False), range(20)))
    assert all(r.status in ("pending", "succeeded") and r.task_id for r in results)
    assert len(sim.tasks) == 20  # each paid once
    refused = sim.rate_limited
    assert refused == len(sim.requests_to(SUBMIT)) - 20
    assert refused <= 15 + 2, refused  # the first burst, and (almost) nothing after the pause
    first = gate_changes(caplog)
    assert sum("429 from the API" in m for m in first) <= 2  # one episode (maybe a second)
    client.close()


def test_a_known_rate_limit_avoids_429s(sim: FakeNanoBananaServer) -> None:
    sim.rate_limit = 10
    client = fast_client(sim, rate_limit=10)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: client.generate(f"kite {i}", wait=False), range(25)))
    assert len(sim.requests_to(SUBMIT)) == 25 == len(sim.tasks)
    assert sim.rate_limited == 0
    client.close()


def test_reads_pass_the_same_gate(sim: FakeNanoBananaServer) -> None:
    """Polls count against the same limit: submissions and reads together stay under it."""
    sim.rate_limit = 8
    sim.task_duration = 0.3
    client = fast_client(sim, rate_limit=8)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: client.generate(f"kite {i}"), range(12)))
    assert all(r.status == "succeeded" for r in results)
    assert len(sim.tasks) == 12 and sim.requests_to(TASKS)  # reads happened
    assert sim.rate_limited == 0  # and were paced with the submissions
    client.close()


def test_max_retries_still_bounds_the_429s_of_one_call(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("429", count=10, path=SUBMIT, retry_after="0")
    with pytest.raises(RateLimitError) as info:
        fast_client(sim, max_retries=2).generate("a kite")
    assert len(sim.requests_to(SUBMIT)) == 3 and info.value.retry_after == 0


def test_the_batch_and_async_senders_share_the_gate(sim: FakeNanoBananaServer) -> None:
    sim.rate_limit = 6
    client = fast_client(sim, max_retries=3)
    generator = NanoBananaImageGenerator(client=client)
    out = generator.batch([f"kite {i}" for i in range(10)], config={"max_concurrency": 10})
    assert all(r.status == "succeeded" for r in out)

    async def many() -> list[object]:
        return list(await asyncio.gather(*(client.agenerate(f"a{i}") for i in range(8))))

    assert len(asyncio.run(many())) == 8
    assert len(sim.tasks) == 18
    client.close()


def test_cli_rate_limit_is_checked_before_any_request(
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    for bad in ("0", "-1", "nan", "inf", "fast"):
        code = main(["generate", "a kite", "--rate-limit", bad, "--base-url", sim.base_url])
        assert code == 2, bad
        assert "--rate-limit" in capsys.readouterr().err
    assert not sim.requests
    out = str(tmp_path / "o")
    code = main(
        ["generate", "a kite", "--rate-limit", "5", "--out", out, "--base-url", sim.base_url]
    )
    assert code == 0 and len(sim.tasks) == 1


def test_a_client_without_limit_is_not_slowed(sim: FakeNanoBananaServer) -> None:
    client = NanoBananaClient(SIM_TOKEN, base_url=sim.base_url)
    assert client._transport.gate.rate is None
    assert client._transport.gate.concurrency_limit is None
    client.close()
