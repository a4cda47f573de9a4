"""Shared fixtures: a live simulator on 127.0.0.1 and a client pointed at it.

Everything runs over real HTTP on loopback (pytest-socket allows only 127.0.0.1/localhost/::1);
nothing mocks ``requests``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_nanobanana import NanoBananaClient
from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import SIM_TOKEN


@pytest.fixture(autouse=True)
def _no_real_api_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Unit tests never see a real token or base URL from the developer's shell."""
    if request.node.get_closest_marker("real_api") is None:
        monkeypatch.delenv("ACEDATACLOUD_API_TOKEN", raising=False)
        monkeypatch.delenv("ACEDATACLOUD_API_BASE_URL", raising=False)


@pytest.fixture
def sim() -> Iterator[FakeNanoBananaServer]:
    """A fresh simulator per test (tasks finish at once unless a test sets task_duration)."""
    with FakeNanoBananaServer(token=SIM_TOKEN) as server:
        yield server


@pytest.fixture
def client(sim: FakeNanoBananaServer) -> Iterator[NanoBananaClient]:
    """A poll-mode client on the simulator with fast polling (50 ms growing to 200 ms) and fast
    retry backoff (20 ms), so fault tests do not wait out production delays."""
    with NanoBananaClient(
        SIM_TOKEN,
        base_url=sim.base_url,
        poll_interval=0.05,
        max_poll_interval=0.2,
        max_wait=30.0,
        backoff_factor=0.02,
    ) as c:
        yield c
