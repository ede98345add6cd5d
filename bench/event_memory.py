"""A worker's memory for the largest events: peak RSS while labeling, and RSS after.

One worker.py (the default settings) labels events of `--images` images of `--side` x `--side`
pixels each (PNGs of a few flat colours, so a 64-image event of 4096 px frames is a body of a
few MiB, as in the hostile-events report), posted through the web: the worker's RSS before,
its peak (VmHWM) once the last callback came, and its RSS 20 s later. Then `--at-once` such
events posted together.

    .venv/bin/python -m bench.event_memory [--images 64] [--side 4096] [--at-once 3]
"""

from __future__ import annotations

import argparse
import base64
import io
import time

import numpy as np
import requests
from PIL import Image

from bench.stack import Stack, peak_rss_mb, rss_mb
from tests.receiver import Receiver

SETTLE_SECONDS = 20.0


def png(side: int, seed: int) -> bytes:
    """A side x side RGB PNG of four flat quarters: real pixels to decode, few bytes to send."""
    colours = np.random.default_rng(seed).integers(0, 255, (2, 2, 3), dtype=np.uint8)
    pixels = np.kron(colours, np.ones((side // 2, side // 2, 1), dtype=np.uint8))
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG", compress_level=9)
    return out.getvalue()


def event(receiver: Receiver, path: str, images: int, side: int, seed: int) -> dict:
    return {
        "callback_url": receiver.url(path),
        "camera": "bench",
        "images": [
            {
                "timestamp": f"2026-12-05T00:{n // 60:02d}:{n % 60:02d}.000000",
                "image_b64": base64.b64encode(png(side, seed * 1000 + n)).decode(),
            }
            for n in range(images)
        ],
    }


def measure(images: int, side: int, at_once: int) -> list[str]:
    receiver = Receiver(keep_alive=True)
    lines = []
    try:
        with Stack(web_workers=1, HOOK_MAX_IMAGE_PIXELS=str(side * side)) as stack:
            stack.start_workers(1)
            worker = stack.workers[0]
            time.sleep(5)  # models loaded
            start = rss_mb(worker.pid)
            for label, count in (("one event", 1), (f"{at_once} events at once", at_once)):
                where = f"/{count}-at-once"
                bodies = [event(receiver, f"{where}/{n}", images, side, n) for n in range(count)]
                size = sum(len(str(b)) for b in bodies) / count / 2**20
                for body in bodies:  # the web answers at once; the worker takes them together
                    answer = requests.post(stack.url, json=body, timeout=120)
                    assert answer.status_code == 200, answer.text
                for n in range(count):
                    receiver.wait_for(f"{where}/{n}", 1, timeout=900)
                peak = peak_rss_mb(worker.pid)
                time.sleep(SETTLE_SECONDS)
                lines.append(
                    f"  {label} of {images} images of {side}x{side} ({size:.1f} MiB a body): "
                    f"worker RSS {start:.0f} MB at start, peak {peak:.0f} MB, "
                    f"{rss_mb(worker.pid):.0f} MB {SETTLE_SECONDS:.0f} s after"
                )
    finally:
        receiver.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--at-once", type=int, default=3)
    args = parser.parse_args()
    print("worker memory for the largest events (peak: VmHWM since the worker started):")
    for line in measure(args.images, args.side, args.at_once):
        print(line)


if __name__ == "__main__":
    main()
