"""The vendor's documents and packages this package follows: one table, title and URL each.

Docstrings, ``--help`` texts and the README cite these in prose by title and URL (for example
"the Nano Banana Images API reference,
https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d"); this table
collects them so a reader can follow every citation from one place. Where the vendor's documents
say nothing, a behaviour is this package's (or the simulator's) own choice and is labelled so.

Nothing imports this module at run time; ``tests/unit_tests/test_sources.py`` checks that every
URL cited in the package's docstrings is one of these.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SOURCES", "Source"]


class Source(NamedTuple):
    """One vendor document or package.

    Attributes:
        key: Short name used in this table only (never in citations).
        title: The document's title as the vendor gives it, or the package name.
        url: Where to read it (``https://``); ``None`` for a package known by its name only.
        covers: What this package takes from it.

    """

    key: str
    title: str
    url: str | None
    covers: str


#: Every vendor source cited in this package, in the order a reader needs them.
SOURCES: tuple[Source, ...] = (
    Source(
        "images_reference",
        "Nano Banana Images API (API reference)",
        "https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d",
        "POST /nano-banana/images: every parameter, its enum values and defaults; image_urls "
        "forms and the 10 MB limit; 'resolution only works when model is nano-banana-pro'",
    ),
    Source(
        "images_guide",
        "Nano Banana Images API Integration Guide",
        "https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e",
        "base URL, bearer token, the three documented models, callback_url, the answer shapes, "
        "the error table (400 token_mismatched / api_not_implemented, 401, 429, 500)",
    ),
    Source(
        "tasks_reference",
        "Nano Banana Tasks API (API reference)",
        "https://platform.acedata.cloud/documents/617810f5-081f-4866-a21a-cededecb0ccd",
        "POST /nano-banana/tasks",
    ),
    Source(
        "tasks_guide",
        "Nano Banana Tasks API Integration Guide",
        "https://platform.acedata.cloud/documents/e01ef840-3158-4eec-a6e7-337dada8d155",
        "retrieve (id) and the task record's fields",
    ),
    Source(
        "overview",
        "Nano Banana Image Generation API (service overview)",
        "https://platform.acedata.cloud/services/44fa6ed2-1ad1-4c7e-a8bd-30002728c0d1",
        "the Images API and the Tasks API paths",
    ),
    Source(
        "mirror_guide",
        "Nano Banana Images API integration guide on the XHuoAPI mirror (Traditional Chinese)",
        "https://docs.xhuoapi.ai",
        "the mirror's base URL https://api.xhuoapi.ai/v1 (a base URL with a path)",
    ),
    Source(
        "sdk",
        "acedatacloud (the vendor's Python SDK)",
        "https://github.com/AceDataCloud/SDK/tree/main/python",
        "the extra models (nano-banana-2-lite, nano-banana-2.1, the :official variants), "
        "async submission, ACEDATACLOUD_API_TOKEN, the error-code map (token_expired, no_token, "
        "used_up, disabled, 402, 403), error given as a string, null or missing",
    ),
    Source(
        "mcp",
        "mcp-nanobanana-pro (the vendor's MCP server)",
        "https://github.com/AceDataCloud/MCPs/tree/main/nanobanana",
        "'Media generation typically takes 1-5 minutes'; retrieve_batch; "
        "ACEDATACLOUD_API_BASE_URL; which models take 2K/4K; count; aspect_ratio and resolution "
        "sent on edit",
    ),
    Source(
        "cli",
        "nano-banana-pro-cli (the vendor's command line)",
        "https://github.com/AceDataCloud/NanoBananaCli",
        "short options (-m, -a, -r, -n, -i, -o), retrieve_batch, ACEDATACLOUD_API_BASE_URL, "
        "which models take 2K/4K, count",
    ),
    Source(
        "langchain",
        "langchain-nano-banana-acedatacloud (the vendor's LangChain package)",
        None,
        "which models take 2K/4K; count",
    ),
)
