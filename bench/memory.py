"""Memory at the limits: the web at the largest body, the worker at the largest image.

1. Web: one gunicorn worker process; its peak RSS (VmHWM) after start, after a body at
   HOOK_MAX_BODY made of real JPEGs (accepted), after 8 such bodies sent at once (and its
   RSS 20 s later), and after a body of the same size made of millions of tiny JSON values
   (`[{},{},...]`, refused before parsing).
2. Worker: in a fresh process, the peak RSS rise of decoding the largest image accepted by
   default (HOOK_MAX_IMAGE_PIXELS as an RGBA PNG, the costliest format) onto the model's canvas.

    .venv/bin/python bench/memory.py
"""

from __future__ import annotations

import base64
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from bench.stack import Stack, peak_rss_mb, rss_mb
from hook.config.settings import Settings
from tests.procs import children_of

AT_ONCE = 8  # bodies sent together (the web lets 4 large ones in at once: hook/web/admission.py)
SETTLE_SECONDS = 20.0

MAKE = """
import sys
import numpy as np
from PIL import Image
side = int(sys.argv[1])
pixels = np.random.default_rng(0).integers(0, 255, (side, side, 4), dtype=np.uint8) // 64 * 64
Image.fromarray(pixels, "RGBA").save(sys.argv[2], "PNG", compress_level=1)
"""
DECODE = """
import resource, sys
from pathlib import Path
from hook.intake.images import decode_image
data = Path(sys.argv[2]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decode_image(data, max_pixels=int(sys.argv[1]) ** 2, fit=(416, 416))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(data), (after - before) / 1024)
"""


def noisy_jpeg(width: int, height: int, seed: int) -> bytes:
    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def web_figures(limit: int) -> list[tuple[str, str]]:
    rows = []
    with Stack(web_workers=1, HOOK_MAX_BODY=str(limit)) as stack:
        assert stack.web is not None  # started by the `with`
        (worker,) = children_of(stack.web.pid)
        rows.append(("web worker peak RSS after start", f"{peak_rss_mb(worker):.0f} MB"))
        images: list[dict[str, str]] = []
        size = 0
        while True:
            jpeg = noisy_jpeg(1600, 1200, len(images))
            if size + len(jpeg) * 4 // 3 + 1000 > limit or len(images) >= 64:
                break
            images.append(
                {
                    "timestamp": f"2026-12-01T12:00:{len(images):02d}",
                    "image_b64": base64.b64encode(jpeg).decode(),
                }
            )
            size += len(jpeg) * 4 // 3 + 100
        body = json.dumps({"callback_url": "http://127.0.0.1:9/cb", "images": images}).encode()
        answer = requests.post(stack.url, data=body, timeout=60)
        rows.append(
            (
                f"web: a {len(body) / 2**20:.1f} MiB event of {len(images)} JPEGs "
                f"({answer.status_code})",
                f"peak RSS {peak_rss_mb(worker):.0f} MB",
            )
        )
        rows.append(at_once(stack.url, body, worker, AT_ONCE))
        bomb = b"[" + b"{}," * ((limit - 2) // 3) + b"{}]"
        answer = requests.post(stack.url, data=bomb, timeout=60)
        rows.append(
            (
                f"web: a {len(bomb) / 2**20:.1f} MiB body of tiny JSON values "
                f"({answer.status_code})",
                f"peak RSS {peak_rss_mb(worker):.0f} MB",
            )
        )
    return rows


def at_once(url: str, body: bytes, worker: int, count: int) -> tuple[str, str]:
    """`count` such bodies sent together: what the admission let in, the peak, and the RSS
    SETTLE_SECONDS later."""
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: requests.post(url, data=body, timeout=120), range(count)))
    peak = peak_rss_mb(worker)
    time.sleep(SETTLE_SECONDS)
    answered = Counter(answer.status_code for answer in answers)
    statuses = ", ".join(f"{n} x {status}" for status, n in sorted(answered.items()))
    return (
        f"web: {count} such events at once ({statuses})",
        f"peak RSS {peak:.0f} MB, {rss_mb(worker):.0f} MB {SETTLE_SECONDS:.0f} s after",
    )


def decode_figure(pixels: int) -> tuple[str, str]:
    """Made in one process, decoded in a fresh one: the rise is the decode's alone."""
    side, root = int(pixels**0.5), Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        png = str(Path(tmp) / "big.png")
        subprocess.run([sys.executable, "-c", MAKE, str(side), png], check=True, cwd=root)
        out = subprocess.run(
            [sys.executable, "-c", DECODE, str(side), png],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
    size, rise = out.stdout.split()
    return (
        f"worker: decoding a {side}x{side} RGBA PNG ({int(size) / 1e6:.0f} MB) onto the canvas",
        f"peak RSS +{float(rise):.0f} MB",
    )


def main() -> None:
    defaults = Settings.from_env({}, require_api_key=False)
    # the decode first: measured after the web's run it came out +0 MB, unexplained
    rows = [decode_figure(defaults.max_image_pixels), *web_figures(defaults.max_body)]
    print("| figure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
