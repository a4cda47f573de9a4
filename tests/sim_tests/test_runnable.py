"""``NanoBananaImageGenerator``: every input type, field defaults and overrides, LCEL composition,
streaming, async, callbacks, tracing, errors and serialization — against the simulator over real
HTTP on 127.0.0.1 (nothing mocked).

Batch behaviour (one ``retrieve_batch`` per poll round) is covered by ``test_batch.py``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.load import dumpd, dumps, loads
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tracers.context import collect_runs

from langchain_nanobanana import (
    SAFE_TO_RETRY,
    AuthenticationError,
    ImageResult,
    InvalidImageError,
    NanoBananaClient,
    NanoBananaImageGenerator,
    RateLimitError,
    SubmissionUncertainError,
    TaskFailedError,
)
from langchain_nanobanana.errors import InvalidRequestError
from langchain_nanobanana.journal import IdempotencyKeyMismatchError
from langchain_nanobanana.runnables import ImageGeneratorInput
from langchain_nanobanana.testing import ASPECT_SIZES, FakeNanoBananaServer, make_png, png_size
from tests.helpers import SIM_TOKEN, json_bodies

IMAGES = "/nano-banana/images"
TASKS = "/nano-banana/tasks"


def bodies(sim: FakeNanoBananaServer) -> list[dict[str, Any]]:
    """The JSON bodies of every submission the simulator received, in order."""
    return json_bodies(sim, IMAGES)


def only_body(sim: FakeNanoBananaServer) -> dict[str, Any]:
    [body] = bodies(sim)
    return body


def image_size(client: NanoBananaClient, url: str) -> tuple[int, int]:
    """Download ``url`` from the simulator and return the PNG's pixel size."""
    resp = client.session.get(url, timeout=5)
    resp.raise_for_status()
    size = png_size(resp.content)
    assert size is not None
    return size


class Recorder(BaseCallbackHandler):
    """Records chain callbacks (start name/inputs, end outputs, errors, custom events)."""

    def __init__(self) -> None:
        self.starts: list[tuple[str | None, Any, UUID]] = []
        self.ends: list[tuple[Any, UUID]] = []
        self.errors: list[BaseException] = []
        self.custom: list[tuple[str, Any]] = []

    def on_chain_start(
        self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.starts.append((kwargs.get("name"), inputs, run_id))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends.append((outputs, run_id))

    def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.custom.append((name, data))


@pytest.fixture
def gen(sim: FakeNanoBananaServer, client: NanoBananaClient) -> NanoBananaImageGenerator:
    assert sim.token == SIM_TOKEN
    return NanoBananaImageGenerator(client=client)


# -- input types -----------------------------------------------------------------------------------


def test_str_input(sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator) -> None:
    result = gen.invoke("a white siamese cat")

    assert isinstance(result, ImageResult)
    assert result.status == "succeeded"
    assert result.task_id in sim.tasks
    assert len(result.urls) == 1
    assert result.images[0].prompt == "a white siamese cat"
    assert only_body(sim) == {"action": "generate", "prompt": "a white siamese cat", "async": True}


def test_string_prompt_value_from_prompt_template(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    template = PromptTemplate.from_template("A watercolor of {subject}, soft morning light")
    assert isinstance(template.invoke({"subject": "a lighthouse"}), StringPromptValue)

    result = (template | gen).invoke({"subject": "a lighthouse"})

    assert result.status == "succeeded"
    assert only_body(sim)["prompt"] == "A watercolor of a lighthouse, soft morning light"


def test_chat_prompt_value_has_no_role_prefixes(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    template = ChatPromptTemplate.from_messages(
        [("system", "Style: {style}, muted palette."), ("human", "Draw {subject} at dusk.")]
    )
    value = template.invoke({"style": "gouache", "subject": "a red fox"})
    assert isinstance(value, ChatPromptValue)
    assert "Human: " in value.to_string()  # what the Runnable must not send

    result = (template | gen).invoke({"style": "gouache", "subject": "a red fox"})

    prompt = only_body(sim)["prompt"]
    assert prompt == "Style: gouache, muted palette.\nDraw a red fox at dusk."
    assert "Human:" not in prompt
    assert "System:" not in prompt
    assert result.images[0].prompt == prompt


def test_ai_message_input(sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator) -> None:
    gen.invoke(AIMessage(content="a cat on a skateboard, fisheye lens"))
    gen.invoke(HumanMessage(content="a dog on a surfboard"))
    # Content blocks: only the text goes into the prompt, not reasoning blocks.
    gen.invoke(
        AIMessage(
            content=[
                {"type": "reasoning", "reasoning": "the user wants a cozy scene"},
                {"type": "text", "text": "a cozy cabin in snow"},
            ]
        )
    )

    assert [b["prompt"] for b in bodies(sim)] == [
        "a cat on a skateboard, fisheye lens",
        "a dog on a surfboard",
        "a cozy cabin in snow",
    ]


def test_dict_input_generate(sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator) -> None:
    result = gen.invoke({"prompt": "a paper crane", "aspect_ratio": "2:3", "count": 2})

    assert only_body(sim) == {
        "action": "generate",
        "prompt": "a paper crane",
        "aspect_ratio": "2:3",
        "count": 2,
        "async": True,
    }
    assert len(result.urls) == 2
    assert {image_size(gen.client, u) for u in result.urls} == {ASPECT_SIZES["2:3"]}


def test_dict_prompt_may_be_a_prompt_value(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    value = ChatPromptTemplate.from_messages([("human", "a {thing}")]).invoke({"thing": "kite"})

    gen.invoke({"prompt": value, "aspect_ratio": "16:9"})

    assert only_body(sim)["prompt"] == "a kite"


@pytest.mark.parametrize("key", ["images", "image_urls"])
def test_dict_with_images_is_an_edit_with_the_generator_defaults(
    sim: FakeNanoBananaServer, client: NanoBananaClient, key: str
) -> None:
    # The generator's aspect_ratio / resolution apply to edits too (SPEC Part 3: the vendor's
    # MCP/CLI send both on edit; 4K edits exist), like its model.
    gen = NanoBananaImageGenerator(
        client=client, model="nano-banana-pro", aspect_ratio="16:9", resolution="2K"
    )
    source = sim.image_url(864, 1184)

    result = gen.invoke({"prompt": "add a red bow tie", key: [source]})

    assert only_body(sim) == {
        "action": "edit",
        "prompt": "add a red bow tie",
        "model": "nano-banana-pro",
        "image_urls": [source],
        "aspect_ratio": "16:9",
        "resolution": "2K",
        "async": True,
    }
    assert result.status == "succeeded"
    width, height = ASPECT_SIZES["16:9"]
    assert image_size(client, result.urls[0]) == (2 * width, 2 * height)  # 2K at 16:9


def test_edit_without_size_fields_keeps_the_first_image_shape(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    source = sim.image_url(864, 1184)

    result = gen.invoke({"prompt": "add a red bow tie", "images": [source]})

    assert only_body(sim) == {
        "action": "edit",
        "prompt": "add a red bow tie",
        "image_urls": [source],
        "async": True,
    }
    assert image_size(gen.client, result.urls[0]) == (864, 1184)


def test_dict_with_image_bytes_sends_a_data_uri(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    png = make_png(300, 200, b"seed")

    result = gen.invoke({"prompt": "make it night", "images": png})

    [sent] = only_body(sim)["image_urls"]
    assert sent == "data:image/png;base64," + base64.b64encode(png).decode()
    assert image_size(gen.client, result.urls[0]) == (300, 200)


@pytest.mark.parametrize("name", ["aspect_ratio", "resolution"])
def test_explicit_size_with_images_is_sent_with_the_edit(
    sim: FakeNanoBananaServer, client: NanoBananaClient, name: str
) -> None:
    # A size given with this very input applies to the edit (both actions accept it): it is sent
    # as asked, never dropped.
    gen = NanoBananaImageGenerator(client=client, model="nano-banana-pro")
    value = {"aspect_ratio": "16:9", "resolution": "2K"}[name]
    source = sim.image_url(64, 64)

    gen.invoke({"prompt": "add a bow tie", "images": [source], name: value})

    body = only_body(sim)
    assert (body["action"], body[name], body["image_urls"]) == ("edit", value, [source])


def test_dict_local_paths_need_allowed_image_dir(
    sim: FakeNanoBananaServer, client: NanoBananaClient, tmp_path: Path
) -> None:
    # A dict input may come from a user or a model: reading local files is opt-in, and only
    # inside the folder the developer allows. URLs, data URIs and bytes are always accepted.
    (tmp_path / "cat.png").write_bytes(make_png(40, 60))
    outside = tmp_path.parent / f"{tmp_path.name}-secret.png"
    outside.write_bytes(make_png(8, 8))
    value = {"prompt": "add a hat", "images": [tmp_path / "cat.png"]}

    with pytest.raises(InvalidImageError, match="local file paths are not allowed"):
        NanoBananaImageGenerator(client=client).invoke(value)
    allowed = NanoBananaImageGenerator(client=client, allowed_image_dir=str(tmp_path))
    with pytest.raises(InvalidImageError, match="local files must be inside"):
        allowed.invoke({"prompt": "add a hat", "images": [outside]})
    assert sim.requests == []

    result = allowed.invoke(value)

    [sent] = only_body(sim)["image_urls"]
    assert sent == "data:image/png;base64," + base64.b64encode(make_png(40, 60)).decode()
    assert image_size(client, result.urls[0]) == (40, 60)


def test_dict_id_needs_a_journal(sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator) -> None:
    with pytest.raises(ValueError, match="idempotency key and needs a journal"):
        gen.invoke({"prompt": "a cat", "id": "sku-123"})
    assert sim.requests == []


def test_images_and_image_urls_together_are_an_error(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    url = sim.image_url(64, 64)
    with pytest.raises(ValueError, match="not both"):
        gen.invoke({"prompt": "add a bow tie", "images": [url], "image_urls": [url]})
    assert sim.requests == []


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ({"prompt": "a cat", "style": "noir"}, "style"),
        ({"prompt": "a cat", "callback": "x"}, "callback"),
        ({"aspect_ratio": "1:1"}, "give 'prompt'"),
    ],
)
def test_dict_with_unknown_key_or_no_prompt_is_a_clear_error(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, value: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        gen.invoke(value)
    # The message lists what is allowed.
    for allowed in ("images", "image_urls", "aspect_ratio", "resolution", "count", "model"):
        assert allowed in str(info.value)
    assert sim.requests == []


@pytest.mark.parametrize("value", [42, None, ["a", "cat"], b"a cat"])
def test_wrong_type_is_a_type_error(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator, value: Any
) -> None:
    with pytest.raises(TypeError, match=rf"prompt of type {type(value).__name__} is not supported"):
        gen.invoke(value)
    assert sim.requests == []


def test_bad_values_fail_before_any_request(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    with pytest.raises(InvalidRequestError, match="aspect_ratio='5:4'"):
        gen.invoke({"prompt": "a cat", "aspect_ratio": "5:4"})
    with pytest.raises(InvalidRequestError, match="blank"):
        gen.invoke(AIMessage(content="   "))
    with pytest.raises(InvalidRequestError, match="resolution"):
        gen.invoke({"prompt": "a cat", "resolution": "4K"})  # nano-banana has no 4K
    assert sim.requests == []


# -- fields as defaults, dict overrides ------------------------------------------------------------


def test_fields_are_defaults_and_dict_keys_override_them(
    sim: FakeNanoBananaServer, client: NanoBananaClient
) -> None:
    gen = NanoBananaImageGenerator(
        client=client, model="nano-banana-pro", aspect_ratio="3:2", resolution="2K", count=2
    )

    first = gen.invoke("a castle")
    second = gen.invoke({"prompt": "a moat", "aspect_ratio": "9:16", "count": 1})
    third = gen.invoke({"prompt": "a drawbridge", "model": "nano-banana-2", "count": None})

    assert bodies(sim) == [
        {
            "action": "generate",
            "prompt": "a castle",
            "model": "nano-banana-pro",
            "aspect_ratio": "3:2",
            "resolution": "2K",
            "count": 2,
            "async": True,
        },
        {
            "action": "generate",
            "prompt": "a moat",
            "model": "nano-banana-pro",
            "aspect_ratio": "9:16",
            "resolution": "2K",
            "count": 1,
            "async": True,
        },
        {  # a None value keeps the default
            "action": "generate",
            "prompt": "a drawbridge",
            "model": "nano-banana-2",
            "aspect_ratio": "3:2",
            "resolution": "2K",
            "count": 2,
            "async": True,
        },
    ]
    assert (len(first.urls), len(second.urls), len(third.urls)) == (2, 1, 2)
    w, h = image_size(client, first.urls[0])
    assert (w, h) == (ASPECT_SIZES["3:2"][0] * 2, ASPECT_SIZES["3:2"][1] * 2)  # 2K


def test_sync_mode_client_makes_one_blocking_request(sim: FakeNanoBananaServer) -> None:
    with NanoBananaClient(SIM_TOKEN, base_url=sim.base_url, mode="sync") as client:
        result = NanoBananaImageGenerator(client=client).invoke("a sync cat")

    assert result.status == "succeeded"
    assert only_body(sim) == {"action": "generate", "prompt": "a sync cat"}
    assert sim.requests_to(TASKS) == []


# -- configuration: checked when built --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"aspect": "16:9"}, ["'aspect'", "did you mean", "'aspect_ratio'"]),
        ({"resolutoin": "2K"}, ["'resolutoin'", "'resolution'"]),
        ({"callback": "https://example.com/cb"}, ["'callback'", "'callback_url'"]),
    ],
)
def test_unknown_keyword_is_a_type_error_with_did_you_mean(
    client: NanoBananaClient, kwargs: dict[str, Any], needles: list[str]
) -> None:
    # A typo must not silently become a billed default image.
    with pytest.raises(TypeError) as info:
        NanoBananaImageGenerator(client=client, **kwargs)
    for needle in needles:
        assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"model": "nano-banana-pro2"}, ["nano-banana-pro2", "nano-banana-pro"]),
        ({"aspect_ratio": "5:4"}, ["aspect_ratio='5:4'", "16:9"]),
        ({"resolution": "4K"}, ["resolution='4K'", "nano-banana-pro"]),  # default model: 1K only
        ({"count": 9}, ["count", "9"]),
        ({"callback_url": "ftp://example.com/cb"}, ["callback_url"]),
    ],
)
def test_bad_fixed_field_is_a_value_error_when_built(
    sim: FakeNanoBananaServer, client: NanoBananaClient, kwargs: dict[str, Any], needles: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        NanoBananaImageGenerator(client=client, **kwargs)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    assert sim.requests == []


def test_api_token_and_base_url_build_the_client(sim: FakeNanoBananaServer) -> None:
    gen = NanoBananaImageGenerator(api_token=SIM_TOKEN, base_url=sim.base_url, aspect_ratio="3:2")
    try:
        result = gen.invoke("a token-configured cat")
    finally:
        gen.client.close()

    assert result.status == "succeeded"
    [submission] = sim.requests_to(IMAGES)
    assert submission.headers["authorization"] == f"Bearer {SIM_TOKEN}"
    assert only_body(sim)["aspect_ratio"] == "3:2"
    for text in (repr(gen), str(gen), repr(gen.client), str(gen.model_dump()), dumps(gen)):
        assert SIM_TOKEN not in text


def test_api_token_defaults_to_the_environment(
    sim: FakeNanoBananaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SIM_TOKEN)
    monkeypatch.setenv("ACEDATACLOUD_API_BASE_URL", sim.base_url)
    gen = NanoBananaImageGenerator()
    try:
        assert gen.client.base_url == sim.base_url
        assert "token=set" in repr(gen.client)
    finally:
        gen.client.close()


@pytest.mark.parametrize(
    "extra", [{"api_token": "another-token"}, {"base_url": "http://127.0.0.1:9"}]
)
def test_client_with_api_token_or_base_url_is_an_error(
    client: NanoBananaClient, extra: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="not both"):
        NanoBananaImageGenerator(client=client, **extra)


SECRET = "sk-secret-token-8d1f0c9e2b7a4f63"


def _token_shown(error: BaseException) -> bool:
    text = str(error) + repr(error)
    return SECRET[:8] in text


def test_typo_errors_never_show_the_token(client: NanoBananaClient) -> None:
    with pytest.raises(TypeError) as info:
        NanoBananaImageGenerator(api_token=SECRET, aspect="16:9")  # type: ignore[call-arg]
    assert not _token_shown(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"client": "CLIENT"}, {"model": "nano-banana-pro2"}, {"aspect_ratio": "5:4"}],
    ids=["with-client", "bad-model", "bad-aspect-ratio"],
)
def test_value_errors_when_built_never_show_the_token(
    client: NanoBananaClient, kwargs: dict[str, Any]
) -> None:
    kwargs = {k: client if v == "CLIENT" else v for k, v in kwargs.items()}
    with pytest.raises(ValueError) as info:
        NanoBananaImageGenerator(api_token=SECRET, **kwargs)
    assert not _token_shown(info.value)


def test_dumpd_never_carries_the_api_token(sim: FakeNanoBananaServer) -> None:
    gen = NanoBananaImageGenerator(
        api_token=SIM_TOKEN, base_url=sim.base_url, model="nano-banana-2"
    )
    try:
        data = dumpd(gen)
        text = dumps(gen)
    finally:
        gen.client.close()

    assert data["id"] == ["langchain_nanobanana", "runnables", "NanoBananaImageGenerator"]
    assert data["kwargs"]["model"] == "nano-banana-2"
    assert SIM_TOKEN not in text
    assert "client" not in data["kwargs"]
    # When a token is serialised at all, it is as a secret reference to the environment.
    assert "api_token" not in data["kwargs"] or data["kwargs"]["api_token"] == {
        "lc": 1,
        "type": "secret",
        "id": ["ACEDATACLOUD_API_TOKEN"],
    }


# -- composition -----------------------------------------------------------------------------------


def test_with_retry_after_a_failed_task_pays_again(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.fail_next_tasks(1, code="generation_failed", message="try again")
    retrying = gen.with_retry(
        retry_if_exception_type=(TaskFailedError,),
        stop_after_attempt=2,
        wait_exponential_jitter=False,
    )

    result = retrying.invoke("a stubborn cat")

    assert result.status == "succeeded"
    # Every attempt of with_retry is a NEW billable submission: the retry created a second task.
    # Retry only errors a new attempt can fix (a failed task), never SubmissionUncertainError.
    assert len(bodies(sim)) == 2
    assert len(sim.tasks) == 2
    statuses = sorted(
        "failed" if record["response"]["success"] is False else "succeeded"
        for record in sim.tasks.values()
    )
    assert statuses == ["failed", "succeeded"]
    assert result.task_id in sim.tasks


def test_with_retry_on_safe_to_retry_pays_once_through_a_429_storm(
    sim: FakeNanoBananaServer,
) -> None:
    # max_retries=0: each 429 reaches with_retry as a RateLimitError (nothing was billed).
    sim.inject_fault("429", count=3, path=IMAGES, retry_after="0")
    with NanoBananaClient(
        SIM_TOKEN, base_url=sim.base_url, max_retries=0, poll_interval=0.02
    ) as client:
        retrying = NanoBananaImageGenerator(client=client).with_retry(
            retry_if_exception_type=SAFE_TO_RETRY,
            stop_after_attempt=5,
            wait_exponential_jitter=False,
        )

        result = retrying.invoke("a patient cat")

    assert result.status == "succeeded"
    assert RateLimitError in SAFE_TO_RETRY
    assert [r.fault for r in sim.requests_to(IMAGES)] == ["429", "429", "429", None]
    assert list(sim.tasks) == [result.task_id]  # paid once


def test_with_safe_retry_retries_what_was_never_billed_only(sim: FakeNanoBananaServer) -> None:
    sim.inject_fault("429", count=1, path=IMAGES, retry_after="0")
    with NanoBananaClient(
        SIM_TOKEN, base_url=sim.base_url, max_retries=0, poll_interval=0.02
    ) as client:
        gen = NanoBananaImageGenerator(client=client)

        result = gen.with_safe_retry(stop_after_attempt=2).invoke("a patient cat")
        sim.fail_next_tasks(1)
        with pytest.raises(TaskFailedError):
            gen.with_safe_retry(stop_after_attempt=3).invoke("a refused cat")

    assert result.status == "succeeded"
    assert [r.fault for r in sim.requests_to(IMAGES)] == ["429", None, None]  # no second payment
    assert len(sim.tasks) == 2


def test_with_retry_on_safe_to_retry_never_retries_a_failed_task(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.fail_next_tasks(1)
    retrying = gen.with_retry(
        retry_if_exception_type=SAFE_TO_RETRY, stop_after_attempt=3, wait_exponential_jitter=False
    )

    with pytest.raises(TaskFailedError):
        retrying.invoke("a refused cat")

    assert len(sim.requests_to(IMAGES)) == 1  # it ran and was billed: not paid again
    assert len(sim.tasks) == 1


def test_with_retry_on_safe_to_retry_never_retries_an_uncertain_submission(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.inject_fault("500", path=IMAGES)  # the generation may have run
    retrying = gen.with_retry(
        retry_if_exception_type=SAFE_TO_RETRY, stop_after_attempt=3, wait_exponential_jitter=False
    )

    with pytest.raises(SubmissionUncertainError):
        retrying.invoke("an uncertain cat")

    assert len(sim.requests_to(IMAGES)) == 1


def test_with_retry_is_not_needed_for_task_read_faults(sim: FakeNanoBananaServer) -> None:
    # Faults on the task read (a free, idempotent call) are absorbed by the client's poll loop:
    # the Runnable never raises, so with_retry never re-pays. max_retries=0 skips urllib3's
    # backoff so the poll loop itself handles them.
    with NanoBananaClient(
        SIM_TOKEN, base_url=sim.base_url, max_retries=0, poll_interval=0.02, max_poll_interval=0.05
    ) as client:
        sim.inject_fault("500", count=2, path=TASKS)
        sim.inject_fault("malformed", count=1, path=TASKS)
        attempts: list[str] = []

        def count_attempt(text: str) -> str:
            attempts.append(text)
            return text

        counted = RunnableLambda(count_attempt)
        chain = (counted | NanoBananaImageGenerator(client=client)).with_retry(
            stop_after_attempt=3, wait_exponential_jitter=False
        )

        result = chain.invoke("a patient cat")

    assert result.status == "succeeded"
    assert attempts == ["a patient cat"]
    assert len(bodies(sim)) == 1
    assert len(sim.tasks) == 1
    assert [r.fault for r in sim.requests_to(TASKS) if r.fault] == ["500", "500", "malformed"]


def test_with_fallbacks_uses_the_fallback_after_a_wrong_token(
    sim: FakeNanoBananaServer, client: NanoBananaClient
) -> None:
    with NanoBananaClient("wrong-token", base_url=sim.base_url) as bad_client:
        primary = NanoBananaImageGenerator(client=bad_client, aspect_ratio="4:3")
        fallback = NanoBananaImageGenerator(client=client, aspect_ratio="4:3")
        chain = primary.with_fallbacks([fallback], exceptions_to_handle=(AuthenticationError,))

        result = chain.invoke("a fallback fox")

    assert result.status == "succeeded"
    assert image_size(client, result.urls[0]) == ASPECT_SIZES["4:3"]
    auth = [r.headers["authorization"] for r in sim.requests_to(IMAGES)]
    assert auth == ["Bearer wrong-token", f"Bearer {SIM_TOKEN}"]
    assert len(sim.tasks) == 1  # the 401 created no task


def test_with_fallbacks_does_not_hide_the_auth_error_without_a_fallback(
    sim: FakeNanoBananaServer,
) -> None:
    with NanoBananaClient("wrong-token", base_url=sim.base_url) as bad_client:
        gen = NanoBananaImageGenerator(client=bad_client)
        with pytest.raises(AuthenticationError) as info:
            gen.invoke("x")
    assert info.value.code == "invalid_token"
    assert "wrong-token" not in str(info.value)


def test_with_config_run_name_reaches_callbacks_and_traces(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    recorder = Recorder()
    named = gen.with_config(run_name="cover-art", tags=["covers"], metadata={"book": 7})

    with collect_runs() as runs:
        result = named.invoke("a book cover", {"callbacks": [recorder]})

    assert [name for name, _, _ in recorder.starts] == ["cover-art"]
    [run] = runs.traced_runs
    assert run.name == "cover-art"
    assert "covers" in (run.tags or [])
    assert (run.metadata or {}).get("book") == 7
    assert run.outputs == {"output": result}
    assert SIM_TOKEN not in run.model_dump_json()


def test_runnable_parallel_makes_variants_from_one_prompt(
    sim: FakeNanoBananaServer, client: NanoBananaClient
) -> None:
    variants = RunnableParallel(
        square=NanoBananaImageGenerator(client=client, aspect_ratio="1:1"),
        wide=NanoBananaImageGenerator(client=client, aspect_ratio="16:9"),
        tall=NanoBananaImageGenerator(client=client, aspect_ratio="9:16"),
    )
    chain = PromptTemplate.from_template("a poster of {city} at night") | variants

    out = chain.invoke({"city": "Lisbon"})

    assert set(out) == {"square", "wide", "tall"}
    expected = {"square": "1:1", "wide": "16:9", "tall": "9:16"}
    for key, ratio in expected.items():
        assert out[key].status == "succeeded"
        assert image_size(client, out[key].urls[0]) == ASPECT_SIZES[ratio]
    assert sorted(b["aspect_ratio"] for b in bodies(sim)) == sorted(expected.values())
    assert {b["prompt"] for b in bodies(sim)} == {"a poster of Lisbon at night"}
    assert len({out[k].task_id for k in out}) == 3


async def test_runnable_parallel_async(sim: FakeNanoBananaServer, client: NanoBananaClient) -> None:
    sim.task_duration = 0.1
    variants = RunnableParallel(
        a=NanoBananaImageGenerator(client=client, aspect_ratio="3:4"),
        b=NanoBananaImageGenerator(client=client, aspect_ratio="4:3"),
    )

    out = await variants.ainvoke("a quiet harbor")

    assert image_size(client, out["a"].urls[0]) == ASPECT_SIZES["3:4"]
    assert image_size(client, out["b"].urls[0]) == ASPECT_SIZES["4:3"]


def test_runnable_lambda_pre_and_post_steps(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    def pre(text: str) -> dict[str, Any]:
        return {"prompt": f"{text.strip()}, studio lighting", "aspect_ratio": "3:2"}

    def post(result: ImageResult) -> str:
        return result.urls[0]

    chain = RunnableLambda(pre) | gen | RunnableLambda(post)

    url = chain.invoke("  a ceramic teapot ")

    assert isinstance(url, str)
    assert url.startswith(sim.base_url + "/files/")
    assert image_size(gen.client, url) == ASPECT_SIZES["3:2"]
    assert only_body(sim)["prompt"] == "a ceramic teapot, studio lighting"


def test_prompt_llm_parser_generator_chain_sends_the_refined_prompt(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    refined = "A tiny robot watering a bonsai, macro photo, shallow depth of field, golden hour"
    llm = FakeListChatModel(responses=[refined])
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Rewrite the idea as a detailed image prompt."), ("human", "{idea}")]
    )
    recorder = Recorder()

    chain = prompt | llm | StrOutputParser() | gen
    result = chain.invoke({"idea": "robot gardener"}, {"callbacks": [recorder]})

    assert only_body(sim)["prompt"] == refined
    assert result.images[0].prompt == refined
    # The generator ran as a step of the chain with the parser's string as its input.
    gen_starts = [inputs for name, inputs, _ in recorder.starts if name == gen.get_name()]
    assert gen_starts == [refined]


def test_llm_message_goes_straight_into_the_generator(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    llm = FakeListChatModel(responses=["an origami whale, paper texture"])

    (ChatPromptTemplate.from_messages([("human", "{idea}")]) | llm | gen).invoke({"idea": "whale"})

    assert only_body(sim)["prompt"] == "an origami whale, paper texture"


# -- stream, async ---------------------------------------------------------------------------------


def test_stream_yields_one_image_result(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    chunks = list(gen.stream("a streaming cat"))

    assert len(chunks) == 1
    assert isinstance(chunks[0], ImageResult)
    assert chunks[0].status == "succeeded"
    assert len(sim.tasks) == 1


async def test_astream_yields_one_image_result(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    chunks = [chunk async for chunk in gen.astream("an async streaming cat")]

    assert [c.status for c in chunks] == ["succeeded"]
    assert len(sim.tasks) == 1


async def test_ainvoke(sim: FakeNanoBananaServer, client: NanoBananaClient) -> None:
    sim.task_duration = 0.15
    gen = NanoBananaImageGenerator(client=client, aspect_ratio="2:3")

    result = await gen.ainvoke({"prompt": "an async heron", "count": 2})

    assert result.status == "succeeded"
    assert len(result.urls) == 2
    assert image_size(client, result.urls[1]) == ASPECT_SIZES["2:3"]
    assert len(sim.requests_to(TASKS)) >= 1  # it polled until the task finished
    assert only_body(sim)["async"] is True


async def test_ainvoke_chain_with_llm(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    llm = FakeListChatModel(responses=["a neon koi pond"])
    chain = ChatPromptTemplate.from_messages([("human", "{x}")]) | llm | StrOutputParser() | gen

    result = await chain.ainvoke({"x": "koi"})

    assert result.images[0].prompt == "a neon koi pond"


# -- callbacks, tracing, errors --------------------------------------------------------------------


def test_callbacks_see_start_and_end_with_the_image_result(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    recorder = Recorder()

    result = gen.invoke("a callback cat", {"callbacks": [recorder]})

    [(name, inputs, start_id)] = recorder.starts
    [(outputs, end_id)] = recorder.ends
    assert name == "NanoBananaImageGenerator"
    assert inputs == "a callback cat"
    assert outputs == result
    assert isinstance(outputs, ImageResult)
    assert start_id == end_id
    assert recorder.errors == []


def test_progress_event_reaches_callbacks(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.task_duration = 0.3
    recorder = Recorder()

    result = gen.invoke("a slow cat", {"callbacks": [recorder]})

    assert recorder.custom, "no nano_banana_progress event"
    assert {name for name, _ in recorder.custom} == {"nano_banana_progress"}
    assert all(set(data["tasks"]) == {result.task_id} for _, data in recorder.custom)
    statuses = [data["tasks"].get(result.task_id) for _, data in recorder.custom]
    assert statuses[0] == "pending"  # the first round saw the task still running


def test_last_progress_event_shows_the_task_succeeded(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.task_duration = 0.3
    recorder = Recorder()

    result = gen.invoke("a slow cat", {"callbacks": [recorder]})

    assert recorder.custom[-1][1]["tasks"] == {result.task_id: "succeeded"}
    assert len(recorder.custom) == len(sim.requests_to(TASKS))  # one event per round


async def test_async_callbacks_see_start_and_end(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    recorder = Recorder()

    result = await gen.ainvoke("an async callback cat", {"callbacks": [recorder]})

    assert [inputs for _, inputs, _ in recorder.starts] == ["an async callback cat"]
    assert [outputs for outputs, _ in recorder.ends] == [result]


def test_task_failed_error_propagates_with_ids(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.fail_next_tasks(1, code="content_policy", message="The prompt was refused.")
    recorder = Recorder()

    with pytest.raises(TaskFailedError) as info:
        gen.invoke("something refused", {"callbacks": [recorder]})

    [task_id] = sim.tasks
    assert info.value.task_id == task_id
    assert info.value.trace_id == sim.tasks[task_id]["trace_id"]
    assert info.value.code == "content_policy"
    assert task_id in str(info.value)
    assert recorder.errors == [info.value]
    assert recorder.ends == []


async def test_task_failed_error_propagates_from_ainvoke(
    sim: FakeNanoBananaServer, gen: NanoBananaImageGenerator
) -> None:
    sim.fail_next_tasks(1)

    with pytest.raises(TaskFailedError) as info:
        await gen.ainvoke("something refused")

    assert info.value.task_id in sim.tasks
    assert info.value.code == "generation_failed"


# -- serialization ---------------------------------------------------------------------------------


def test_dumpd_has_the_fields_and_no_client_or_token(client: NanoBananaClient) -> None:
    gen = NanoBananaImageGenerator(client=client, model="nano-banana-2", aspect_ratio="16:9")

    data = dumpd(gen)
    text = dumps(gen)

    assert data["id"] == ["langchain_nanobanana", "runnables", "NanoBananaImageGenerator"]
    assert data["kwargs"] == {"model": "nano-banana-2", "aspect_ratio": "16:9"}
    assert "client" not in text
    assert SIM_TOKEN not in text
    assert client.base_url not in text
    assert SIM_TOKEN not in repr(gen)


@pytest.mark.filterwarnings("ignore:The function `loads` is in beta")
def test_loads_rebuilds_the_generator_with_a_fresh_client(client: NanoBananaClient) -> None:
    gen = NanoBananaImageGenerator(client=client, aspect_ratio="3:4", count=2)

    rebuilt = loads(
        dumps(gen),
        valid_namespaces=["langchain_nanobanana"],
        allowed_objects=[NanoBananaImageGenerator],
    )

    assert isinstance(rebuilt, NanoBananaImageGenerator)
    assert (rebuilt.aspect_ratio, rebuilt.count) == ("3:4", 2)
    assert rebuilt.client is not client  # the client (and its token) never travels
    assert "token=missing" in repr(rebuilt.client)


def test_output_type_and_input_schema(gen: NanoBananaImageGenerator) -> None:
    assert gen.OutputType is ImageResult
    schema = gen.get_input_jsonschema()
    kinds = schema["anyOf"]
    assert {"type": "string"} in kinds
    assert {"additionalProperties": True, "type": "object"} in kinds


@pytest.mark.parametrize("concurrency", [1, 4])
def test_inputs_sharing_an_id_share_one_task(
    sim: FakeNanoBananaServer, tmp_path: Path, concurrency: int
) -> None:
    """Two dict inputs with the same ``id`` (same request) are one paid task, and both slots get
    its result; an ``id`` reused for another request is that slot's error, nothing sent for it."""
    sim.task_duration = 0.2
    with NanoBananaClient(
        sim.token, base_url=sim.base_url, poll_interval=0.05, journal=tmp_path / "j.sqlite"
    ) as client:
        gen = NanoBananaImageGenerator(client=client)
        rows: list[ImageGeneratorInput] = [
            {"id": "a", "prompt": "a red kite"},
            {"id": "b", "prompt": "a blue kite"},
            {"id": "a", "prompt": "a red kite"},
        ]
        results = gen.batch(rows, config={"max_concurrency": concurrency})
        assert [r.status for r in results] == ["succeeded"] * 3
        assert results[0].task_id == results[2].task_id != results[1].task_id
        assert len(sim.requests_to("/nano-banana/images")) == 2
        clash: list[ImageGeneratorInput] = [{"id": "a", "prompt": "a green kite"}]
        out = gen.batch(clash, return_exceptions=True)
        assert isinstance(out[0], IdempotencyKeyMismatchError)
        assert len(sim.requests_to("/nano-banana/images")) == 2
