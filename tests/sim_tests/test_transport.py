"""``_transport``: base URL normalisation, the two retry policies on one Session, and
``Transport.post`` / ``read_body`` over real loopback HTTP against the simulator's faults.

The transport only sends and reads: it returns an ``Answer`` for any status and raises only for
transport failures (scrubbed, never chained); ``_core.answers`` classifies the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from langchain_nanobanana import (
    APIConnectionError,
    APIResponseValidationError,
    NanoBananaClient,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
)
from langchain_nanobanana._core.answers import (
    Answer,
    classify_error,
    decode_object,
    read_acknowledgement,
    read_record,
)
from langchain_nanobanana._transport import (
    RETRY_AFTER_CAP,
    SUBMIT_PATH,
    TASKS_PATH,
    RedactedHeader,
    ResponseTooLargeError,
    Transport,
    is_loopback_host,
    normalize_base_url,
)
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import free_port

GENERATE = {"action": "generate", "prompt": "x", "async": True}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("api.acedata.cloud", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback_host(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# -- base URL: normalised (one spelling), refused only for what is unsafe -------------------------


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api.acedata.cloud", "https://api.acedata.cloud"),
        ("https://api.acedata.cloud/", "https://api.acedata.cloud"),
        ("  https://api.xhuoapi.ai/v1/  ", "https://api.xhuoapi.ai/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        # case, default port, empty query
        ("HTTPS://API.AceData.Cloud:443/", "https://api.acedata.cloud"),
        ("https://api.acedata.cloud?", "https://api.acedata.cloud"),
        ("http://LOCALHOST:8080", "http://localhost:8080"),
        ("http://[::1]:80/", "http://[::1]"),
        # dot segments, doubled slashes, percent-encoding (RFC 3986 5.2.4 / 6.2.2)
        ("https://api.xhuoapi.ai/./v1/", "https://api.xhuoapi.ai/v1"),
        ("https://api.xhuoapi.ai/v1/../v1", "https://api.xhuoapi.ai/v1"),
        ("https://api.xhuoapi.ai/v2/../v1/./", "https://api.xhuoapi.ai/v1"),
        ("https://api.xhuoapi.ai//v1//", "https://api.xhuoapi.ai/v1"),
        ("https://api.xhuoapi.ai/%76%31", "https://api.xhuoapi.ai/v1"),
        ("https://x.io/v1/%2e%2e/v2", "https://x.io/v2"),
        ("https://x.io/%7Euser", "https://x.io/~user"),
        ("http://127.0.0.1:8/a%20b", "http://127.0.0.1:8/a%20b"),
        ("http://127.0.0.1:9/../..", "http://127.0.0.1:9"),
        # IDN host -> IDNA
        ("https://bücher.example/v1", "https://xn--bcher-kva.example/v1"),
    ],
)
def test_normalize_base_url(url: str, normalised: str) -> None:
    assert normalize_base_url(url) == normalised
    assert normalize_base_url(normalised) == normalised  # idempotent
    assert NanoBananaClient("t", base_url=url).base_url == normalised


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.acedata.cloud", "clear text"),
        ("http://8.8.8.8/v1", "clear text"),
        ("ws://api.acedata.cloud", "absolute http"),
        ("/v1", "absolute http"),
        ("https:///v1", "absolute http"),
        ("https://api.acedata.cloud/?token=x", "query"),
        ("https://api.acedata.cloud/#frag", "fragment"),
        ("https://user:pw@api.acedata.cloud", "user:password@"),
        ("http://127.0.0.1:99999", "not a valid URL"),
        ("https://api.acedata.cloud/a b", "whitespace"),
    ],
)
def test_normalize_base_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_base_url(url)


def test_normalize_base_url_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        normalize_base_url(b"https://api.acedata.cloud")  # type: ignore[arg-type]


# -- the two retry policies ----------------------------------------------------------------------


def _retry(session: requests.Session, url: str) -> Retry:
    adapter = session.get_adapter(url)
    assert isinstance(adapter, HTTPAdapter)
    retry = adapter.max_retries
    assert isinstance(retry, Retry)
    return retry


def _strict(retry: Retry) -> bool:
    """The submission's policy: no status retried, no read retried."""
    return not retry.status_forcelist and retry.read == 0


@pytest.mark.parametrize("base", ["https://api.acedata.cloud", "https://api.xhuoapi.ai/v1"])
def test_only_the_tasks_url_gets_the_read_policy(base: str) -> None:
    transport = Transport(base, max_retries=3, backoff_factor=0.5, pool_maxsize=4)
    submit = _retry(transport.session, transport.submit_url)
    tasks = _retry(transport.session, transport.tasks_url)
    # The billable POST: only connect failures (a 429 is the rate gate's), never a read failure
    # nor a 5xx.
    assert submit.total == 3 and submit.connect == 3 and submit.status == 3
    assert submit.read == 0 and submit.other == 0 and submit.redirect == 0
    assert not submit.status_forcelist
    assert not submit.RETRY_AFTER_STATUS_CODES  # urllib3 never sleeps on a 429 per sender
    assert submit.raise_on_status is False and submit.raise_on_redirect is False
    assert getattr(submit, "retry_after_cap", None) == RETRY_AFTER_CAP == 60
    # The idempotent read: broad retries.
    assert tasks.read == 3 and tasks.status_forcelist == set(range(500, 600))
    assert set(tasks.RETRY_AFTER_STATUS_CODES) == {503}
    assert "POST" in (tasks.allowed_methods or ()) and tasks.redirect == 0
    # Whatever falls through the tasks URL mount (another spelling of the submission URL, image
    # hosts, a mistyped prefix) gets the strict policy: billable safety never hangs on matching.
    for url in (
        transport.submit_url,
        base.upper() + SUBMIT_PATH,
        base + "/./nano-banana/images",
        "https://api.acedata.cloud" + SUBMIT_PATH,
        "https://platform.cdn.acedata.cloud/nanobanana/x.png",
        "http://127.0.0.1:1" + TASKS_PATH,
    ):
        assert _strict(_retry(transport.session, url)), url
    assert "authorization" not in {k.lower() for k in transport.session.headers}
    transport.close()


def test_client_uses_the_transport_policies(sim: FakeNanoBananaServer) -> None:
    with NanoBananaClient("t", base_url=sim.base_url + "/v1", max_retries=1) as client:
        assert client.session is client._transport.session
        assert _retry(client.session, client._transport.tasks_url).read == 1
        assert _retry(client.session, client._transport.submit_url).read == 0
        assert client._transport.tasks_url == sim.base_url + "/v1" + TASKS_PATH


def test_a_given_session_is_configured_not_closed() -> None:
    with requests.Session() as session:
        transport = Transport(
            "https://api.acedata.cloud",
            max_retries=1,
            backoff_factor=0.1,
            pool_maxsize=2,
            session=session,
        )
        assert transport.session is session
        assert _strict(_retry(session, transport.submit_url))
        transport.close()
        assert session.adapters  # still usable: the caller closes it


def test_grow_keeps_each_policy() -> None:
    transport = Transport(
        "https://api.acedata.cloud", max_retries=2, backoff_factor=0.1, pool_maxsize=2
    )
    transport.grow(16)
    transport.grow(4)  # never shrinks
    assert transport.pool_maxsize == 16
    assert _strict(_retry(transport.session, transport.submit_url))
    assert _retry(transport.session, transport.tasks_url).read == 2
    transport.close()


def test_redacted_header_repr() -> None:
    header = RedactedHeader("Bearer super-secret")
    assert header == "Bearer super-secret"  # sent unchanged
    assert "super-secret" not in repr(header)
    assert "super-secret" not in repr({"authorization": header})


# -- Transport.post over HTTP ---------------------------------------------------------------------


@pytest.fixture
def transport(sim: FakeNanoBananaServer) -> Iterator[Transport]:
    t = Transport(sim.base_url, max_retries=2, backoff_factor=0.01, pool_maxsize=2)
    yield t
    t.close()


def _post(
    sim: FakeNanoBananaServer,
    transport: Transport,
    path: str,
    payload: dict[str, Any],
    *,
    read_timeout: float = 5.0,
    max_bytes: int = 2**20,
) -> Answer:
    return transport.post(
        transport.base_url + path,
        payload,
        authorization=RedactedHeader(f"Bearer {sim.token}"),
        read_timeout=read_timeout,
        billable=path == SUBMIT_PATH,
        max_bytes=max_bytes,
    )


def test_post_success(sim: FakeNanoBananaServer, transport: Transport) -> None:
    answer = _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert answer.status == 200 and answer.header("Content-Type") == "application/json"
    result = read_acknowledgement(answer, in_line=False)
    assert result.status == "pending" and result.task_id in sim.tasks
    (request,) = sim.requests
    assert request.json == GENERATE and request.headers["authorization"] == f"Bearer {sim.token}"
    assert "authorization" not in transport.session.headers


def test_submission_retried_on_429_only(sim: FakeNanoBananaServer, transport: Transport) -> None:
    sim.inject_fault("429", path=SUBMIT_PATH, retry_after="0")
    assert _post(sim, transport, SUBMIT_PATH, GENERATE).status == 200
    assert [r.fault for r in sim.requests_to(SUBMIT_PATH)] == ["429", None]
    assert len(sim.tasks) == 1


def test_submission_429_exhausted_is_an_answer(
    sim: FakeNanoBananaServer, transport: Transport
) -> None:
    sim.inject_fault("429", path=SUBMIT_PATH, retry_after="0", count=3)
    answer = _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert answer.status == 429 and answer.header("retry-after") == "0"
    error = classify_error(answer, decode_object(answer))
    assert isinstance(error, RateLimitError) and error.retry_after == 0.0 and error.trace_id
    assert len(sim.requests_to(SUBMIT_PATH)) == 3 and sim.tasks == {}


@pytest.mark.parametrize("fault", ["500", "502", "503"])
def test_submission_5xx_never_retried(
    sim: FakeNanoBananaServer, transport: Transport, fault: str
) -> None:
    sim.inject_fault(fault, path=SUBMIT_PATH, count=3, retry_after="0")
    answer = _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert answer.status == int(fault)
    with pytest.raises(SubmissionUncertainError) as info:
        read_acknowledgement(answer, in_line=False)
    assert isinstance(info.value.__cause__, ServerError)
    assert len(sim.requests_to(SUBMIT_PATH)) == 1


@pytest.mark.parametrize("fault", ["301", "302", "307", "308"])
def test_redirects_are_answers_never_followed(
    sim: FakeNanoBananaServer, transport: Transport, fault: str
) -> None:
    sim.inject_fault(fault, path=SUBMIT_PATH)
    answer = _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert answer.status == int(fault) and answer.header("location")
    with pytest.raises(APIResponseValidationError, match="not followed") as info:
        read_acknowledgement(answer, in_line=False)
    assert info.value.status_code == int(fault)
    assert "may have run" in str(info.value)
    assert len(sim.requests) == 1 and len(sim.tasks) == 1  # it ran once, never re-sent


def test_submission_dropped_is_uncertain(sim: FakeNanoBananaServer, transport: Transport) -> None:
    sim.inject_fault("drop", path=SUBMIT_PATH)
    with pytest.raises(SubmissionUncertainError) as info:
        _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert "do not resubmit" in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None  # never chained
    assert len(sim.requests_to(SUBMIT_PATH)) == 1 and len(sim.tasks) == 1  # it ran


def test_submission_read_timeout_is_uncertain(
    sim: FakeNanoBananaServer, transport: Transport
) -> None:
    sim.inject_fault("timeout", path=SUBMIT_PATH, retry_after="0.5")
    with pytest.raises(SubmissionUncertainError, match="ReadTimeout"):
        _post(sim, transport, SUBMIT_PATH, GENERATE, read_timeout=0.1)
    assert len(sim.requests_to(SUBMIT_PATH)) == 1


def test_slow_answer_body_bounded_by_the_read_timeout(
    sim: FakeNanoBananaServer, transport: Transport
) -> None:
    """A slow-drip answer (a piece every 0.1 s) never trips a per-read socket timeout; the body
    read stops at its deadline all the same, and is not retried by urllib3."""
    sim.inject_fault("slow", path=TASKS_PATH, retry_after="3")
    with pytest.raises(APIConnectionError, match="deadline"):
        _post(sim, transport, TASKS_PATH, {"action": "retrieve", "id": "x"}, read_timeout=0.3)
    assert len(sim.requests_to(TASKS_PATH)) == 1


def test_client_timeout_bounds_the_body_once_the_headers_arrived(
    sim: FakeNanoBananaServer,
) -> None:
    """``timeout`` bounds reading the body once the headers arrived (the client's documented
    bound): a 200 KB record dripped over 5 s (headers in the first piece) ends after about
    0.5 s (generous bound: 2 s), as a transport failure naming the task."""
    client = NanoBananaClient(sim.token, base_url=sim.base_url, timeout=0.5, max_retries=0)
    task_id = client.generate("a kite", wait=False).task_id or ""
    sim.record_padding = 200_000
    sim.inject_fault("slow", path=TASKS_PATH, retry_after="5")
    started = time.monotonic()
    with pytest.raises(APIConnectionError, match="deadline") as info:
        client.get_task(task_id)
    assert time.monotonic() - started < 2.0
    assert info.value.task_id == task_id
    client.close()


def test_task_read_retried_on_drop_and_5xx(sim: FakeNanoBananaServer, transport: Transport) -> None:
    task_id = read_acknowledgement(_post(sim, transport, SUBMIT_PATH, GENERATE), in_line=False)
    assert task_id.task_id
    sim.inject_fault("drop", path=TASKS_PATH)
    sim.inject_fault("503", path=TASKS_PATH)
    payload = {"action": "retrieve", "id": task_id.task_id}
    record = read_record(_post(sim, transport, TASKS_PATH, payload), task_id=task_id.task_id)
    assert record.id == task_id.task_id
    assert [r.fault for r in sim.requests_to(TASKS_PATH)] == ["drop", "503", None]


def test_truncated_answer(sim: FakeNanoBananaServer, transport: Transport) -> None:
    sim.inject_fault("truncated", path=SUBMIT_PATH)
    with pytest.raises(SubmissionUncertainError, match="truncated") as info:
        _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert "look the task up" in str(info.value)  # billable: do not resubmit blindly
    sim.inject_fault("truncated", path=TASKS_PATH)
    with pytest.raises(APIConnectionError, match="truncated"):
        _post(sim, transport, TASKS_PATH, {"action": "retrieve", "id": "x"})


def test_malformed_answer(sim: FakeNanoBananaServer, transport: Transport) -> None:
    sim.inject_fault("malformed", path=SUBMIT_PATH)
    answer = _post(sim, transport, SUBMIT_PATH, GENERATE)
    assert answer.status == 200 and answer.body == b'{"success": tru'
    with pytest.raises(APIResponseValidationError, match="not JSON") as info:
        read_acknowledgement(answer, in_line=False)
    assert info.value.status_code == 200 and info.value.body == '{"success": tru'


def test_answer_over_max_bytes(sim: FakeNanoBananaServer, transport: Transport) -> None:
    with pytest.raises(ResponseTooLargeError) as info:
        _post(sim, transport, SUBMIT_PATH, GENERATE, max_bytes=10)
    assert info.value.limit == 10
    assert not isinstance(info.value, APIResponseValidationError)  # too big is not malformed


def test_connection_refused_means_nothing_sent() -> None:
    transport = Transport(
        f"http://127.0.0.1:{free_port()}", max_retries=0, backoff_factor=0, pool_maxsize=1
    )
    with pytest.raises(APIConnectionError, match="nothing was sent") as info:
        transport.post(
            transport.submit_url,
            GENERATE,
            authorization=RedactedHeader("Bearer t"),
            read_timeout=1.0,
            billable=True,
            max_bytes=1024,
        )
    assert not isinstance(info.value, SubmissionUncertainError)
    assert info.value.__cause__ is None and info.value.__context__ is None
    transport.close()


def test_get_never_sends_the_token(sim: FakeNanoBananaServer, transport: Transport) -> None:
    response = transport.get(sim.image_url(4, 4), timeout=(2.0, 2.0))
    assert response.status_code == 200
    response.close()
    (request,) = sim.requests
    assert "authorization" not in request.headers
    with pytest.raises(APIConnectionError, match="Download"):
        transport.get(f"http://127.0.0.1:{free_port()}/x.png", timeout=(1.0, 1.0))
