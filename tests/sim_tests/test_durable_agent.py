"""LangGraph durable execution: an agent graph (``create_agent`` + our tools) checkpointed by
``PostgresSaver``, the PostgreSQL journal in the same database. The worker is SIGKILLed while
the image tool waits for its task; a NEW process resumes the thread from its checkpoint; the
same ``tool_call_id`` returns the same task's image, and the simulator saw ONE submission.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.helpers import eventually

WORKER = Path(__file__).with_name("durable_worker.py")
SUBMIT = "/nano-banana/images"
TASKS = "/nano-banana/tasks"
ROOT = Path(__file__).resolve().parents[2]


def _worker(mode: str, sim: FakeNanoBananaServer, pg_url: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, sim.base_url, pg_url, "thread-7", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_killed_agent_resumes_from_its_checkpoint_and_pays_once(
    pg_url: str, tmp_path: Path
) -> None:
    with FakeNanoBananaServer(token="sim-token", task_duration=600.0) as sim:
        first = _worker("start", sim, pg_url, tmp_path / "first.json")
        try:
            # the tool submitted and is now waiting: its polls reach the simulator
            assert eventually(lambda: len(sim.requests_to(TASKS)) >= 2, within=60)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        assert len(sim.requests_to(SUBMIT)) == 1
        polls = len(sim.requests_to(TASKS))

        second = _worker("resume", sim, pg_url, tmp_path / "second.json")
        try:
            assert eventually(lambda: len(sim.requests_to(TASKS)) > polls, within=60), (
                second.stdout.read() if second.poll() is not None and second.stdout else ""
            )
            task_ids = list(sim.tasks)
            for task_id in task_ids:
                sim.complete_task(task_id)
            output, _ = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
        assert second.returncode == 0, output
        report = json.loads((tmp_path / "second.json").read_text())
        assert len(sim.requests_to(SUBMIT)) == 1  # one task billed
    (tool,) = report["tools"]
    assert tool["tool_call_id"] == "call-1"
    assert tool["task_id"] in task_ids and tool["urls"]
    assert report["last"] == "Here is your cat."
