"""Shared fixtures: a live simulator on 127.0.0.1 and a client pointed at it.

Everything runs over real HTTP on loopback (pytest-socket allows only 127.0.0.1/localhost/::1);
nothing mocks ``requests``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

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


# -- PostgreSQL ---------------------------------------------------------------------------------

#: Where the PostgreSQL tests find a server (a database they may create schemas in).
POSTGRES_URL = os.environ.get(
    "NANOBANANA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_PG_STATE: dict[str, str | None] = {}


def _postgres_problem() -> str | None:
    """``None`` when the test server answers, else why not (checked once per session)."""
    if "problem" not in _PG_STATE:
        try:
            import psycopg

            with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            _PG_STATE["problem"] = None
        except Exception as exc:  # ImportError included: say why, once
            _PG_STATE["problem"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return _PG_STATE["problem"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL tests need the server: under ``CI=true`` an unreachable one fails the run;
    elsewhere they are skipped and one loud line (terminal summary) says how to run them."""
    wanted = [item for item in items if item.get_closest_marker("postgres") is not None]
    if not wanted or _postgres_problem() is None:
        return
    if os.environ.get("CI") == "true":
        pytest.exit(
            f"PostgreSQL unreachable at {POSTGRES_URL} under CI=true: {_PG_STATE['problem']}",
            returncode=1,
        )
    skip = pytest.mark.skip(reason=f"PostgreSQL unreachable at {POSTGRES_URL}")
    for item in wanted:
        item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _PG_STATE.get("problem"):
        terminalreporter.write_line(
            f"!!! PostgreSQL tests SKIPPED: {POSTGRES_URL} unreachable ({_PG_STATE['problem']}). "
            "Run them: start PostgreSQL (`pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start`) or set NANOBANANA_TEST_POSTGRES_URL !!!",
            red=True,
            bold=True,
        )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema of its own (dropped after)."""
    import psycopg

    schema = f"nb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
