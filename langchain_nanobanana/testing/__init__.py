"""A faithful loopback simulator of the Nano Banana Images API, for tests, demos and benchmarks.

Standard library only; importing this package starts nothing::

    from langchain_nanobanana.testing import FakeNanoBananaServer

    with FakeNanoBananaServer(task_duration=0.2) as sim:
        client = NanoBananaClient("sim-token", base_url=sim.base_url)
        ...

Standalone: ``python -m langchain_nanobanana.testing --port 8765``.
"""

from langchain_nanobanana.testing._png import make_png, padded_png, png_size
from langchain_nanobanana.testing._state import RecordedRequest
from langchain_nanobanana.testing._validate import ASPECT_SIZES, HIRES_MODELS, MODELS
from langchain_nanobanana.testing.server import FakeNanoBananaServer
from langchain_nanobanana.testing.webhook import WebhookReceiver

__all__ = [
    "ASPECT_SIZES",
    "HIRES_MODELS",
    "MODELS",
    "FakeNanoBananaServer",
    "RecordedRequest",
    "WebhookReceiver",
    "make_png",
    "padded_png",
    "png_size",
]
