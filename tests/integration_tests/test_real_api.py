"""The real Nano Banana Images API: generate a 1:1 image, then edit it.

Billable (two generations). Skipped unless ``ACEDATACLOUD_API_TOKEN`` is set; the base URL comes
from ``ACEDATACLOUD_API_BASE_URL`` when set (e.g. the mirror ``https://api.xhuoapi.ai/v1``).
Run with ``pytest -m real_api tests/integration_tests``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_nanobanana import AuthenticationError, ImageResult, NanoBananaClient
from tests.helpers import image_size

pytestmark = [
    pytest.mark.real_api,
    pytest.mark.enable_socket,  # pytest-socket otherwise allows loopback only
    pytest.mark.timeout(1500),  # generation takes 30-120+ s, sometimes more
    pytest.mark.skipif(
        not os.environ.get("ACEDATACLOUD_API_TOKEN"),
        reason="needs ACEDATACLOUD_API_TOKEN (real, billable API calls)",
    ),
]


@pytest.fixture(scope="module")
def client() -> Iterator[NanoBananaClient]:
    with NanoBananaClient(poll_interval=3.0, max_poll_interval=10.0, max_wait=600.0) as c:
        yield c


@pytest.fixture(scope="module")
def generated(client: NanoBananaClient) -> ImageResult:
    return client.generate(
        "A flat vector illustration of a yellow banana on a plain blue background",
        aspect_ratio="1:1",
    )


def test_generate_square(client: NanoBananaClient, generated: ImageResult, tmp_path: Path) -> None:
    assert generated.status == "succeeded"
    assert generated.task_id and generated.trace_id
    assert len(generated.urls) == 1 and generated.urls[0].startswith(("https://", "http://"))
    record = client.get_task(generated.task_id)
    assert record.status == "succeeded" and record.result is not None
    assert record.result.urls == generated.urls
    assert not {"user_id", "credential_id", "application_id", "api_id"} & set(record.raw or {})
    (path,) = generated.download(tmp_path, client=client)
    size = image_size(path.read_bytes())
    assert size is not None and size[0] == size[1]


def test_edit_the_generated_image(
    client: NanoBananaClient, generated: ImageResult, tmp_path: Path
) -> None:
    assert generated.status == "succeeded"
    edited = client.edit("Make the background bright red; keep the banana", generated.urls)
    assert edited.status == "succeeded" and edited.urls
    assert edited.task_id != generated.task_id
    (path,) = client.download(edited, tmp_path)
    size = image_size(path.read_bytes())
    assert size is not None and size[0] == size[1]  # the first image decides the shape


def test_wrong_token_is_an_authentication_error() -> None:
    with NanoBananaClient("not-a-valid-token") as bad, pytest.raises(AuthenticationError) as info:
        bad.get_task("00000000-0000-0000-0000-000000000000")
    assert info.value.status_code == 401 and info.value.code == "invalid_token"
    assert "not-a-valid-token" not in str(info.value)
