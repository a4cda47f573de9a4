"""``_http``: base URL checks, the two retry policies on one Session, and ``post_json``.

``post_json`` is exercised over real loopback HTTP against the simulator's injected faults.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from urllib3.util.retry import Retry

from langchain_nanobanana import (
    APIConnectionError,
    NanoBananaAPIError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
)
from langchain_nanobanana._http import (
    SUBMIT_PATH,
    TASKS_PATH,
    build_session,
    check_base_url,
    is_loopback_host,
    mount_policies,
    post_json,
)
from langchain_nanobanana.testing import FakeNanoBananaServer

GENERATE = {"action": "generate", "prompt": "x", "async": True}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
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


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api.acedata.cloud", "https://api.acedata.cloud"),
        ("https://api.acedata.cloud/", "https://api.acedata.cloud"),
        ("  https://api.xhuoapi.ai/v1/  ", "https://api.xhuoapi.ai/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ],
)
def test_check_base_url_normalises(url: str, normalised: str) -> None:
    assert check_base_url(url) == normalised


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.acedata.cloud", "clear text"),
        ("http://8.8.8.8/v1", "clear text"),
        ("ws://api.acedata.cloud", "absolute https"),
        ("/v1", "absolute https"),
        ("https:///v1", "absolute https"),
        ("https://api.acedata.cloud/?token=x", "query"),
        ("https://api.acedata.cloud/#frag", "fragment"),
    ],
)
def test_check_base_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_base_url(url)


# -- retry policies ---------------------------------------------------------------------------
def _retry(session: requests.Session, url: str) -> Retry:
    retry = session.get_adapter(url).max_retries  # type: ignore[attr-defined]
    assert isinstance(retry, Retry)
    return retry


@pytest.mark.parametrize("base", ["https://api.acedata.cloud", "https://api.xhuoapi.ai/v1"])
def test_each_path_gets_its_own_policy(base: str) -> None:
    session = build_session(base, max_retries=3)
    submit = _retry(session, base + SUBMIT_PATH)
    tasks = _retry(session, base + TASKS_PATH)
    other = _retry(session, "https://platform.cdn.acedata.cloud/nanobanana/x.png")
    # The billable POST: only connect failures and 429, never a read failure nor a 5xx.
    assert submit.total == 3 and submit.connect == 3 and submit.status == 3
    assert submit.read is False and submit.other == 0
    assert submit.status_forcelist == {429}
    assert submit.allowed_methods == {"POST"}
    assert set(submit.RETRY_AFTER_STATUS_CODES) == {429}
    assert submit.retry_after_max == 60 and submit.raise_on_status is False
    # The idempotent read: broad retries.
    assert tasks.read == 3 and tasks.status_forcelist == {429, 500, 502, 503, 504}
    assert "POST" in (tasks.allowed_methods or ())
    assert other.status_forcelist == tasks.status_forcelist and other is not submit
    assert "authorization" not in {k.lower() for k in session.headers}
    session.close()


def test_policies_follow_the_base_url_path_only() -> None:
    session = mount_policies(requests.Session(), "https://api.xhuoapi.ai/v1", max_retries=2)
    # Without the /v1 prefix the submit policy does not apply (falls back to the read policy).
    assert _retry(session, "https://api.xhuoapi.ai/v1" + SUBMIT_PATH).read is False
    assert _retry(session, "https://api.xhuoapi.ai" + SUBMIT_PATH).read == 2
    session.close()


# -- post_json over HTTP ------------------------------------------------------------------------
@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _post(
    sim: FakeNanoBananaServer,
    session: requests.Session,
    path: str,
    payload: dict[str, object],
    *,
    max_retries: int = 0,
    read_timeout: float = 5.0,
) -> dict[str, object]:
    mount_policies(session, sim.base_url, max_retries=max_retries, backoff_factor=0.01)
    return post_json(
        session,
        sim.base_url + path,
        payload,
        headers={"authorization": f"Bearer {sim.token}", "content-type": "application/json"},
        timeout=(2.0, read_timeout),
        billable=path == SUBMIT_PATH,
    )


def test_post_json_success(sim: FakeNanoBananaServer, session: requests.Session) -> None:
    data = _post(sim, session, SUBMIT_PATH, GENERATE)
    assert data["success"] is True and data["task_id"] in sim.tasks
    (request,) = sim.requests
    assert request.json == GENERATE and request.headers["authorization"] == f"Bearer {sim.token}"
    assert "authorization" not in session.headers


def test_submission_retried_on_429_only(
    sim: FakeNanoBananaServer, session: requests.Session
) -> None:
    sim.inject_fault("429", path=SUBMIT_PATH, retry_after="0")
    assert _post(sim, session, SUBMIT_PATH, GENERATE, max_retries=1)["success"] is True
    assert [r.fault for r in sim.requests_to(SUBMIT_PATH)] == ["429", None]
    assert len(sim.tasks) == 1


def test_submission_429_exhausted(sim: FakeNanoBananaServer, session: requests.Session) -> None:
    sim.inject_fault("429", path=SUBMIT_PATH, retry_after="0", count=2)
    with pytest.raises(RateLimitError) as info:
        _post(sim, session, SUBMIT_PATH, GENERATE, max_retries=1)
    assert info.value.retry_after == 0.0 and info.value.trace_id
    assert len(sim.requests_to(SUBMIT_PATH)) == 2 and sim.tasks == {}


@pytest.mark.parametrize("fault", ["500", "502", "503"])
def test_submission_5xx_never_retried(
    sim: FakeNanoBananaServer, session: requests.Session, fault: str
) -> None:
    sim.inject_fault(fault, path=SUBMIT_PATH, count=3)
    with pytest.raises(ServerError):
        _post(sim, session, SUBMIT_PATH, GENERATE, max_retries=2)
    assert len(sim.requests_to(SUBMIT_PATH)) == 1


def test_submission_dropped_is_uncertain(
    sim: FakeNanoBananaServer, session: requests.Session
) -> None:
    sim.inject_fault("drop", path=SUBMIT_PATH)
    with pytest.raises(SubmissionUncertainError) as info:
        _post(sim, session, SUBMIT_PATH, GENERATE, max_retries=2)
    assert "do not resubmit" in str(info.value)
    assert len(sim.requests_to(SUBMIT_PATH)) == 1 and len(sim.tasks) == 1  # it ran


def test_submission_read_timeout_is_uncertain(
    sim: FakeNanoBananaServer, session: requests.Session
) -> None:
    sim.inject_fault("timeout", path=SUBMIT_PATH, retry_after="0.5")
    with pytest.raises(SubmissionUncertainError, match="ReadTimeout"):
        _post(sim, session, SUBMIT_PATH, GENERATE, max_retries=2, read_timeout=0.1)
    assert len(sim.requests_to(SUBMIT_PATH)) == 1


def test_task_read_retried_on_drop_and_5xx(
    sim: FakeNanoBananaServer, session: requests.Session
) -> None:
    task_id = str(_post(sim, session, SUBMIT_PATH, GENERATE)["task_id"])
    sim.inject_fault("drop", path=TASKS_PATH)
    sim.inject_fault("503", path=TASKS_PATH)
    record = _post(sim, session, TASKS_PATH, {"action": "retrieve", "id": task_id}, max_retries=2)
    assert record["id"] == task_id
    assert [r.fault for r in sim.requests_to(TASKS_PATH)] == ["drop", "503", None]


def test_truncated_answer(sim: FakeNanoBananaServer, session: requests.Session) -> None:
    sim.inject_fault("truncated", path=SUBMIT_PATH)
    with pytest.raises(NanoBananaAPIError, match="Truncated") as info:
        _post(sim, session, SUBMIT_PATH, GENERATE)
    assert "look the task up" in str(info.value)  # billable: do not resubmit blindly


def test_malformed_answer(sim: FakeNanoBananaServer, session: requests.Session) -> None:
    sim.inject_fault("malformed", path=SUBMIT_PATH)
    with pytest.raises(NanoBananaAPIError, match="not a JSON object") as info:
        _post(sim, session, SUBMIT_PATH, GENERATE)
    assert info.value.status_code == 200 and info.value.body == '{"success": tru'


def test_connection_refused_means_nothing_sent(session: requests.Session) -> None:
    with FakeNanoBananaServer() as gone:
        url = gone.base_url
    mount_policies(session, url, max_retries=0)
    with pytest.raises(APIConnectionError, match="nothing was sent"):
        post_json(
            session,
            url + SUBMIT_PATH,
            GENERATE,
            headers={},
            timeout=(1.0, 1.0),
            billable=True,
        )
