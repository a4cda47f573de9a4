"""``ImageRequest`` validation and payloads, driven through the public client on the simulator.

Every validation rule (SPEC "Validation", seed 001) gets a test proving the error is raised before
any HTTP request (the simulator's request log stays empty) and that the message names the field,
the bad value and the allowed values.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import ValidationError

from langchain_nanobanana import (
    ASPECT_RATIOS,
    MODELS,
    RESOLUTIONS,
    ImageRequest,
    InvalidImageError,
    NanoBananaClient,
)
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.testing import FakeNanoBananaServer, padded_png, png_size
from tests.helpers import SIZES_1K

MIB10 = 10 * 2**20
HIRES = ["nano-banana-2", "nano-banana-pro", "nano-banana-2.1", "nano-banana-2:official"]
HIRES += ["nano-banana-pro:official"]
LOWRES = ["nano-banana", "nano-banana-2-lite", "nano-banana:official"]
LOWRES += ["nano-banana-2-lite:official"]
ALL_MODELS = "nano-banana, nano-banana-2, nano-banana-pro"


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def assert_mentions(error: BaseException, *parts: str) -> None:
    text = str(error)
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


@contextmanager
def refused_before_any_request(
    sim: FakeNanoBananaServer, *parts: str, error: type[Exception] = ValidationError
) -> Iterator[None]:
    """The block raises ``error`` whose message names every one of ``parts``, and ``sim`` has
    received no request at all."""
    with pytest.raises(error) as info:
        yield
    assert_mentions(info.value, *parts)
    assert sim.requests == []


# -- the tables -------------------------------------------------------------------------------
def test_tables_match_seed_001() -> None:
    assert ASPECT_RATIOS == ("1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4")
    assert RESOLUTIONS == ("1K", "2K", "4K")
    assert list(MODELS)[:3] == ["nano-banana", "nano-banana-2", "nano-banana-pro"]
    assert sorted(n for n, m in MODELS.items() if m.high_resolution) == sorted(HIRES)
    assert sorted(n for n, m in MODELS.items() if not m.high_resolution) == sorted(LOWRES)
    for name, info in MODELS.items():
        assert info.name == name
        assert info.description and info.gemini_model.startswith("gemini-") and info.source


# -- validation: every rule, before any request -----------------------------------------------
GENERATE_CASES: list[Any] = [
    pytest.param(
        "cat", {"model": "nano-banana-9"}, ["model", "'nano-banana-9'", ALL_MODELS], id="model"
    ),
    pytest.param("", {}, ["prompt", "''", "non-empty"], id="prompt-empty"),
    pytest.param(" \n\t ", {}, ["prompt", "' \\n\\t '", "non-empty"], id="prompt-blank"),
    pytest.param(
        "cat",
        {"aspect_ratio": "5:4"},
        ["aspect_ratio", "'5:4'", "1:1, 3:2, 2:3, 16:9, 9:16, 4:3, 3:4"],
        id="aspect_ratio",
    ),
    pytest.param(
        "cat", {"aspect_ratio": "1:1 "}, ["aspect_ratio", "'1:1 '"], id="aspect_ratio-space"
    ),
    pytest.param("cat", {"resolution": "8K"}, ["resolution", "'8K'", "1K, 2K, 4K"], id="res"),
    pytest.param("cat", {"resolution": "2k"}, ["resolution", "'2k'", "1K, 2K, 4K"], id="res-lc"),
    *[
        pytest.param(
            "cat",
            {"model": model, "resolution": res} if model else {"resolution": res},
            ["resolution", f"'{res}'", f"model='{model or 'nano-banana'}'", "nano-banana-pro"],
            id=f"{res}-with-{model or 'default-model'}",
        )
        for model, res in [
            (None, "2K"),
            ("nano-banana", "4K"),
            ("nano-banana-2-lite", "2K"),
            ("nano-banana:official", "4K"),
            ("nano-banana-2-lite:official", "2K"),
        ]
    ],
    *[
        pytest.param("cat", {"count": bad}, ["count", repr(bad), "1 to 4"], id=f"count-{bad!r}")
        for bad in (0, 5, -1, True, False, 1.5, 2.0, "2")
    ],
    *[
        pytest.param(
            "cat", {"callback_url": url}, ["callback_url", repr(url), "http"], id=f"callback-{n}"
        )
        for n, url in enumerate(
            [
                "/relative/cb",
                "cb.example.com/hook",
                "ftp://example.com/cb",
                "http:///cb",
                "https://",
                "javascript:alert(1)",
                "",
            ]
        )
    ],
]


@pytest.mark.parametrize(("prompt", "kwargs", "parts"), GENERATE_CASES)
def test_generate_rejects_before_any_request(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    prompt: str,
    kwargs: dict[str, Any],
    parts: list[str],
) -> None:
    with refused_before_any_request(sim, *parts, error=InvalidRequestError):
        client.generate(prompt, **kwargs)


@pytest.mark.parametrize(("prompt", "kwargs", "parts"), GENERATE_CASES[:4])
async def test_agenerate_rejects_before_any_request(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    prompt: str,
    kwargs: dict[str, Any],
    parts: list[str],
) -> None:
    with refused_before_any_request(sim, *parts, error=InvalidRequestError):
        await client.agenerate(prompt, **kwargs)


def test_edit_without_images(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.edit("make it blue", [])
    assert_mentions(info.value, "image_urls=[]", "action='edit'", "http(s) URL", "data:image/")
    with refused_before_any_request(sim, "image_urls=None", "action='edit'", "at least one"):
        client.submit(ImageRequest(action="edit", prompt="make it blue"))


def test_image_urls_with_generate(client: NanoBananaClient, sim: FakeNanoBananaServer) -> None:
    url = sim.image_url(8, 8)
    with refused_before_any_request(sim, "image_urls", "action='generate'", "action='edit'"):
        client.submit(ImageRequest(action="generate", prompt="cat", image_urls=[url]))


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("ftp://example.com/a.png", "unsupported URL scheme"),
        ("file:///etc/passwd", "unsupported URL scheme"),
        ("javascript:alert(1)", "unsupported URL scheme"),
        ("data:text/plain;base64,aGVsbG8=", "malformed data URI"),
        ("data:image/png;base64,not base64!", "not valid standard base64"),
        ("data:image/png;base64,aGVsbG8gd29ybGQh", "not a PNG, JPEG"),
        ("https:///no-host.png", "no host"),
    ],
)
def test_edit_rejects_bad_image(
    client: NanoBananaClient, sim: FakeNanoBananaServer, image: str, problem: str
) -> None:
    with refused_before_any_request(
        sim,
        "image_urls[1]",
        problem,
        image[:20],
        "http(s) URL",
        "data URI",
        error=InvalidImageError,
    ):
        client.edit("make it blue", [sim.image_url(8, 8), image])


@pytest.mark.parametrize(
    "image",
    ["ftp://example.com/a.png", "/tmp/local.png", "data:text/plain;base64,aGVsbG8=", "cat.png"],
)
def test_request_rejects_image_that_is_not_url_nor_data_uri(
    client: NanoBananaClient, sim: FakeNanoBananaServer, image: str
) -> None:
    # ImageRequest itself takes only http(s) URLs and data URIs: local paths are the client's job.
    with refused_before_any_request(sim, "image_urls[0]", image[:20], "http(s) URL", "data URI"):
        client.submit(ImageRequest(action="edit", prompt="x", image_urls=[image]))


def test_image_over_10_mib_rejected(
    client: NanoBananaClient, sim: FakeNanoBananaServer, tmp_path: Path
) -> None:
    too_big = padded_png(MIB10 + 1)
    assert len(too_big) == MIB10 + 1
    uri = png_data_uri(too_big)
    with pytest.raises(InvalidImageError) as info:
        client.edit("x", [uri])
    assert_mentions(info.value, "image_urls[0]", f"{MIB10 + 1} bytes", f"over {MIB10}", "10 MiB")
    assert "iVBOR" in str(info.value) and len(str(info.value)) < 400  # value cut, not 14 MB
    with pytest.raises(ValidationError) as vinfo:
        client.submit(ImageRequest(action="edit", prompt="x", image_urls=[uri]))
    assert_mentions(vinfo.value, "image_urls[0]", f"{MIB10 + 1} bytes", "10 MiB")
    with pytest.raises(InvalidImageError) as info:
        client.edit("x", too_big)
    assert_mentions(info.value, f"{MIB10 + 1} bytes", "10 MiB")
    big_file = tmp_path / "big.png"
    big_file.write_bytes(too_big)
    with refused_before_any_request(
        sim, "file is", f"{MIB10 + 1} bytes", "10 MiB", str(tmp_path)[:20], error=InvalidImageError
    ):
        client.edit("x", big_file)


def test_image_of_exactly_10_mib_accepted(sim: FakeNanoBananaServer) -> None:
    exact = padded_png(MIB10)
    assert len(exact) == MIB10
    uri = png_data_uri(exact)
    # Sync mode: one POST (a task record echoes the 14 MB request body on every poll).
    with NanoBananaClient(sim.token, base_url=sim.base_url, mode="sync") as client:
        result = client.edit("x", [uri])
    assert result.status == "succeeded"
    sent = sim.requests_to("/nano-banana/images")
    assert len(sent) == 1
    assert sent[0].json == {"action": "edit", "prompt": "x", "image_urls": [uri]}
    # The first image decides the output size: the simulator echoes the 16x16 padded PNG's size.
    (image,) = result.urls
    assert png_size(requests.get(image, timeout=5).content) == (16, 16)


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"aspect_ratio": "16:9", "resolution": "4K", "model": "nano-banana-2.1"}, (5376, 3072)),
        ({"aspect_ratio": "2:3", "resolution": "2K", "model": "nano-banana-pro"}, (1664, 2496)),
        ({"aspect_ratio": "16:9"}, (8, 8)),  # 1K: older models keep the first image's shape
        ({"resolution": "1K", "model": "nano-banana"}, (8, 8)),
    ],
)
def test_edit_sends_aspect_ratio_and_resolution(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    fields: dict[str, Any],
    size: tuple[int, int],
) -> None:
    """SPEC: ``aspect_ratio`` and ``resolution`` are accepted for both actions; an edit sends
    them as given (the vendor MCP server documents 4K edits with ``nano-banana-2.1``)."""
    source = sim.image_url(8, 8)
    result = client.edit("make it wide", [source], **fields)
    assert result.status == "succeeded"
    (body,) = [r.json for r in sim.requests_to("/nano-banana/images")]
    assert body == {
        "action": "edit",
        "prompt": "make it wide",
        "image_urls": [source],
        **fields,
        "async": True,
    }
    (path,) = result.download(tmp_path, client=client)
    assert png_size(path.read_bytes()) == size


def test_edit_request_accepts_both_fields(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    request = ImageRequest(
        action="edit",
        prompt="x",
        image_urls=[sim.image_url(8, 8)],
        aspect_ratio="9:16",
        resolution="2K",
        model="nano-banana-pro",
    )
    assert client.submit(request).status == "succeeded"
    assert sim.requests_to("/nano-banana/images")[0].json == request.to_payload(async_=True)


async def test_aedit_sends_aspect_ratio_and_resolution(
    client: NanoBananaClient, sim: FakeNanoBananaServer
) -> None:
    source = sim.image_url(8, 8)
    fields: dict[str, Any] = {
        "aspect_ratio": "16:9",
        "resolution": "4K",
        "model": "nano-banana-2.1",
    }
    assert (await client.aedit("wide", source, **fields)).status == "succeeded"
    body = sim.requests_to("/nano-banana/images")[0].json
    assert isinstance(body, dict)
    assert {k: body.get(k) for k in fields} == fields


@pytest.mark.parametrize("model", [None, *LOWRES])
@pytest.mark.parametrize("resolution", ["2K", "4K"])
def test_edit_high_resolution_needs_a_capable_model(
    client: NanoBananaClient, sim: FakeNanoBananaServer, model: str | None, resolution: str
) -> None:
    fields: dict[str, Any] = {"model": model} if model else {}
    with refused_before_any_request(
        sim,
        "resolution",
        f"'{resolution}'",
        f"model='{model or 'nano-banana'}'",
        "nano-banana-2.1",
        "nano-banana-pro",
        error=InvalidRequestError,
    ):
        client.edit(
            "x", [sim.image_url(8, 8)], aspect_ratio="16:9", resolution=resolution, **fields
        )


@pytest.mark.parametrize(
    ("declared", "found"), [("image/jpeg", "image/png"), ("image/gif", "image/png")]
)
def test_edit_refuses_data_uri_whose_type_differs_from_its_bytes(
    client: NanoBananaClient, sim: FakeNanoBananaServer, declared: str, found: str
) -> None:
    mislabelled = f"data:{declared};base64," + base64.b64encode(padded_png(64)).decode()
    with refused_before_any_request(sim, "image_urls[0]", declared, found, error=InvalidImageError):
        client.edit("x", [mislabelled])
    with refused_before_any_request(sim, "image_urls[0]", declared, found):
        client.submit(ImageRequest(action="edit", prompt="x", image_urls=[mislabelled]))


@pytest.mark.parametrize("action", ["draw", "Generate", "", None, "variation"])
def test_unknown_action(client: NanoBananaClient, sim: FakeNanoBananaServer, action: Any) -> None:
    with refused_before_any_request(sim, "action", repr(action), "generate, edit"):
        client.submit(ImageRequest(action=action, prompt="cat"))


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        ({"seed": 42}, "seed=42"),
        ({"async": True}, "async=True"),
        ({"n": 2}, "n=2"),
        ({"negative_prompt": "dogs"}, "negative_prompt='dogs'"),
    ],
)
def test_unknown_field(
    client: NanoBananaClient, sim: FakeNanoBananaServer, extra: dict[str, Any], shown: str
) -> None:
    with refused_before_any_request(sim, shown, "not allowed", "action, prompt, model, image_urls"):
        client.submit(ImageRequest(action="generate", prompt="cat", **extra))


def test_request_is_immutable() -> None:
    request = ImageRequest(action="generate", prompt="cat")
    with pytest.raises(ValidationError):
        request.count = 9  # type: ignore[misc]


# -- boundary values that must pass -------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_count_bounds_accepted(
    client: NanoBananaClient, sim: FakeNanoBananaServer, count: int
) -> None:
    result = client.generate("cats", count=count)
    assert len(result.urls) == count == len(set(result.urls))
    assert sim.requests_to("/nano-banana/images")[0].json["count"] == count  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "resolution", "ratio"),
    [("nano-banana-pro", "2K", "16:9"), ("nano-banana-2", "4K", "1:1")],
)
def test_high_resolution_accepted_and_sized(
    client: NanoBananaClient,
    sim: FakeNanoBananaServer,
    tmp_path: Path,
    model: str,
    resolution: str,
    ratio: str,
) -> None:
    result = client.generate("cat", model=model, resolution=resolution, aspect_ratio=ratio)
    scale = {"2K": 2, "4K": 4}[resolution]
    (path,) = result.download(tmp_path, client=client)
    width, height = SIZES_1K[ratio]
    assert png_size(path.read_bytes()) == (width * scale, height * scale)


@pytest.mark.parametrize("callback", ["https://example.com/hook", "http://127.0.0.1:9/cb?x=1"])
def test_callback_url_accepted(callback: str) -> None:
    assert ImageRequest(action="generate", prompt="c", callback_url=callback).callback_url


# -- to_payload -------------------------------------------------------------------------------
def test_payload_minimal() -> None:
    request = ImageRequest(action="generate", prompt="a cat")
    assert request.to_payload() == {"action": "generate", "prompt": "a cat"}
    assert request.to_payload(async_=True) == {
        "action": "generate",
        "prompt": "a cat",
        "async": True,
    }
    assert request.to_payload(async_=False) == {"action": "generate", "prompt": "a cat"}


def test_payload_full_has_only_set_fields_and_no_nulls() -> None:
    generate = ImageRequest(
        action="generate",
        prompt="a cat",
        model="nano-banana-pro",
        aspect_ratio="3:2",
        resolution="4K",
        count=4,
        callback_url="https://example.com/cb",
    )
    assert generate.to_payload() == {
        "action": "generate",
        "prompt": "a cat",
        "model": "nano-banana-pro",
        "aspect_ratio": "3:2",
        "resolution": "4K",
        "count": 4,
        "callback_url": "https://example.com/cb",
    }
    edit = ImageRequest(action="edit", prompt="blue", image_urls=["https://x.example/a.png"])
    assert edit.to_payload() == {
        "action": "edit",
        "prompt": "blue",
        "image_urls": ["https://x.example/a.png"],
    }
    for payload in (generate.to_payload(), edit.to_payload(async_=True)):
        assert "null" not in json.dumps(payload)
        assert set(payload) <= {*ImageRequest.model_fields, "async"}
    assert "async" not in generate.to_payload()


def test_payload_keeps_prompt_verbatim() -> None:
    prompt = "  a cat, «naïve» 🐱 \n second line "
    assert ImageRequest(action="generate", prompt=prompt).to_payload()["prompt"] == prompt


def test_repr_shortens_data_uris() -> None:
    uri = png_data_uri(padded_png(50_000))
    text = repr(ImageRequest(action="edit", prompt="x", image_urls=[uri]))
    assert "data:image/png;base64," in text and len(text) < 300


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[FakeNanoBananaServer]:
    with FakeNanoBananaServer() as server:
        yield server


@pytest.mark.parametrize("model", list(MODELS))
def test_simulator_accepts_every_capable_combination(
    shared_sim: FakeNanoBananaServer, model: str
) -> None:
    """Every aspect ratio x resolution the model supports: the simulator (which validates like
    the API) accepts the exact payload ``to_payload`` builds.
    """
    resolutions = RESOLUTIONS if MODELS[model].high_resolution else ("1K",)
    with NanoBananaClient(shared_sim.token, base_url=shared_sim.base_url, mode="sync") as sync:
        for resolution in resolutions:
            for ratio in ASPECT_RATIOS:
                request = ImageRequest(
                    action="generate",
                    prompt=f"{model} {ratio} {resolution}",
                    model=model,
                    aspect_ratio=ratio,
                    resolution=resolution,
                )
                shared_sim.clear_requests()
                result = sync.submit(request)
                assert result.status == "succeeded", (model, ratio, resolution)
                (sent,) = shared_sim.requests
                assert sent.json == request.to_payload()


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_1k_images_have_documented_size(
    client: NanoBananaClient, tmp_path: Path, ratio: str
) -> None:
    result = client.generate("a lighthouse", aspect_ratio=ratio)
    (path,) = result.download(tmp_path, client=client)
    assert png_size(path.read_bytes()) == SIZES_1K[ratio]
