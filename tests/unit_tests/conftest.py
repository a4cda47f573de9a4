"""Unit tests check pure logic: every socket is disabled here (pytest-socket), loopback included.

Simulator-backed tests live in ``tests/sim_tests``; the real API in ``tests/integration_tests``.
"""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_sockets() -> object:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
