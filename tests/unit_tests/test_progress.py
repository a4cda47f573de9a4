"""``langchain_nanobanana.progress``: the event payload and ``ProgressBar``, fed through real runs.

Events reach the bar the way the tools and the Runnable send them: ``dispatch_custom_event`` /
``adispatch_custom_event`` inside a ``RunnableLambda`` invoked with ``config={"callbacks": [bar]}``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.runnables import RunnableLambda

from langchain_nanobanana.progress import (
    PROGRESS_EVENT,
    ProgressBar,
    ProgressPayload,
    progress_event,
)

needs_tqdm = pytest.mark.skipif(
    importlib.util.find_spec("tqdm") is None, reason="tqdm is in the test and progress extras"
)

P, S, F = "pending", "succeeded", "failed"

#: (elapsed seconds, {task_id: status}) per poll round of one run.
Rounds = Sequence[tuple[float, dict[str, str]]]

THREE_TASKS: Rounds = [
    (2.0, {"a": P, "b": P, "c": P}),
    (4.0, {"a": P, "b": P, "c": P}),  # nothing changed: no line
    (6.0, {"a": S, "b": P, "c": P}),
    (8.04, {"a": S, "b": F, "c": S}),
]
THREE_TASKS_LINES = [
    "nano-banana: 0/3 done, 3 pending, 2.0 s",
    "nano-banana: 1/3 done, 2 pending, 6.0 s",
    "nano-banana: 3/3 done (1 failed), 0 pending, 8.0 s",
]


def waiting_run(rounds: Rounds) -> RunnableLambda[Any, str]:
    """A run that dispatches one progress event per round, as a waiting tool does."""

    def wait(_: object) -> str:
        for number, (elapsed, statuses) in enumerate(rounds, start=1):
            dispatch_custom_event(PROGRESS_EVENT, progress_event(number, elapsed, statuses))
        return "done"

    return RunnableLambda(wait)


def async_waiting_run(rounds: Rounds) -> RunnableLambda[Any, str]:
    async def wait(_: object) -> str:
        for number, (elapsed, statuses) in enumerate(rounds, start=1):
            await adispatch_custom_event(PROGRESS_EVENT, progress_event(number, elapsed, statuses))
        return "done"

    return RunnableLambda(wait)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


# -- the payload ------------------------------------------------------------------------------


def test_progress_event_builds_the_documented_payload() -> None:
    statuses = {"t1": S, "t2": P, "t3": F, "t4": P}
    payload: ProgressPayload = progress_event(3, 8.123456, statuses)
    assert payload == {
        "round": 3,
        "elapsed": 8.123,
        "tasks": {"t1": S, "t2": P, "t3": F, "t4": P},
        "pending": 2,
        "succeeded": 1,
        "failed": 1,
    }
    assert list(payload["tasks"]) == ["t1", "t2", "t3", "t4"]
    statuses["t2"] = S  # the payload holds a copy
    assert payload["tasks"]["t2"] == P
    json.dumps(payload)  # plain JSON: astream_events and LangGraph custom streams carry it as is
    assert progress_event(0, 0, {}) == {
        "round": 0,
        "elapsed": 0.0,
        "tasks": {},
        "pending": 0,
        "succeeded": 0,
        "failed": 0,
    }


@pytest.mark.parametrize(
    ("round_", "elapsed", "statuses", "message"),
    [
        (1, 1.0, {"t1": "uncertain"}, "task 't1' has status 'uncertain'; allowed: pending, succ"),
        (-1, 1.0, {}, "round must be an int >= 0"),
        (True, 1.0, {}, "round must be an int >= 0"),
        (1, -0.5, {}, "elapsed must be a number of seconds >= 0"),
        (1, float("nan"), {}, "elapsed must be a number of seconds >= 0"),
    ],
)
def test_progress_event_refuses_what_the_payload_cannot_say(
    round_: Any, elapsed: float, statuses: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        progress_event(round_, elapsed, statuses)


# -- plain lines ------------------------------------------------------------------------------


def test_plain_lines_from_a_sync_run() -> None:
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=False) as bar:
        assert waiting_run(THREE_TASKS).invoke(None, config={"callbacks": [bar]}) == "done"
        assert not bar.uses_tqdm
        assert bar.tasks == {"a": S, "b": F, "c": S}
        assert bar.elapsed == 8.04
    assert lines(buffer) == THREE_TASKS_LINES


async def test_plain_lines_from_an_async_run() -> None:
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=False) as bar:
        result = await async_waiting_run(THREE_TASKS).ainvoke(None, config={"callbacks": [bar]})
    assert result == "done"
    assert lines(buffer) == THREE_TASKS_LINES


def test_a_heartbeat_line_while_nothing_changes_but_never_two_per_round() -> None:
    waiting = {"a": P}
    rounds = [(float(t), waiting) for t in range(0, 95, 5)] + [(95.0, {"a": S})]
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=False) as bar:
        waiting_run(rounds).invoke(None, config={"callbacks": [bar]})
    assert lines(buffer) == [
        "nano-banana: 0/1 done, 1 pending, 0.0 s",
        "nano-banana: 0/1 done, 1 pending, 30.0 s",
        "nano-banana: 0/1 done, 1 pending, 60.0 s",
        "nano-banana: 0/1 done, 1 pending, 90.0 s",
        "nano-banana: 1/1 done, 0 pending, 95.0 s",
    ]
    assert len(lines(buffer)) <= len(rounds)


def test_events_of_several_runs_add_up_by_task_id() -> None:
    """Two tools waiting in parallel (a batch here): one bar, the tasks of both, one total."""
    first: Rounds = [(1.0, {"a": P, "b": P}), (3.0, {"a": S, "b": P}), (5.0, {"a": S, "b": S})]
    second: Rounds = [(1.0, {"c": P}), (2.0, {"c": F})]
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=False, desc="images") as bar:

        def run_rounds(rounds: Rounds) -> str:
            return waiting_run(rounds).invoke(None)  # a child run: inherits the callbacks

        outputs = RunnableLambda(run_rounds).batch(
            [first, second], config={"callbacks": [bar], "max_concurrency": 1}
        )
    assert outputs == ["done", "done"]
    assert bar.tasks == {"a": S, "b": S, "c": F}
    assert lines(buffer) == [
        "images: 0/2 done, 2 pending, 1.0 s",
        "images: 1/2 done, 1 pending, 3.0 s",
        "images: 2/2 done, 0 pending, 5.0 s",
        "images: 2/3 done, 1 pending, 5.0 s",  # elapsed: the longest wait reported so far
        "images: 3/3 done (1 failed), 0 pending, 5.0 s",
    ]


def test_a_stale_pending_from_another_run_never_undoes_a_result() -> None:
    """Two runs waiting on the same task: the slower one's older view must not count it again."""
    bar = ProgressBar(file=io.StringIO(), use_tqdm=False)
    bar.update(progress_event(4, 9.0, {"a": S, "b": F}))
    bar.update(progress_event(1, 2.0, {"a": P, "b": P, "c": P}))
    assert bar.tasks == {"a": S, "b": F, "c": P}
    assert bar.elapsed == 9.0


def test_other_events_are_ignored_and_close_ends_the_bar() -> None:
    def other_events(_: object) -> None:
        dispatch_custom_event("something_else", {"tasks": {"x": S}})
        dispatch_custom_event(PROGRESS_EVENT, progress_event(1, 1.0, {"a": P}))

    buffer = io.StringIO()
    bar = ProgressBar(file=buffer, use_tqdm=False)
    RunnableLambda(other_events).invoke(None, config={"callbacks": [bar]})
    bar.close()
    bar.close()  # idempotent
    bar.update(progress_event(2, 2.0, {"a": S}))  # after close: ignored
    assert bar.tasks == {"a": P}
    assert lines(buffer) == ["nano-banana: 0/1 done, 1 pending, 1.0 s"]


def test_a_malformed_payload_is_an_error_but_does_not_break_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bar = ProgressBar(file=io.StringIO(), use_tqdm=False)
    with pytest.raises(ValueError, match="no 'tasks' mapping"):
        bar.update({"round": 1})
    with pytest.raises(ValueError, match="'elapsed' must be seconds"):
        bar.update({"tasks": {}, "elapsed": "soon"})

    def bad_event(_: object) -> str:
        dispatch_custom_event(PROGRESS_EVENT, {"round": 1})
        return "still done"

    result = RunnableLambda(bad_event).invoke(None, config={"callbacks": [bar]})
    assert result == "still done"
    assert "no 'tasks' mapping" in caplog.text  # LangChain logs a handler's error as a warning


def test_default_file_is_stderr_at_write_time(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar(use_tqdm=False)
    bar.update(progress_event(1, 0.5, {"a": P}))
    captured = capsys.readouterr()
    assert captured.err == "nano-banana: 0/1 done, 1 pending, 0.5 s\n"
    assert captured.out == ""


# -- tqdm -------------------------------------------------------------------------------------


@needs_tqdm
def test_tqdm_bar_from_a_sync_run() -> None:
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=True) as bar:
        waiting_run(THREE_TASKS).invoke(None, config={"callbacks": [bar]})
        assert bar.uses_tqdm
    frames = buffer.getvalue().split("\r")
    final = frames[-1]
    assert final.startswith("nano-banana: 100%")
    assert "3/3" in final
    assert "failed=1" in final and "waited=8.0s" in final
    assert final.endswith("\n")  # leave=True: the closed bar stays on screen
    assert any("1/3" in frame for frame in frames)


@needs_tqdm
async def test_tqdm_bar_from_an_async_run_whose_total_grows() -> None:
    """A second run's tasks join: the total grows (tqdm ``reset``), done counts stay right."""
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=True, leave=False) as bar:
        await async_waiting_run([(1.0, {"a": P}), (2.0, {"a": S})]).ainvoke(
            None, config={"callbacks": [bar]}
        )
        await async_waiting_run([(1.0, {"b": P, "c": P}), (4.0, {"b": S, "c": S})]).ainvoke(
            None, config={"callbacks": [bar]}
        )
        assert bar._bar.n == 3 and bar._bar.total == 3
    frames = [frame for frame in buffer.getvalue().split("\r") if frame.strip()]
    assert "3/3" in frames[-1]
    assert "1/3" in "".join(frames)


def test_use_tqdm_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # importing it now raises ImportError
    with pytest.raises(ImportError, match=r"langchain-nanobanana\[progress\]"):
        ProgressBar(use_tqdm=True)
    buffer = io.StringIO()
    bar = ProgressBar(file=buffer)  # auto: plain lines
    assert not bar.uses_tqdm
    bar.update(progress_event(1, 1.0, {"a": S}))
    assert lines(buffer) == ["nano-banana: 1/1 done, 0 pending, 1.0 s"]


@needs_tqdm
def test_auto_uses_tqdm_when_installed() -> None:
    assert ProgressBar().uses_tqdm


def test_importing_the_module_does_not_import_tqdm() -> None:
    probe = textwrap.dedent(
        """
        import sys
        import langchain_nanobanana.progress
        print(sorted(m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


# -- sharing the terminal with the user's own output -------------------------------------------


def visible_lines(stream: str) -> list[str]:
    """What a terminal shows: each line is what follows its last carriage return."""
    return [line.rsplit("\r", 1)[-1].rstrip() for line in stream.split("\n")]


@needs_tqdm
def test_prints_inside_the_block_never_share_a_line_with_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The quickstart's ``print`` while the bar runs, both on one terminal (here one buffer):
    before, ``...waited=1.0s]2 succeeded`` on one line; now the print is a line of its own."""
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stdout", terminal)
    with ProgressBar(file=terminal, use_tqdm=True) as bar:
        for number, (elapsed, statuses) in enumerate(THREE_TASKS, start=1):
            bar.update(progress_event(number, elapsed, statuses))
            print(f"round {number} printed", "in two parts")
        bar.write("written by bar.write")
        print("no newline yet", end="")
    assert sys.stdout is terminal  # restored
    shown = visible_lines(terminal.getvalue())
    for number in range(1, 5):
        assert f"round {number} printed in two parts" in shown
    assert "written by bar.write" in shown
    assert "no newline yet" in terminal.getvalue()
    for line in shown:
        if "printed" in line or "written" in line:
            assert "nano-banana" not in line and "task" not in line, line


@needs_tqdm
def test_log_lines_inside_the_block_never_share_a_line_with_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    handler = logging.StreamHandler(sys.stderr)  # a console handler, as basicConfig adds
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with ProgressBar(use_tqdm=True) as bar:
            for number, (elapsed, statuses) in enumerate(THREE_TASKS, start=1):
                bar.update(progress_event(number, elapsed, statuses))
                logging.getLogger("user.code").warning("log line %d", number)
    finally:
        root.removeHandler(handler)
    shown = visible_lines(terminal.getvalue())
    assert [line for line in shown if "log line" in line] == [f"log line {n}" for n in range(1, 5)]


def test_plain_lines_are_each_written_whole() -> None:
    """Without tqdm each progress line is one ``write`` call: no thread can cut into it."""
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    with ProgressBar(file=Recorder(), use_tqdm=False) as bar:
        waiting_run(THREE_TASKS).invoke(None, config={"callbacks": [bar]})
        bar.write("between", file=Recorder())
    assert writes == [line + "\n" for line in THREE_TASKS_LINES[:3]] + ["between\n"]


@needs_tqdm
def test_the_rate_is_tasks_per_second_of_real_time() -> None:
    """Three tasks done when the first event arrives after 12 s of waiting: about 0.25 task/s,
    not "47482.69task/s" (tqdm's clock used to start at that first event)."""
    buffer = io.StringIO()
    with ProgressBar(file=buffer, use_tqdm=True) as bar:
        bar.update(progress_event(1, 12.0, {"a": S, "b": S, "c": S}))
        assert bar._bar.format_dict["elapsed"] >= 12.0  # tqdm's clock: from when waiting began
        bar.update(progress_event(2, 13.0, {"a": S, "b": S, "c": S, "d": P}))  # total grows
        assert bar._bar.format_dict["elapsed"] >= 12.0  # reset() kept the clock
    final = buffer.getvalue().split("\r")[-1]
    match = re.search(r"([0-9.]+)(task/s|s/task)", final)
    assert match, final
    per_second = float(match[1]) if match[2] == "task/s" else 1 / float(match[1])
    assert 0 < per_second <= 0.25  # 3 tasks in >= 13 s


def test_the_progress_extra_brings_what_tqdm_auto_needs_in_jupyter() -> None:
    """``tqdm.auto`` in a notebook needs ``ipywidgets``; without it: "IProgress not found"."""
    from importlib.metadata import requires

    extra = [r for r in requires("langchain-nanobanana") or [] if 'extra == "progress"' in r]
    names = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in extra}
    assert {"tqdm", "ipywidgets"} <= names
