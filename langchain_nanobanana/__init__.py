"""LangChain integration of the Nano Banana Images API (Gemini image generation and editing).

Importing this package does no network, starts nothing, and pulls in no optional dependency.

.. code-block:: python

    from langchain_nanobanana import NanoBananaImageGenerator

    result = NanoBananaImageGenerator(aspect_ratio="2:3").invoke("a white siamese cat")
    result.urls
"""

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
from langchain_nanobanana.models import ASPECT_RATIOS, MODELS, RESOLUTIONS, ImageRequest, ModelInfo
from langchain_nanobanana.results import GeneratedImage, ImageResult, TaskRecord
from langchain_nanobanana.runnables import NanoBananaImageGenerator
from langchain_nanobanana.tools import (
    NanoBananaEditTool,
    NanoBananaGenerateTool,
    NanoBananaTaskTool,
    NanoBananaToolkit,
)

__version__ = "0.1.0"

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
