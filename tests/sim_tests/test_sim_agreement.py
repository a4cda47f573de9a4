"""The simulator's validator and the package's ``ImageRequest`` accept and refuse the same bodies.

Generated bodies (valid and invalid: actions, prompts, models, aspect ratios, resolutions, counts,
image_urls forms, data URIs, callback URLs, unknown fields) go to
``langchain_nanobanana.testing._validate.validate_submission`` directly and to
``ImageRequest(**body)``; a sample also goes over HTTP. The one difference listed in
``docs/simulator.md`` is asserted explicitly: ``async`` is a wire field the simulator validates,
while ``ImageRequest`` has no such field (the package adds it with ``to_payload(async_=True)``).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from langchain_nanobanana.models import ASPECT_RATIOS, RESOLUTIONS, ImageRequest
from langchain_nanobanana.models import MODELS as PACKAGE_MODELS
from langchain_nanobanana.testing import FakeNanoBananaServer, make_png
from langchain_nanobanana.testing._validate import (
    ASPECT_SIZES,
    HIRES_MODELS,
    MODELS,
    RESOLUTION_SCALE,
    ApiError,
    validate_submission,
)
from tests.helpers import SIM_TOKEN

Body = dict[str, Any]


def simulator_accepts(body: Body) -> bool:
    try:
        validate_submission(body)
    except ApiError:
        return False
    return True


def package_accepts(body: Body) -> bool:
    fields = {k: v for k, v in body.items() if k != "async"}  # async: see the module docstring
    try:
        ImageRequest(**fields)
    except ValueError:  # pydantic's ValidationError and InvalidImageError are ValueErrors
        return False
    return True


# -- strategies ----------------------------------------------------------------------------------
IMAGE_BYTES = [
    make_png(3, 2, b"a"),
    b"\xff\xd8\xff\xe0" + bytes(12),  # JPEG
    b"GIF87a" + bytes(6),
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"BM" + bytes(12) + struct.pack("<I", 40) + bytes(8),  # BMP, BITMAPINFOHEADER
    b"BM" + bytes(12) + struct.pack("<I", 41) + bytes(8),  # not a known DIB header size
    b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1miaf",
    b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00mif1heic",  # HEIF by a compatible brand
    b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00heic",  # brand outside the box: not an image
    b"RIFF\x00\x00\x00\x00WAVEfmt ",  # RIFF, but audio
    b"\x89PNG\r\n\x1a",  # truncated signature
    b"plain text",
    b"",
]
DATA_HEADERS = [
    "data:image/png;base64,",
    "DATA:IMAGE/PNG;BASE64,",
    "data:image/jpeg;base64,",
    "data:image/svg+xml;base64,",
    "data:image/;base64,",
    "data:image/.png;base64,",
    "data:image/" + "x" * 41 + ";base64,",
    "data:image/" + "x" * 60 + ";base64,",
    "data:text/plain;base64,",
    "data:image/png,",
    "data:image/png;charset=utf-8;base64,",
    *(f"data:image/{kind};base64," for kind in ("gif", "webp", "bmp", "avif", "heif", "heic")),
    "data:image/jpg;base64,",
    "data:image/x-ms-bmp;base64,",
]
URLS = [
    "https://cdn.example.com/a.png",
    "http://x.test/a.png",
    "HTTP://X.TEST/A.PNG",
    "https://[::1]:8080/a.png",
    "http://user@x.test/a.png",
    "ftp://x.test/a.png",
    "https:///a.png",
    "http://:80/a.png",
    "http://x.test:99999/a.png",
    "http://[::1/a.png",
    "http://x .test/a.png",
    "https://x.test/a b.png",
    "https://x.test/\t",
    " https://x.test/a.png",
    "//x.test/a.png",
    "x.test/a.png",
    "http:/x.test/a.png",
    "",
]
CALLBACKS = [
    "https://hooks.example.com/cb",
    "http://127.0.0.1:9/cb",
    "HTTPS://X.TEST/CB",
    "http://x.test:99999/cb",
    "http://a..b/cb",
    " https://x.test/cb",
    "https://x.test/c\tb",
    "http://exa mple.test/cb",
    "/cb",
    "ftp://x.test/cb",
    "http://[::1/cb",
    "https://",
    "http:///cb",
    "mailto:a@b.test",
    "",
]


CORRUPTIONS = ("", "strip", "extra", "space", "bad", "tail")


def make_data_uri(header: str, data: bytes, corrupt: str) -> str:
    """``header`` + base64 of ``data``, spoiled as ``corrupt`` says (``""``: intact)."""
    text = base64.b64encode(data).decode()
    if corrupt == "strip":
        text = text.rstrip("=")
    elif corrupt == "extra":
        text += "="
    elif corrupt == "space" and text:
        text = text[:4] + " " + text[4:]
    elif corrupt == "bad":
        text = "@" + text
    elif corrupt == "tail":
        text += "QQ=="
    return header + text


@st.composite
def data_uris(draw: st.DrawFn) -> str:
    return make_data_uri(
        draw(st.sampled_from(DATA_HEADERS[:4]) | st.sampled_from(DATA_HEADERS)),
        draw(st.sampled_from(IMAGE_BYTES) | st.binary(max_size=24)),
        draw(st.sampled_from(["", "", *CORRUPTIONS])),
    )


ODD = st.one_of(st.none(), st.integers(-1, 5), st.booleans(), st.floats(0, 5), st.just(["x"]))
IMAGE_ITEM = st.one_of(st.sampled_from(URLS), data_uris(), st.integers(), st.none())
GOOD_IMAGES = dict(
    zip(
        ["png", "jpeg", "gif", "webp", "bmp", "avif", "heic"],
        [IMAGE_BYTES[i] for i in (0, 1, 2, 3, 4, 6, 7)],
        strict=True,
    )
)
VALID_IMAGE = st.sampled_from(URLS[:5]) | st.sampled_from(
    [f"data:image/{kind};base64,{base64.b64encode(b).decode()}" for kind, b in GOOD_IMAGES.items()]
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "action": st.sampled_from(["generate", "edit"]) | st.sampled_from(["Generate", "draw", ""]),
    "prompt": st.text(max_size=8)
    | st.sampled_from(
        ["a cat", "   ", "\u3000", "a \ud800 cat", "\u200b\u2060", "\x07 ", "\udc00"]
    ),
    "model": st.sampled_from([*MODELS, "dall-e", "NANO-BANANA", "nano-banana-3", ""]),
    "image_urls": st.lists(VALID_IMAGE, min_size=1, max_size=2) | st.lists(IMAGE_ITEM, max_size=3),
    "aspect_ratio": st.sampled_from([*ASPECT_SIZES, "5:4", "1:1 ", "", "16/9"]),
    "resolution": st.sampled_from([*RESOLUTION_SCALE, "8K", "1k", ""]),
    "count": st.integers(-1, 6) | st.sampled_from([True, 1.0, "1"]),
    "callback_url": st.sampled_from(CALLBACKS),
    "async": st.booleans(),
}
UNKNOWN = st.sampled_from(["size", "n", "seed", "Action", "negative_prompt", "image_url"])


def _maybe(draw: st.DrawFn, body: Body, name: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        body[name] = draw(strategy)


@st.composite
def valid_bodies(draw: st.DrawFn) -> Body:
    """Bodies built from allowed values only (2K/4K may still meet a 1K-only model)."""
    action = draw(st.sampled_from(["generate", "edit"]))
    prompt = draw(st.sampled_from(["a cat", "Ein Hund", "\u732b", " x ", "\u200bx"]))
    body: Body = {"action": action, "prompt": prompt}
    if action == "edit":
        body["image_urls"] = draw(st.lists(VALID_IMAGE, min_size=1, max_size=3))
    _maybe(draw, body, "model", st.sampled_from(MODELS))
    _maybe(draw, body, "aspect_ratio", st.sampled_from(list(ASPECT_SIZES)))
    _maybe(draw, body, "resolution", st.sampled_from(list(RESOLUTION_SCALE)))
    _maybe(draw, body, "count", st.integers(1, 4))
    _maybe(draw, body, "callback_url", st.sampled_from(CALLBACKS[:3]))
    _maybe(draw, body, "async", st.booleans())
    return body


@st.composite
def wild_bodies(draw: st.DrawFn) -> Body:
    """Any field, allowed or not, present or not, sometimes of another type."""
    body: Body = {}
    for name, strategy in FIELDS.items():
        presence = draw(st.sampled_from(["absent", "value", "value", "odd"]))
        if name in ("action", "prompt") and presence == "absent":
            presence = draw(st.sampled_from(["absent", "value", "value", "value"]))
        if presence == "value":
            body[name] = draw(strategy)
        elif presence == "odd" and name != "async":
            body[name] = draw(ODD)
    if draw(st.integers(0, 9)) == 0:
        body[draw(UNKNOWN)] = draw(ODD)
    return body


@st.composite
def one_fault_bodies(draw: st.DrawFn) -> Body:
    """A valid body with one field changed, removed, or one unknown field added."""
    body = draw(valid_bodies())
    name = draw(st.sampled_from([*FIELDS, "unknown"]))
    if name == "unknown":
        body[draw(UNKNOWN)] = draw(ODD)
    elif draw(st.booleans()) and name != "async":
        body[name] = draw(ODD)
    elif draw(st.booleans()):
        body.pop(name, None)
    elif name == "image_urls":  # an edit whose images are data URIs, often odd ones
        body.update(action="edit", image_urls=draw(st.lists(data_uris(), min_size=1, max_size=2)))
    else:
        body[name] = draw(FIELDS[name])
    return body


def bodies() -> st.SearchStrategy[Body]:
    """Valid, one-fault and wild bodies, about one third each."""
    return st.one_of(valid_bodies(), one_fault_bodies(), wild_bodies())


# -- tests ---------------------------------------------------------------------------------------
def test_the_tables_agree() -> None:
    assert set(MODELS) == set(PACKAGE_MODELS)
    hires = {name for name, info in PACKAGE_MODELS.items() if info.high_resolution}
    assert hires == HIRES_MODELS
    assert tuple(sorted(ASPECT_SIZES)) == tuple(sorted(ASPECT_RATIOS))
    assert tuple(RESOLUTION_SCALE) == tuple(RESOLUTIONS)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
@example({"action": "generate", "prompt": "p", "image_urls": []})
@example({"action": "edit", "prompt": "p", "image_urls": ["https://x.test/a.png"], "count": 4})
@example({"action": "edit", "prompt": "p", "image_urls": ["x"], "resolution": "4K"})
@example({"action": "generate", "prompt": "p", "model": None, "count": None})
@example(
    {
        "action": "edit",
        "prompt": "p",
        "image_urls": ["data:image/bmp;base64," + base64.b64encode(IMAGE_BYTES[5]).decode()],
    }
)
def test_validator_and_image_request_agree(body: Body) -> None:
    assert simulator_accepts(body) == package_accepts(body), body


def test_both_accept_some_and_refuse_some() -> None:
    """The strategy is not degenerate: plenty of bodies on each side."""
    outcomes: list[bool] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(bodies())
    def collect(body: Body) -> None:
        outcomes.append(simulator_accepts(body))

    collect()
    assert 0.2 < sum(outcomes) / len(outcomes) < 0.8


def test_every_listed_image_and_callback_form_agrees() -> None:
    """Exhaustive over the sample lists: every data URI (header x bytes x corruption), URL and
    callback URL form, each in an otherwise valid body."""
    edit: Body = {"action": "edit", "prompt": "p"}
    images = [make_data_uri(*combo) for combo in product(DATA_HEADERS, IMAGE_BYTES, CORRUPTIONS)]
    for image in [*images, *URLS]:
        body = {**edit, "image_urls": [image]}
        assert simulator_accepts(body) == package_accepts(body), body
    for url in CALLBACKS:
        body = {"action": "generate", "prompt": "p", "callback_url": url}
        assert simulator_accepts(body) == package_accepts(body), body
    assert 15 < sum(simulator_accepts({**edit, "image_urls": [i]}) for i in images) < 300


@pytest.mark.parametrize("size", [10 * 2**20, 10 * 2**20 + 1])
def test_the_10_mib_cap_agrees(size: int) -> None:
    png = make_png(2, 2, b"c")
    uri = "data:image/png;base64," + base64.b64encode(png + bytes(size - len(png))).decode()
    body = {"action": "edit", "prompt": "p", "image_urls": [uri]}
    assert simulator_accepts(body) == package_accepts(body) == (size <= 10 * 2**20)


def test_listed_difference_async() -> None:
    """``async`` (vendor SDK) is validated by the simulator; ``ImageRequest`` has no field for
    it and refuses it, because the package sends it through ``to_payload(async_=True)``."""
    body = {"action": "generate", "prompt": "p"}
    assert simulator_accepts({**body, "async": True})
    assert not simulator_accepts({**body, "async": "yes"})
    with pytest.raises(ValueError, match="async"):
        ImageRequest(**{**body, "async": True})
    assert ImageRequest(**body).to_payload(async_=True) == {**body, "async": True}
    assert simulator_accepts(ImageRequest(**body).to_payload(async_=True))


@pytest.fixture(scope="module")
def module_sim() -> Iterator[FakeNanoBananaServer]:
    with FakeNanoBananaServer(token=SIM_TOKEN) as server:
        yield server


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bodies())
def test_over_http_the_answer_follows_the_validator(
    module_sim: FakeNanoBananaServer, body: Body
) -> None:
    # No callback deliveries from here (they would leave loopback); the direct test covers them.
    body = {**{k: v for k, v in body.items() if k != "callback_url"}, "async": True}
    resp = requests.post(
        f"{module_sim.base_url}/nano-banana/images",
        json=body,
        headers={"authorization": f"Bearer {SIM_TOKEN}"},
        timeout=5,
    )
    accepted = simulator_accepts(body)
    assert resp.status_code == (200 if accepted else 400), (body, resp.text)
    if not accepted:
        assert resp.json()["error"]["code"] == "token_mismatched"
    assert module_sim.internal_errors == []
