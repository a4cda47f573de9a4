"""``langchain_tests`` standard integration tests (``ToolsIntegrationTests``) for the three tools,
against the loopback simulator (no token, no network beyond 127.0.0.1).

The standard suite invokes each tool with and without a ``ToolCall``, sync and async, and checks
that a ``content_and_artifact`` tool gives a ``ToolMessage`` whose content is a ``str`` or a list of
``str``/``dict`` blocks and whose artifact is set. The generate and edit suites run with
``include_image_blocks=True`` so the list-of-blocks form is the one checked; the task suite runs
with the default (text content). Each class also checks what the simulator received, so the
standard calls cannot pass without real requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests

from langchain_nanobanana import (
    NanoBananaClient,
    NanoBananaEditTool,
    NanoBananaGenerateTool,
    NanoBananaTaskTool,
)
from langchain_nanobanana.testing import FakeNanoBananaServer

TOKEN = "sim-standard-token-3b1d"
IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


@pytest.fixture(scope="module")
def module_sim() -> Iterator[FakeNanoBananaServer]:
    """One simulator for the module; tasks finish at once (task_duration 0)."""
    with FakeNanoBananaServer(token=TOKEN, task_duration=0.0) as server:
        yield server


@pytest.fixture(scope="module")
def sim_client(module_sim: FakeNanoBananaServer) -> Iterator[NanoBananaClient]:
    """A poll-mode client on the module simulator with fast polling."""
    with NanoBananaClient(
        TOKEN, base_url=module_sim.base_url, poll_interval=0.02, max_poll_interval=0.1
    ) as client:
        yield client


def _invokes_tool(request: pytest.FixtureRequest) -> bool:
    """Every standard test here invokes the tool once, except the meta-test on overrides."""
    return not request.node.name.startswith("test_no_overrides")


class TestGenerateToolSim(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaGenerateTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a white siamese cat", "aspect_ratio": "2:3", "count": 2}

    @pytest.fixture
    def tool(self, sim_client: NanoBananaClient, module_sim: FakeNanoBananaServer) -> BaseTool:
        module_sim.clear_requests()
        return NanoBananaGenerateTool(client=sim_client, include_image_blocks=True)

    @pytest.fixture(autouse=True)
    def _check_requests(
        self, request: pytest.FixtureRequest, tool: BaseTool, module_sim: FakeNanoBananaServer
    ) -> Iterator[None]:
        yield
        if not _invokes_tool(request):
            return
        bodies = [r.json for r in module_sim.requests_to(IMAGES)]
        assert bodies == [
            {
                "action": "generate",
                "prompt": "a white siamese cat",
                "aspect_ratio": "2:3",
                "count": 2,
                "async": True,
            }
        ]


class TestEditToolSim(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaEditTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "give the cat a small red bow tie", "image_urls": [self._image_url]}

    @pytest.fixture
    def tool(self, sim_client: NanoBananaClient, module_sim: FakeNanoBananaServer) -> BaseTool:
        self._image_url = module_sim.image_url(832, 1248)
        module_sim.clear_requests()
        return NanoBananaEditTool(client=sim_client, include_image_blocks=True)

    @pytest.fixture(autouse=True)
    def _check_requests(
        self, request: pytest.FixtureRequest, tool: BaseTool, module_sim: FakeNanoBananaServer
    ) -> Iterator[None]:
        yield
        if not _invokes_tool(request):
            return
        bodies = [r.json for r in module_sim.requests_to(IMAGES)]
        assert bodies == [
            {
                "action": "edit",
                "prompt": "give the cat a small red bow tie",
                "image_urls": [self._image_url],
                "async": True,
            }
        ]


class TestTaskToolSim(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaTaskTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"task_id": self._task_id}

    @pytest.fixture
    def tool(self, sim_client: NanoBananaClient, module_sim: FakeNanoBananaServer) -> BaseTool:
        self._task_id = sim_client.generate("a lighthouse at dusk").task_id
        module_sim.clear_requests()
        return NanoBananaTaskTool(client=sim_client)

    @pytest.fixture(autouse=True)
    def _check_requests(
        self, request: pytest.FixtureRequest, tool: BaseTool, module_sim: FakeNanoBananaServer
    ) -> Iterator[None]:
        yield
        if not _invokes_tool(request):
            return
        assert module_sim.requests_to(IMAGES) == []  # a look-up never submits (never bills)
        bodies = [r.json for r in module_sim.requests_to(TASKS)]
        assert bodies == [{"action": "retrieve", "id": self._task_id}]
