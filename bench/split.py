"""Where a labeled image's CPU goes, stage by stage, for the default detector.

In this process, single-threaded sessions (HOOK_THREADS=1), over the test photos: CPU
milliseconds per image (time.process_time, every thread of the process) to decode the JPEG at
the size the detector needs, letterbox it (and its tiles), run the models, turn their outputs
into boxes (decoding, NMS, fusion, tiles merged), and make the labels (rules, Camio's JSON).
Pictures cost labeling nothing (drawn on a look: bench/pictures.py). What the worker spends on
MongoDB and HTTP comes from bench/worker.py --no-inference (`python -m bench` puts them side
by side).

    .venv/bin/python -m bench.split [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from bench.worker import PHOTOS, header_size
from hook.callbacks.labels import camio_labels
from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.detect.detection import Detects
from hook.intake.images import decode_image
from hook.rules.ruleset import RulesFile

MAX_PIXELS = 40_000_000
STAGES = ("decode", "letterbox", "detect", "fusion", "labels")


def cpu_ms(fn: Callable[[], object], rounds: int) -> float:
    """CPU milliseconds of one call (every thread), the mean of `rounds` after a warm-up."""
    fn()
    started = time.process_time()
    for _ in range(rounds):
        fn()
    return (time.process_time() - started) * 1000 / rounds


def measure(rounds: int = 3) -> dict[str, float]:
    """Mean CPU ms per image of each stage over the photos."""
    detector = detector_from(Settings.from_env({"HOOK_THREADS": "1"}, require_api_key=False))
    per_photo = [stages(path.read_bytes(), detector, rounds) for path in PHOTOS]
    return {stage: sum(p[stage] for p in per_photo) / len(per_photo) for stage in STAGES}


def stages(data: bytes, detector: Detects, rounds: int) -> dict[str, float]:
    """One photo's CPU ms per stage, each stage timed on the previous one's result."""
    rules = RulesFile.open(None).current()
    fit = detector.fit_for(header_size(data))
    image, size = decode_image(data, max_pixels=MAX_PIXELS, fit=fit)
    placed, box = detector.to_canvas(image, size)
    (output,) = detector.run([placed])
    found = detector.postprocess(output, box)

    def labels() -> str:
        kept, _ = rules.apply("bench", "t", found, size, detector.thresholds)
        return json.dumps(camio_labels([("t", size, kept)]), separators=(",", ":"))

    return {
        "decode": cpu_ms(lambda: decode_image(data, max_pixels=MAX_PIXELS, fit=fit), rounds),
        "letterbox": cpu_ms(lambda: detector.to_canvas(image, size), rounds),
        "detect": cpu_ms(lambda: detector.run([placed]), rounds),
        "fusion": cpu_ms(lambda: detector.postprocess(output, box), rounds),
        "labels": cpu_ms(labels, rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    split = measure(args.rounds)
    print(f"CPU ms per image, default detector, one-thread sessions, {len(PHOTOS)} photos:")
    for stage, ms in split.items():
        print(f"  {stage:>10}: {ms:6.1f}")
    print(f"  {'total':>10}: {sum(split.values()):6.1f}")


if __name__ == "__main__":
    main()
