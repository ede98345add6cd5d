"""Annotated pictures benchmark: bytes per stored picture and milliseconds to make one.

On test photos of several sizes, each decoded as the worker would (a reduced JPEG decode to
`picture_fit` of the default detector's canvas) and with the default detector's own boxes: the
picture's size and bytes at a few JPEG qualities, the time to draw and encode it against the
detector's time on the same image, and what decoding for the picture costs over decoding for the
canvas alone.

    .venv/bin/python bench/pictures.py [--seconds 1] [--save DIR]
"""

from __future__ import annotations

import argparse
import io
import statistics
from functools import partial
from pathlib import Path

from PIL import Image

from bench.detector import per_call
from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.intake.images import decode_image
from hook.worker.drawing import QUALITY, annotate, picture_fit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PHOTOS = [DATA / "person.jpg", DATA / "dog.jpg", DATA / "kite.jpg"] + [
    DATA / "photos" / name
    for name in (
        "bus.jpg",
        "touchline.jpg",
        "group-of-three.jpg",
        "storm.jpg",
        "marigold.jpg",
        "planks.jpg",
    )
]
QUALITIES = (65, 70, QUALITY, 80, 90)
MAX_PIXELS = 40_000_000


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per measurement")
    parser.add_argument("--save", type=Path, help="write each annotated picture into this folder")
    args = parser.parse_args()
    detector = detector_from(Settings.from_env({}, require_api_key=False))
    canvas = detector.canvas
    print(f"canvas {canvas[0]}x{canvas[1]}, JPEG quality {QUALITY} unless shown, KB = 1000 B\n")
    heads = ["photo", "source", "picture", "boxes", *(f"KB q{q}" for q in QUALITIES)]
    print(" ".join(f"{h:>10}" for h in [*heads, "draw ms", "detect ms", "ratio", "decode+ms"]))
    sizes: list[int] = []
    for path in PHOTOS:
        data = path.read_bytes()
        fit = picture_fit(canvas, size_of(data))
        image, source = decode_image(data, max_pixels=MAX_PIXELS, fit=fit)
        found = detector.detect(image, source)
        jpegs = {q: annotate(image, source, found, quality=q) for q in QUALITIES}
        sizes.append(len(jpegs[QUALITY]))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{path.stem}.jpg").write_bytes(jpegs[QUALITY])
        drawn = per_call(partial(annotate, image, source, found), args.seconds)
        detected = per_call(partial(detector.detect, image, source), args.seconds)
        decode = partial(decode_image, data, max_pixels=MAX_PIXELS)
        extra = per_call(partial(decode, fit=fit), args.seconds) - per_call(
            partial(decode, fit=canvas), args.seconds
        )
        picture = size_of(jpegs[QUALITY])
        cells = [path.stem[:10], "x".join(map(str, source)), "x".join(map(str, picture))]
        cells += [str(len(found)), *(f"{len(jpegs[q]) / 1000:.0f}" for q in QUALITIES)]
        cells += [f"{drawn * 1000:.1f}", f"{detected * 1000:.1f}", f"{drawn / detected:.2f}"]
        print(" ".join(f"{c:>10}" for c in [*cells, f"{extra * 1000:+.1f}"]))
    print(f"\nmean bytes per picture at quality {QUALITY}: {statistics.mean(sizes) / 1000:.0f} KB")


if __name__ == "__main__":
    main()
