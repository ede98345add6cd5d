"""What tiles cost: ms per image of the worker's detector by frame size, tiles on and off.

Per frame size (camera frames of the repository's cameras set, JPEG-encoded as cameras send
them), the time from JPEG bytes to detections as the worker's Loader and lane spend it: decode
at the size the detector asks for (`fit_for`), letterbox, every model's runs, fusion, tiles and
their merge. Configurations are settings; each is timed in interleaved rounds (median of the
rounds' means), and given as a ratio to the first configuration measured in the same run.

    .venv/bin/python -m bench.tiles [--rounds 5] [--config "HOOK_TILES=off" ...]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Sequence

from PIL import Image

from bench.accuracy import machine
from bench.photoset import repository_set
from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.detect.detection import Detects
from hook.intake.images import decode_image, inspect_image

MAX_PIXELS = 40_000_000
SIZES = ((768, 576), (1280, 720), (1920, 1080), (3840, 2160))
CONFIGS = (
    "HOOK_TILES=off;HOOK_LABEL_SCORES=;HOOK_PRECISION=int8",  # the default before tiles
    "HOOK_TILES=off",
    "",  # the default
)


def frames(size: tuple[int, int], count: int = 3) -> list[bytes]:
    """Up to `count` camera frames at `size` (larger ones scaled down to it), as JPEG bytes."""
    out = []
    for photo in repository_set("cameras"):
        if not photo.path.is_file() or not photo.must:
            continue
        with Image.open(photo.path) as image:
            if image.width < size[0] or abs(image.width / image.height - size[0] / size[1]) > 0.1:
                continue
            resized = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        data = io.BytesIO()
        resized.save(data, format="JPEG", quality=90)
        out.append(data.getvalue())
        if len(out) == count:
            break
    return out


def once(detector: Detects, data: bytes) -> float:
    started = time.perf_counter()
    info = inspect_image(data, max_pixels=MAX_PIXELS)
    image, size = decode_image(
        data, max_pixels=MAX_PIXELS, fit=detector.fit_for((info.width, info.height))
    )
    detector.detect(image, size)
    return (time.perf_counter() - started) * 1000


def settings_of(config: str) -> Settings:
    env = dict(pair.split("=", 1) for pair in config.split(";") if pair)
    return Settings.from_env(env, require_api_key=False)


def run(configs: Sequence[str], rounds: int) -> str:
    detectors = [detector_from(settings_of(c)) for c in configs]
    lines = [
        f"{machine()}; ms per image from JPEG bytes, median of {rounds} interleaved rounds\n",
        "| frame | " + " | ".join(c or "default" for c in configs) + " |",
        "| --- |" + " --- |" * len(configs),
    ]
    for size in SIZES:
        images = frames(size)
        if not images:
            continue
        means: list[list[float]] = [[] for _ in configs]
        for detector in detectors:  # warm up: first runs pay allocations
            once(detector, images[0])
        for _ in range(rounds):
            for i, detector in enumerate(detectors):
                means[i].append(statistics.mean(once(detector, d) for d in images))
        ms = [statistics.median(m) for m in means]
        cells = [f"{m:.0f} ({m / ms[0]:.1f}x)" for m in ms]
        lines.append(f"| {size[0]}x{size[1]} ({len(images)} frames) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", action="append", help="settings K=V;K=V (repeatable)")
    args = parser.parse_args(argv)
    print(run(args.config or list(CONFIGS), args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
