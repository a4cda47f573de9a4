"""LangChain integration of the Nano Banana Images API (Gemini image generation and editing).

Importing this package does no network, starts nothing, and pulls in no optional dependency.
Names are imported lazily, on first use (PEP 562 module ``__getattr__``): ``import
langchain_nanobanana`` costs almost nothing, the ``nanobanana`` command line starts without
``langchain_core``, and ``from langchain_nanobanana import X`` works for every name of
``__all__`` (static type checkers read the ``TYPE_CHECKING`` block below).

.. code-block:: python

    from langchain_nanobanana import NanoBananaImageGenerator

    result = NanoBananaImageGenerator(aspect_ratio="2:3").invoke("a white siamese cat")
    result.urls
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_nanobanana.client import NanoBananaClient
    from langchain_nanobanana.errors import (
        SAFE_TO_RETRY,
        APIConnectionError,
        APIResponseValidationError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ContentModerationError,
        InsufficientBalanceError,
        InvalidImageError,
        InvalidRequestError,
        NanoBananaAPIError,
        NanoBananaError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseTooLargeError,
        ServerError,
        SubmissionUncertainError,
        TaskFailedError,
        TaskTimeoutError,
    )
    from langchain_nanobanana.models import (
        ASPECT_RATIOS,
        MODELS,
        RESOLUTIONS,
        ImageRequest,
        ModelInfo,
    )
    from langchain_nanobanana.results import GeneratedImage, ImageResult, TaskRecord
    from langchain_nanobanana.runnables import NanoBananaImageGenerator
    from langchain_nanobanana.tools import (
        NanoBananaEditTool,
        NanoBananaGenerateTool,
        NanoBananaTaskTool,
        NanoBananaToolkit,
    )

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "NanoBananaClient": "client",
    **dict.fromkeys(
        (
            "SAFE_TO_RETRY",
            "APIConnectionError",
            "APIResponseValidationError",
            "AuthenticationError",
            "BadRequestError",
            "ConfigurationError",
            "ContentModerationError",
            "InsufficientBalanceError",
            "InvalidImageError",
            "InvalidRequestError",
            "NanoBananaAPIError",
            "NanoBananaError",
            "NotFoundError",
            "PermissionDeniedError",
            "RateLimitError",
            "ResponseTooLargeError",
            "ServerError",
            "SubmissionUncertainError",
            "TaskFailedError",
            "TaskTimeoutError",
        ),
        "errors",
    ),
    **dict.fromkeys(
        ("ASPECT_RATIOS", "MODELS", "RESOLUTIONS", "ImageRequest", "ModelInfo"), "models"
    ),
    **dict.fromkeys(("GeneratedImage", "ImageResult", "TaskRecord"), "results"),
    "NanoBananaImageGenerator": "runnables",
    **dict.fromkeys(
        (
            "NanoBananaEditTool",
            "NanoBananaGenerateTool",
            "NanoBananaTaskTool",
            "NanoBananaToolkit",
        ),
        "tools",
    ),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first access and keep it in the module's namespace."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ASPECT_RATIOS",
    "MODELS",
    "RESOLUTIONS",
    "SAFE_TO_RETRY",
    "APIConnectionError",
    "APIResponseValidationError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentModerationError",
    "GeneratedImage",
    "ImageRequest",
    "ImageResult",
    "InsufficientBalanceError",
    "InvalidImageError",
    "InvalidRequestError",
    "ModelInfo",
    "NanoBananaAPIError",
    "NanoBananaClient",
    "NanoBananaEditTool",
    "NanoBananaError",
    "NanoBananaGenerateTool",
    "NanoBananaImageGenerator",
    "NanoBananaTaskTool",
    "NanoBananaToolkit",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskRecord",
    "TaskTimeoutError",
    "__version__",
]
