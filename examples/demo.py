"""``make demo``: the main job of langchain-nanobanana, end to end, on real input.

What it shows:

(a) An LCEL chain: a ``PromptTemplate`` built from the vendor's own example prompt (the elderly
    Japanese ceramicist portrait of the Nano Banana Images API Integration Guide,
    https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e; its two variables
    default to the guide's words, so the final prompt is the vendor's text verbatim) piped into
    ``NanoBananaImageGenerator`` with ``aspect_ratio="2:3"``. Each poll round prints the
    ``nano_banana_progress`` custom event.
(b) An agent from ``langchain.agents.create_agent`` with the Nano Banana toolkit. Its chat model
    is a scripted tool-calling fake that calls ``nano_banana_generate`` ("a white siamese cat"),
    then ``nano_banana_edit`` on the image it got back ("give the cat a small red bow tie"), then
    answers; or a real chat model when ``NANOBANANA_DEMO_CHAT_MODEL`` names one (for example
    ``openai:gpt-4.1-mini``, loaded with ``init_chat_model``; its provider package and key needed).
(c) Every image (taken from the tool messages' ``artifact``) is saved under ``./out/`` (``--out``)
    and listed in a table: step, task_id, trace_id, file, width x height. Each file's pixel ratio
    is checked against what was asked (2:3 for the chain; an edit keeps its input image's ratio).

Backend: the real API (``https://api.acedata.cloud`` or ``$ACEDATACLOUD_API_BASE_URL``) when
``ACEDATACLOUD_API_TOKEN`` is set, else the built-in simulator on 127.0.0.1 (and it says so).

Exit codes: 0 success; 1 an API error (one line, no traceback); 2 a missing or misshapen image.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import PromptTemplate

from langchain_nanobanana import (
    ASPECT_RATIOS,
    ImageResult,
    NanoBananaClient,
    NanoBananaError,
    NanoBananaImageGenerator,
    NanoBananaToolkit,
)
from langchain_nanobanana.client import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from langchain_nanobanana.progress import ProgressBar
from langchain_nanobanana.testing import FakeNanoBananaServer
from langchain_nanobanana.testing.chat import ScriptedChatModel, last_image_urls, tool_call

CHAT_MODEL_ENV = "NANOBANANA_DEMO_CHAT_MODEL"
#: The Integration Guide's example prompt with two of its phrases as variables.
PORTRAIT_TEMPLATE = (
    "A photorealistic close-up portrait of {subject} with deep, sun-etched wrinkles and a warm, "
    "knowing smile. He is carefully inspecting a freshly glazed tea bowl. The setting is his "
    "rustic, sun-drenched workshop. The scene is illuminated by {lighting} streaming through a "
    "window, highlighting the fine texture of the clay. Captured with an 85mm portrait lens, "
    "resulting in a soft, blurred background (bokeh). The overall mood is serene and masterful. "
    "Vertical portrait orientation."
)
#: The guide's own words: with these the template renders the vendor's prompt verbatim.
PORTRAIT_DEFAULTS = {
    "subject": "an elderly Japanese ceramicist",
    "lighting": "soft, golden hour light",
}
CHAIN_RATIO = "2:3"
CAT_PROMPT = "a white siamese cat"
BOW_TIE_PROMPT = "give the cat a small red bow tie"
AGENT_TASK = f"Generate an image of {CAT_PROMPT}, then edit that image: {BOW_TIE_PROMPT}."
RATIO_TOLERANCE = 0.04  # relative; the API's 1K pixel sizes are within 3% of their nominal ratio


class Row(NamedTuple):
    """One saved image: the step that made it, its ids, file, pixel size and the asked ratio."""

    step: str
    task_id: str
    trace_id: str
    path: Path
    size: tuple[int, int]
    asked: str | None  # "2:3", "1:1", ...; None when unknown (an edit of an image not seen here)


def progress_bar() -> ProgressBar:
    """The package's ``ProgressBar`` on stdout: a tqdm bar in a terminal (with the ``progress``
    extra), plain lines otherwise (one per change: ``0/1 done, 1 pending, 0.5 s``).
    """
    return ProgressBar(
        file=sys.stdout, desc="    polling", use_tqdm=None if sys.stdout.isatty() else False
    )


def scripted_model() -> ScriptedChatModel:
    """The fake agent model: generate, edit the image it got back, answer with the edited URL."""

    def edit(messages: list[BaseMessage]) -> AIMessage:
        args = {"prompt": BOW_TIE_PROMPT, "image_urls": last_image_urls(messages)}
        return tool_call("nano_banana_edit", args, id="call-edit")

    def answer(messages: list[BaseMessage]) -> AIMessage:
        return AIMessage(f"Here is the cat with its red bow tie: {last_image_urls(messages)[0]}")

    generate = tool_call("nano_banana_generate", {"prompt": CAT_PROMPT}, id="call-generate")
    return ScriptedChatModel(steps=[generate, edit, answer])


def chat_model() -> BaseChatModel:
    """A real chat model when ``$NANOBANANA_DEMO_CHAT_MODEL`` names one that loads, else the
    scripted fake (with a printed note saying why).
    """
    spec = os.environ.get(CHAT_MODEL_ENV, "").strip()
    if not spec:
        print(f"    chat model: scripted tool-calling fake (set {CHAT_MODEL_ENV} for a real one)")
        return scripted_model()
    from langchain.chat_models import init_chat_model

    try:
        model = init_chat_model(spec)
    except Exception as exc:  # provider package missing, unknown provider, no API key, ...
        print(f"    chat model: cannot load {spec!r} ({type(exc).__name__}: {short(exc, 120)})")
        print("    chat model: using the scripted tool-calling fake instead")
        return scripted_model()
    if not isinstance(model, BaseChatModel):
        raise SystemExit(f"{CHAT_MODEL_ENV}={spec!r} did not give a chat model")
    print(f"    chat model: {spec}")
    return model


def short(text: object, limit: int = 100) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def run_chain(client: NanoBananaClient) -> ImageResult:
    """(a) ``PromptTemplate | NanoBananaImageGenerator(aspect_ratio="2:3")``."""
    prompt = PromptTemplate.from_template(PORTRAIT_TEMPLATE).partial(**PORTRAIT_DEFAULTS)
    chain = prompt | NanoBananaImageGenerator(client=client, aspect_ratio=CHAIN_RATIO)
    print(
        f"\n(a) LCEL chain: PromptTemplate | NanoBananaImageGenerator(aspect_ratio={CHAIN_RATIO!r})"
    )
    print(f"    prompt (the vendor's example): {prompt.format()}")
    with progress_bar() as bar:
        result = chain.invoke({}, config={"callbacks": [bar]})
    print(f"    -> {result.status}: {', '.join(result.urls)}")
    return result


def run_agent(client: NanoBananaClient) -> list[tuple[ImageResult, dict[str, Any]]]:
    """(b) The agent; returns each image tool's artifact with the arguments of its call."""
    print("\n(b) Agent: create_agent(model, tools=NanoBananaToolkit(client=...).get_tools())")
    agent = create_agent(chat_model(), tools=NanoBananaToolkit(client=client).get_tools())
    print(f"    user: {AGENT_TASK}")
    calls: dict[str, dict[str, Any]] = {}
    artifacts: list[tuple[ImageResult, dict[str, Any]]] = []
    for update in agent.stream({"messages": [HumanMessage(AGENT_TASK)]}, stream_mode="updates"):
        for node in update.values():
            for message in (node or {}).get("messages", []):
                if isinstance(message, AIMessage):
                    for call in message.tool_calls:
                        calls[call["id"] or ""] = dict(call["args"])
                        print(f"    model -> {call['name']}({short(call['args'], 90)})")
                    if not message.tool_calls:
                        print(f"    model: {short(message.text)}")
                elif isinstance(message, ToolMessage):
                    print(f"    {message.name} [{message.status}]: {short(message.content)}")
                    if isinstance(message.artifact, ImageResult) and message.artifact.images:
                        artifacts.append((message.artifact, calls.get(message.tool_call_id, {})))
    return artifacts


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a PNG (IHDR) or JPEG (first SOFn marker); ``None`` otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:3] != b"\xff\xd8\xff":
        return None
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD9:  # standalone markers: no length
            i += 2
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        else:
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def ratio(text: str) -> float:
    width, height = (int(part) for part in text.split(":"))
    return width / height


def nearest_ratio(size: tuple[int, int]) -> str:
    """The documented aspect ratio closest to ``size`` (the ratio an edit of it keeps)."""
    return min(ASPECT_RATIOS, key=lambda r: abs(size[0] / max(size[1], 1) - ratio(r)))


def shape_ok(row: Row) -> bool:
    width, height = row.size
    if row.asked is None:
        return width > 0 and height > 0
    return height > 0 and abs(width / height / ratio(row.asked) - 1) <= RATIO_TOLERANCE


def save(
    step: str, result: ImageResult, asked: str | None, out: Path, client: NanoBananaClient
) -> list[Row]:
    """Download every image of ``result`` into ``out``; read each file's pixel size."""
    rows = []
    for path in result.download(out, client=client):
        size = image_size(path.read_bytes()) or (0, 0)
        rows.append(Row(step, result.task_id or "-", result.trace_id or "-", path, size, asked))
    return rows


def run(client: NanoBananaClient, out: Path) -> list[Row]:
    """(a), (b) and the downloads of (c); one row per saved image."""
    chain_result = run_chain(client)
    rows = save("chain", chain_result, CHAIN_RATIO, out, client)
    sizes = {url: row.size for url, row in zip(chain_result.urls, rows, strict=True)}
    for result, args in run_agent(client):
        if "image_urls" in args:  # an edit: its first input image decides the shape (API reference)
            source = sizes.get(args["image_urls"][0])
            step, asked = "agent edit", nearest_ratio(source) if source else None
        else:
            step, asked = "agent generate", str(args.get("aspect_ratio") or "1:1")
        new = save(step, result, asked, out, client)
        sizes.update({url: row.size for url, row in zip(result.urls, new, strict=True)})
        rows += new
    return rows


def report(rows: list[Row]) -> int:
    """(c) Print the table; return 0, or 2 with a message when an image is missing or misshapen."""
    head = ("step", "task_id", "trace_id", "file", "width x height", "asked", "ok")
    table = [head]
    for r in rows:
        size, ok = f"{r.size[0]} x {r.size[1]}", "yes" if shape_ok(r) else "NO"
        table.append((r.step, r.task_id, r.trace_id, str(r.path), size, r.asked or "?", ok))
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    print("\n(c) Saved images")
    for n, line in enumerate(table):
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print(("    " + "  ".join(cells)).rstrip())
        if n == 0:
            print("    " + "  ".join("-" * w for w in widths))
    problems = [
        f"{r.path} is {r.size[0]}x{r.size[1]}, expected aspect ratio {r.asked}"
        for r in rows
        if not shape_ok(r)
    ]
    steps = {r.step for r in rows}
    problems += [
        f"no image from the {s}"
        for s in ("chain", "agent generate", "agent edit")
        if s not in steps
    ]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The langchain-nanobanana main job (make demo).")
    parser.add_argument("--out", default="out", help="directory for the images (default: ./out)")
    parser.add_argument(
        "--task-duration", type=float, default=1.0, help="simulator only: seconds per task"
    )
    args = parser.parse_args(argv)
    token = os.environ.get(ENV_TOKEN, "").strip()
    sim: FakeNanoBananaServer | None = None
    if token:
        client = NanoBananaClient(token, base_url=os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)
        print(f"Backend: Nano Banana API at {client.base_url}")
    else:
        sim_token = uuid.uuid4().hex  # the simulator's own token, explicitly given to the client
        sim = FakeNanoBananaServer(token=sim_token, task_duration=args.task_duration).start()
        client = NanoBananaClient(
            sim_token, base_url=sim.base_url, poll_interval=0.25, max_poll_interval=1.0
        )
        print(f"Backend: built-in simulator at {sim.base_url} (no {ENV_TOKEN} set)")
    try:
        with client:
            rows = run(client, Path(args.out))
    except NanoBananaError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if sim is not None:
            sim.stop()
    return report(rows)


if __name__ == "__main__":
    sys.exit(main())
