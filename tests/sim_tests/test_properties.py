"""Property-based tests (``hypothesis``) of ``ImageRequest`` against the simulator.

1. Any valid combination of fields builds a payload that the simulator (which validates bodies like
   the real API, SPEC Part 1) accepts: a 200 with a ``task_id``, and the task stores exactly that
   body.
2. Any invalid combination fails while building the request: a ``ValidationError`` naming the
   field, and no request ever reaches the simulator.

The simulator is shared by the module (hypothesis runs many examples per test); its tasks never
finish (``task_duration`` of an hour), so no callback is ever POSTed to the generated URLs.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls
from pydantic import ValidationError

from langchain_nanobanana import (
    ASPECT_RATIOS,
    MODELS,
    RESOLUTIONS,
    ImageRequest,
    NanoBananaClient,
)
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.images import sniff_image_mime
from langchain_nanobanana.testing import FakeNanoBananaServer, make_png

SUBMIT = "/nano-banana/images"
HIGH_RES = [name for name, info in MODELS.items() if info.high_resolution]
LOW_RES = [name for name, info in MODELS.items() if not info.high_resolution]
PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[FakeNanoBananaServer]:
    with FakeNanoBananaServer(token="props-token", task_duration=3600.0) as server:
        yield server


@pytest.fixture(scope="module")
def shared_client(shared_sim: FakeNanoBananaServer) -> Iterator[NanoBananaClient]:
    with NanoBananaClient("props-token", base_url=shared_sim.base_url, max_retries=0) as client:
        yield client


# -- strategies ------------------------------------------------------------------------------------

#: Characters that show nothing (zero-width, soft hyphen...): a prompt of only these is blank.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"


def visible(text: str) -> bool:
    """Whether ``text`` shows something: a printable, non-space, non-invisible character."""
    return any(c.isprintable() and not c.isspace() and c not in INVISIBLE for c in text)


prompts = st.text(min_size=1, max_size=200).filter(visible)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def data_uris(draw: st.DrawFn) -> str:
    """A real small image as a data URI: a PNG of random size, or GIF/JPEG magic + bytes."""
    kind = draw(st.sampled_from(["png", "gif", "jpeg"]))
    if kind == "png":
        data = make_png(draw(st.integers(1, 24)), draw(st.integers(1, 24)), b"p")
    else:
        head = b"GIF89a" if kind == "gif" else b"\xff\xd8\xff\xe0"
        data = head + draw(st.binary(min_size=1, max_size=64))
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


http_urls = urls().filter(lambda u: all(c not in u for c in string.whitespace))
image_urls = st.lists(st.one_of(http_urls, data_uris()), min_size=1, max_size=3)


@st.composite
def valid_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of a valid ``ImageRequest`` (unset fields left out or ``None``)."""
    action = draw(st.sampled_from(["generate", "edit"]))
    model = draw(optional(st.sampled_from(list(MODELS))))
    fields: dict[str, Any] = {
        "action": action,
        "prompt": draw(prompts),
        "model": model,
        "count": draw(optional(st.integers(1, 4))),
        "callback_url": draw(optional(http_urls)),
    }
    if action == "edit":
        fields["image_urls"] = draw(image_urls)
    # Both actions take a size (vendor MCP/CLI send both); 2K/4K need a capable model.
    high = model is not None and MODELS[model].high_resolution
    fields["aspect_ratio"] = draw(optional(st.sampled_from(ASPECT_RATIOS)))
    fields["resolution"] = draw(optional(st.sampled_from(RESOLUTIONS if high else ("1K",))))
    return {k: v for k, v in fields.items() if v is not None or draw(st.booleans())}


def _not_in(values: Any) -> st.SearchStrategy[str]:
    return st.text(max_size=30).filter(lambda s: s not in values)


def _bad_image_urls() -> st.SearchStrategy[str]:
    not_image = st.binary(min_size=1, max_size=64).filter(lambda b: sniff_image_mime(b) is None)
    return st.one_of(
        st.sampled_from(["ftp://example.com/a.png", "file:///etc/passwd", "http://", "//x/y.png"]),
        st.text(alphabet=string.ascii_letters + "./-_ ", max_size=40),  # no scheme at all
        not_image.map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()),
        st.text(alphabet="!@#$%^&*", min_size=1, max_size=20).map(
            lambda s: "data:image/png;base64," + s
        ),
    )


RULES = [
    "action",
    "blank_prompt",
    "model",
    "aspect_ratio",
    "resolution",
    "low_res_model",
    "count",
    "callback_url",
    "edit_without_images",
    "generate_with_images",
    "edit_low_res_model",
    "bad_image",
    "mismatched_data_uri",
    "unknown_field",
]


@st.composite
def invalid_fields(draw: st.DrawFn, rule: str) -> tuple[dict[str, Any], str]:
    """``(fields, name of the offending field)``: a valid request with ``rule`` broken."""
    base = draw(valid_fields())
    generate = {k: v for k, v in base.items() if k not in ("image_urls",)}
    generate["action"] = "generate"
    generate.pop("resolution", None)
    edit = {k: v for k, v in base.items() if k != "resolution"}
    edit["action"] = "edit"
    edit.setdefault("image_urls", [draw(data_uris())])
    edit["image_urls"] = edit["image_urls"] or [draw(data_uris())]
    if rule == "action":
        fields, field = {**generate, "action": draw(_not_in(("generate", "edit")))}, "action"
    elif rule == "blank_prompt":
        blank = draw(st.text(alphabet=" \t\n\r\u3000\xa0\x1b\x00" + INVISIBLE, max_size=5))
        fields, field = {**generate, "prompt": blank}, "prompt"
    elif rule == "model":
        fields, field = {**generate, "model": draw(_not_in(MODELS))}, "model"
    elif rule == "aspect_ratio":
        fields, field = {**generate, "aspect_ratio": draw(_not_in(ASPECT_RATIOS))}, "aspect_ratio"
    elif rule == "resolution":
        fields, field = {**generate, "resolution": draw(_not_in(RESOLUTIONS))}, "resolution"
    elif rule == "low_res_model":
        model = draw(st.one_of(st.none(), st.sampled_from(LOW_RES)))
        fields = {**generate, "resolution": draw(st.sampled_from(["2K", "4K"]))}
        fields.pop("model", None)
        if model is not None:
            fields["model"] = model
        field = "resolution"
    elif rule == "count":
        bad = st.one_of(
            st.integers().filter(lambda n: not 1 <= n <= 4),
            st.booleans(),
            st.floats(allow_nan=False),
            st.sampled_from(["2", "four"]),
        )
        fields, field = {**generate, "count": draw(bad)}, "count"
    elif rule == "callback_url":
        bad_url = st.one_of(
            st.sampled_from(["ftp://example.com/hook", "/relative/hook", "http://", "mailto:a@b"]),
            st.text(alphabet=string.ascii_lowercase + ".:/", max_size=30).filter(
                lambda s: not s.startswith(("http://", "https://"))
            ),
        )
        fields, field = {**generate, "callback_url": draw(bad_url)}, "callback_url"
    elif rule == "edit_without_images":
        fields = {**edit, "image_urls": draw(st.sampled_from([None, []]))}
        if fields["image_urls"] is None:
            del fields["image_urls"]
        field = "image_urls"
    elif rule == "generate_with_images":
        fields, field = {**generate, "image_urls": draw(image_urls)}, "image_urls"
    elif rule == "edit_low_res_model":
        fields = {**edit, "resolution": draw(st.sampled_from(["2K", "4K"]))}
        fields.pop("model", None)
        model = draw(st.one_of(st.none(), st.sampled_from(LOW_RES)))
        if model is not None:
            fields["model"] = model
        field = "resolution"
    elif rule == "bad_image":
        images = list(edit["image_urls"])
        images.insert(draw(st.integers(0, len(images))), draw(_bad_image_urls()))
        fields, field = {**edit, "image_urls": images}, "image_urls"
    elif rule == "mismatched_data_uri":
        # The declared type differs from the bytes (e.g. data:image/jpeg carrying a PNG).
        declared = draw(st.sampled_from(["jpeg", "gif", "webp"]))
        png = make_png(draw(st.integers(1, 16)), draw(st.integers(1, 16)))
        uri = f"data:image/{declared};base64,{base64.b64encode(png).decode()}"
        images = list(edit["image_urls"])
        images.insert(draw(st.integers(0, len(images))), uri)
        fields, field = {**edit, "image_urls": images}, "image_urls"
    else:
        name = draw(st.sampled_from(["size", "n", "quality", "async", "negative_prompt"]))
        fields, field = {**generate, name: "x"}, name
    return fields, field


# -- properties ------------------------------------------------------------------------------------


@PROPS
@given(fields=valid_fields())
def test_any_valid_request_is_accepted_by_the_simulator(
    shared_sim: FakeNanoBananaServer, shared_client: NanoBananaClient, fields: dict[str, Any]
) -> None:
    request = ImageRequest(**fields)
    payload = request.to_payload(async_=request.callback_url is None)
    # Only the fields that are set, no nulls, no undocumented keys.
    assert None not in payload.values()
    assert set(payload) <= set(ImageRequest.model_fields) | {"async"}
    assert {k: v for k, v in fields.items() if v is not None}.items() <= payload.items()
    before = len(shared_sim.requests_to(SUBMIT))
    result = shared_client.submit(request, wait=False)  # a 400 would raise BadRequestError
    assert result.status == "pending" and result.task_id is not None
    assert shared_sim.tasks[result.task_id]["request"] == payload
    assert len(shared_sim.requests_to(SUBMIT)) == before + 1


@pytest.mark.parametrize("rule", RULES)
@settings(PROPS, max_examples=30)
@given(data=st.data())
def test_any_invalid_request_fails_before_sending(
    shared_sim: FakeNanoBananaServer,
    shared_client: NanoBananaClient,
    rule: str,
    data: st.DataObject,
) -> None:
    fields, field = data.draw(invalid_fields(rule))
    before = len(shared_sim.requests)
    with pytest.raises(ValidationError) as info:
        ImageRequest(**fields)
    assert field in str(info.value)  # the message names the field
    # The client's own entry points refuse it too, before any request.
    kwargs = {k: v for k, v in fields.items() if k not in ("action", "prompt", "image_urls")}
    if (
        fields.get("action") == "generate"
        and "image_urls" not in fields
        and set(kwargs)
        <= {
            "model",
            "aspect_ratio",
            "resolution",
            "count",
            "callback_url",
        }
    ):
        with pytest.raises(InvalidRequestError) as client_info:
            shared_client.generate(fields["prompt"], wait=False, **kwargs)
        assert field in str(client_info.value)
    elif (
        fields.get("action") == "edit"
        and fields.get("image_urls")
        and set(kwargs)
        <= {
            "model",
            "aspect_ratio",
            "resolution",
            "count",
            "callback_url",
        }
    ):
        with pytest.raises(InvalidRequestError) as client_info:
            shared_client.edit(fields["prompt"], fields["image_urls"], wait=False, **kwargs)
        assert field in str(client_info.value)
    assert len(shared_sim.requests) == before
