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


class _SimToolTests(ToolsIntegrationTests):
    """The standard suite for one tool on the module simulator, plus a check of what the simulator
    received after each test that invokes the tool.

    A subclass names its tool (``tool_constructor``, ``build_tool``) and the exact request bodies
    one standard invocation sends (``expected_requests``).
    """

    def build_tool(self, client: NanoBananaClient, sim: FakeNanoBananaServer) -> BaseTool:
        """The tool under test on ``client`` (may prepare state on ``sim`` first)."""
        raise NotImplementedError

    def expected_requests(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON bodies the simulator must receive per path, for one invocation."""
        raise NotImplementedError

    @pytest.fixture
    def tool(self, sim_client: NanoBananaClient, module_sim: FakeNanoBananaServer) -> BaseTool:
        tool = self.build_tool(sim_client, module_sim)
        module_sim.clear_requests()
        return tool

    @pytest.fixture(autouse=True)
    def _check_requests(
        self, request: pytest.FixtureRequest, tool: BaseTool, module_sim: FakeNanoBananaServer
    ) -> Iterator[None]:
        yield
        if not _invokes_tool(request):
            return
        for path, bodies in self.expected_requests().items():
            assert [r.json for r in module_sim.requests_to(path)] == bodies, path


class TestGenerateToolSim(_SimToolTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaGenerateTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a white siamese cat", "aspect_ratio": "2:3", "count": 2}

    def build_tool(self, client: NanoBananaClient, sim: FakeNanoBananaServer) -> BaseTool:
        return NanoBananaGenerateTool(client=client, include_image_blocks=True)

    def expected_requests(self) -> dict[str, list[dict[str, Any]]]:
        generate = {
            "action": "generate",
            "prompt": "a white siamese cat",
            "aspect_ratio": "2:3",
            "count": 2,
            "async": True,
        }
        return {IMAGES: [generate]}


class TestEditToolSim(_SimToolTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaEditTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "give the cat a small red bow tie", "image_urls": [self._image_url]}

    def build_tool(self, client: NanoBananaClient, sim: FakeNanoBananaServer) -> BaseTool:
        self._image_url = sim.image_url(832, 1248)
        return NanoBananaEditTool(client=client, include_image_blocks=True)

    def expected_requests(self) -> dict[str, list[dict[str, Any]]]:
        edit = {
            "action": "edit",
            "prompt": "give the cat a small red bow tie",
            "image_urls": [self._image_url],
            "async": True,
        }
        return {IMAGES: [edit]}


class TestTaskToolSim(_SimToolTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return NanoBananaTaskTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"task_id": self._task_id}

    def build_tool(self, client: NanoBananaClient, sim: FakeNanoBananaServer) -> BaseTool:
        self._task_id = client.generate("a lighthouse at dusk").task_id
        return NanoBananaTaskTool(client=client)

    def expected_requests(self) -> dict[str, list[dict[str, Any]]]:
        # A look-up never submits (never bills).
        return {IMAGES: [], TASKS: [{"action": "retrieve", "id": self._task_id}]}
