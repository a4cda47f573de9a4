"""The retry policy of SPEC "Retry policy (never pay twice)", proven on the simulator.

Two ``urllib3.util.Retry`` policies are mounted on one ``requests.Session`` (``_transport``): the
default adapters carry the billable submission's policy (retry only what surely was not processed:
connection refused, 429), and only the task-read URL (``/nano-banana/tasks``) gets the broad read
policy; ``max_retries`` bounds both. Waits are checked with loose lower bounds on the
simulator's arrival times (sleeps never end early), never with tight upper bounds.
"""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from itertools import pairwise

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry

from langchain_nanobanana import (
    APIConnectionError,
    NanoBananaClient,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
)
from langchain_nanobanana._core.answers import read_acknowledgement
from langchain_nanobanana._transport import RedactedHeader, Transport, _policies
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import fast_client, free_port

SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


def gaps(sim: FakeNanoBananaServer, path: str) -> list[float]:
    """Seconds between consecutive arrivals on ``path`` (simulator clock)."""
    times = [r.time for r in sim.requests_to(path)]
    return [b - a for a, b in pairwise(times)]


def mounted_retry(session: requests.Session, url: str) -> Retry:
    """The ``Retry`` of the transport adapter ``session`` uses for ``url``."""
    adapter = session.get_adapter(url)
    assert isinstance(adapter, HTTPAdapter)
    retry = adapter.max_retries
    assert isinstance(retry, Retry)
    return retry


def policy(client: NanoBananaClient, path: str) -> Retry:
    return mounted_retry(client.session, client.base_url + path)


def backoff_of(retry: Retry) -> float:
    value: float = retry.get_backoff_time()
    return value


# -- the two policies as configured --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/v1"])
def test_two_policies_mounted_per_path(sim: FakeNanoBananaServer, prefix: str) -> None:
    client = fast_client(sim, base_url=sim.base_url + prefix, max_retries=3)
    submit, read = policy(client, SUBMIT), policy(client, TASKS)
    # Submission: no status, never a read error (a 429 is the rate gate's, not urllib3's).
    assert not submit.status_forcelist
    assert submit.read == 0 and submit.other == 0 and submit.redirect == 0
    assert submit.total == submit.connect == submit.status == 3
    assert "POST" in (submit.allowed_methods or ())
    assert not submit.RETRY_AFTER_STATUS_CODES
    assert not submit.is_retry("POST", 503, has_retry_after=True)
    assert not submit.is_retry("POST", 500)
    assert not submit.is_retry("POST", 429, has_retry_after=True)
    # Task read: connection errors, read errors and 5xx (429: the gate).
    assert set(read.status_forcelist or ()) == set(range(500, 600))  # every 5xx, from the facts
    assert not read.is_retry("POST", 429, has_retry_after=True)
    assert read.total == read.connect == read.read == read.status == 3
    assert "POST" in (read.allowed_methods or ())
    assert read.is_retry("POST", 503) and read.is_retry("POST", 500)
    assert read.backoff_jitter > 0 and submit.backoff_jitter > 0
    assert getattr(read, "retry_after_cap", None) == getattr(submit, "retry_after_cap", None) == 60
    # Anything else falls back to the default adapters, i.e. the strict submission policy:
    # a submission URL that misses the mount can never be retried after sending.
    for url in (sim.base_url + "/files/x.png", sim.base_url + "/other" + SUBMIT):
        assert not mounted_retry(client.session, url).status_forcelist
    client.close()


def test_backoff_is_exponential_with_jitter() -> None:
    factor = 0.4
    retry, _ = _policies(5, factor, 60)
    assert backoff_of(retry) == 0.0  # no failure yet
    seen: list[list[float]] = []
    for _ in range(300):
        current, waits = retry, []
        for _n in range(3):
            response = HTTPResponse(body=b"", status=429, preload_content=False)
            current = current.increment(method="POST", url=SUBMIT, response=response)
            waits.append(backoff_of(current))
        seen.append(waits)
    for n in range(3):
        values = [w[n] for w in seen]
        base = factor * 2**n  # the first retry already waits backoff_factor
        assert all(base <= v <= base + factor / 2 for v in values), (n, min(values), max(values))
        assert max(values) - min(values) > factor / 10  # jitter spreads the retries
    _, capped = _policies(20, 10.0, 60)
    for _ in range(8):
        capped = capped.increment(method="POST", url=TASKS, error=None, response=None)
    assert backoff_of(capped) <= capped.backoff_max


def test_a_bad_retry_after_never_raises() -> None:
    """urllib3 raises ``InvalidHeader`` on a ``Retry-After`` it cannot parse; the policies fall
    back to their backoff instead (an exception there would look like "may have run")."""
    for retry in _policies(2, 0.1, 60):
        for value in ("soon", "-1", "1e999", "Mon, 99 Foo 2020 99:99:99 GMT"):
            response = HTTPResponse(
                body=b"", status=429, headers={"Retry-After": value}, preload_content=False
            )
            assert retry.get_retry_after(response) in (None, 0.0), value
        response = HTTPResponse(
            body=b"", status=429, headers={"Retry-After": "3600"}, preload_content=False
        )
        assert retry.get_retry_after(response) == 60  # capped


# -- 429 on the submission -----------------------------------------------------------------------


def test_submission_429_without_retry_after_backs_off_then_succeeds(
    sim: FakeNanoBananaServer,
) -> None:
    sim.inject_fault("429", count=2, path=SUBMIT)
    result = fast_client(sim, backoff_factor=0.15).generate("a red kite")
    assert result.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 3
    assert len(sim.tasks) == 1  # retried, and still paid once
    first, second = gaps(sim, SUBMIT)
    assert first >= 0.15 * 0.9  # backoff_factor * 2**0
    assert second >= 0.30 * 0.9  # backoff_factor * 2**1


def test_submission_429_retry_after_seconds_is_honoured(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("429", path=SUBMIT, retry_after="1")
    result = fast_client(sim, backoff_factor=0.01).generate("a red kite")
    assert result.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 2
    assert len(sim.tasks) == 1
    assert gaps(sim, SUBMIT)[0] >= 0.9  # the server's 1 s, not the 0.01 s backoff


def test_submission_429_retry_after_http_date_is_honoured(sim: FakeNanoBananaServer) -> None:
    when = formatdate(time.time() + 2, usegmt=True)  # RFC 9110 IMF-fixdate, 1 s resolution
    sim.inject_fault("429", path=SUBMIT, retry_after=when)
    result = fast_client(sim, backoff_factor=0.01).generate("a red kite")
    assert result.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 2
    assert len(sim.tasks) == 1
    assert gaps(sim, SUBMIT)[0] >= 0.5


def test_submission_429_with_unparsable_retry_after_falls_back_to_backoff(
    sim: FakeNanoBananaServer,
) -> None:
    # urllib3 alone raises InvalidHeader here, which would look like "may have run".
    sim.inject_fault("429", path=SUBMIT, retry_after="soon")
    result = fast_client(sim).generate("a red kite")
    assert result.status == "succeeded"
    assert len(sim.requests_to(SUBMIT)) == 2
    assert len(sim.tasks) == 1


def test_retry_after_is_capped(sim: FakeNanoBananaServer) -> None:
    transport = Transport(
        sim.base_url, max_retries=1, backoff_factor=0.01, pool_maxsize=1, retry_after_cap=1
    )
    sim.inject_fault("429", path=SUBMIT, retry_after="3600")
    answer = transport.post(
        transport.submit_url,
        {"action": "generate", "prompt": "x", "async": True},
        authorization=RedactedHeader(f"Bearer {sim.token}"),
        read_timeout=5.0,
        billable=True,
        max_bytes=2**20,
    )
    transport.close()
    result = read_acknowledgement(answer, in_line=False)
    assert result.task_id in sim.tasks
    (gap,) = gaps(sim, SUBMIT)
    assert 0.9 <= gap < 60  # capped to retry_after_cap=1 s, not an hour


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_bounds_the_submission(sim: FakeNanoBananaServer, max_retries: int) -> None:
    sim.inject_fault("429", count=10, path=SUBMIT, retry_after="0")
    with pytest.raises(RateLimitError) as info:
        fast_client(sim, max_retries=max_retries, backoff_factor=0.01).generate("a red kite")
    assert len(sim.requests_to(SUBMIT)) == max_retries + 1
    assert sim.tasks == {}
    assert info.value.status_code == 429 and info.value.code == "too_many_requests"
    assert info.value.retry_after == 0.0
    assert info.value.trace_id and info.value.trace_id in str(info.value)


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_bounds_the_task_read(sim: FakeNanoBananaServer, max_retries: int) -> None:
    client = fast_client(sim, max_retries=max_retries, backoff_factor=0.01)
    pending = client.generate("a red kite", wait=False)
    assert pending.task_id is not None
    sim.inject_fault("500", count=10, path=TASKS)
    with pytest.raises(ServerError) as info:
        client.get_task(pending.task_id)
    assert len(sim.requests_to(TASKS)) == max_retries + 1
    assert info.value.task_id == pending.task_id  # the task is never dropped from the error


@pytest.mark.parametrize(("kind", "retry_after"), [("503", "1"), ("500", None), ("502", None)])
def test_submission_5xx_is_never_retried(
    sim: FakeNanoBananaServer, kind: str, retry_after: str | None
) -> None:
    # urllib3's default would honour Retry-After on a 503; a paid POST must not.
    sim.inject_fault(kind, path=SUBMIT, retry_after=retry_after)
    with pytest.raises(SubmissionUncertainError):
        fast_client(sim, max_retries=3).generate("a red kite")
    assert len(sim.requests_to(SUBMIT)) == 1


# -- the task read retries broadly ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503", "429", "html", "drop"])
def test_task_read_retries_transient_answers(sim: FakeNanoBananaServer, kind: str) -> None:
    client = fast_client(sim, max_retries=2)
    pending = client.generate("a red kite", wait=False)
    assert pending.task_id is not None
    sim.inject_fault(kind, count=2, path=TASKS)
    record = client.get_task(pending.task_id)  # one call: the retries are urllib3's
    assert record.status == "succeeded"
    reads = sim.requests_to(TASKS)
    assert [r.fault for r in reads] == [kind, kind, None]
    assert len(sim.requests_to(SUBMIT)) == 1


def test_task_read_retries_a_read_timeout(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim, timeout=0.3)
    pending = client.generate("a red kite", wait=False)
    assert pending.task_id is not None
    sim.inject_fault("timeout", path=TASKS, retry_after="2")
    assert client.get_task(pending.task_id).status == "succeeded"
    assert [r.fault for r in sim.requests_to(TASKS)] == ["timeout", None]


def test_task_read_honours_retry_after(sim: FakeNanoBananaServer) -> None:
    client = fast_client(sim, backoff_factor=0.01)
    pending = client.generate("a red kite", wait=False)
    assert pending.task_id is not None
    sim.inject_fault("429", path=TASKS, retry_after="1")
    assert client.get_task(pending.task_id).status == "succeeded"
    assert gaps(sim, TASKS)[0] >= 0.9


# -- connection refused: nothing sent, so retried, then a clear error -----------------------------


@pytest.mark.parametrize("max_retries", [0, 2])
def test_connection_refused_is_retried_then_reported_as_nothing_sent(
    caplog: pytest.LogCaptureFixture, max_retries: int
) -> None:
    client = NanoBananaClient(
        "secret",
        base_url=f"http://127.0.0.1:{free_port()}",
        max_retries=max_retries,
        backoff_factor=0.01,
    )
    with (
        caplog.at_level(logging.WARNING, logger="urllib3"),
        pytest.raises(APIConnectionError) as info,
    ):
        client.generate("a red kite")
    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == max_retries
    assert all("NewConnectionError" in r.getMessage() for r in retries)
    assert "nothing was sent" in str(info.value)
    assert not isinstance(info.value, SubmissionUncertainError)


def test_client_rejects_negative_backoff() -> None:
    with pytest.raises(ValueError, match="backoff_factor"):
        NanoBananaClient("t", base_url="http://127.0.0.1:1", backoff_factor=-1)
