"""Peak RSS growth of one image download, measured in a fresh process (see ``run.py`` (d)).

The simulator that serves the file runs in another process, so its copy of the body never counts
here. A sampler thread reads this process's RSS (``psutil``) every millisecond during the
download; ``ru_maxrss`` (the kernel's high-water mark) is read too, as a second opinion that needs
no sampling.
"""

from __future__ import annotations

import gc
import resource
import tempfile
import threading
import time
from typing import Any

MiB = 2**20


def measure(mode: str, base_url: str, nbytes: int) -> dict[str, Any]:
    """Download ``/files/padded/<nbytes>.png`` from ``base_url`` and report memory growth in MiB.

    Args:
        mode: ``"stream"``: ``ImageResult.download(directory, client=...)`` (the client's
            transport streams the body to disk); ``"naive"``: ``session.get(url).content``
            written to a file, for contrast (shows that the probe does see a body held in
            memory).
        base_url: The simulator's base URL.
        nbytes: Size of the file to download.

    """
    import psutil
    import requests

    from langchain_nanobanana import ImageResult, NanoBananaClient

    proc = psutil.Process()
    session = requests.Session()
    client = NanoBananaClient("rss-probe", base_url=base_url)  # image GETs never carry the token
    url = f"{base_url}/files/padded/{nbytes}.png"
    warm = f"{base_url}/files/padded/{256 * 1024}.png"
    with tempfile.TemporaryDirectory() as directory:

        def fetch(target: str) -> int:
            if mode == "stream":
                result = ImageResult(status="succeeded", images=[{"image_url": target}])
                [path] = result.download(
                    directory, client=client, prefix=f"stream-{len(target)}", max_bytes=nbytes + MiB
                )
                return path.stat().st_size
            body = session.get(target, timeout=(10, 60)).content
            with open(f"{directory}/naive-{len(body)}.png", "wb") as out:
                out.write(body)
            return len(body)

        fetch(warm)  # imports, buffers and the keep-alive connection exist before measuring
        gc.collect()
        baseline = proc.memory_info().rss
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = baseline
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        size = fetch(url)
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        peak = max(peak, proc.memory_info().rss)
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    client.close()
    session.close()
    return {
        "mode": mode,
        "bytes": size,
        "seconds": seconds,
        "baseline_mib": baseline / MiB,
        "peak_growth_mib": (peak - baseline) / MiB,
        "maxrss_growth_mib": max(0, maxrss_after - max(maxrss_before, baseline)) / MiB,
    }
