"""Precision benchmark: does int8 keep the accuracy table while cutting CPU time?

For yolov3-tiny, nanodet-g and the default detector (the two fused, default weights and
threshold): the float32 models against int8 static quantizations of them, built into a temp dir
by onnxruntime's quantize_static (uint8 activations, int8 per-channel weights, QDQ format) and
calibrated on the repository's photo set (bench/photos) letterboxed as hook does it
(models/quantize.py, which models/build.py int8 uses too); the holdout set is never
calibrated on, only checked. Variants (--variants):

- conv-minmax: the convolutions only, MinMax calibration;
- conv-percentile: the convolutions only, Percentile calibration on the photos and their mirror
  images (bench/detector.py's variant, and the shipped int8 builds');
- notail-minmax: every operator except the decode tail (the nodes after the last Conv: sigmoid,
  exp, softmax, box arithmetic), MinMax;
- all-minmax: every operator, the decode tail too (scores share one uint8 range with box
  pixels there, and drop to nothing: kept only to show it).

Printed per photo set (the repository's and the holdout): bench/accuracy.py's table (recall,
false labels, photos of nothing labeled, people error, ms/image best of --repeats) at the
default threshold; then the int8/f32 time ratio of the whole detect (letterbox, inference,
postprocess) on the repository's decoded photos, each photo through every detector in turn so
load from other processes hits float and int8 alike: per round (all the photos once) the
ratio of the means, then the median of the rounds' ratios and their range.

    .venv/bin/python bench/precision.py [--variants conv-minmax,conv-percentile]
                                        [--repeats 3] [--rounds 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.accuracy import (
    Figures,
    detect_all,
    detector_for,
    machine,
    score,
    table,
)
from bench.photoset import Photo, repository_set
from hook.detector import Detector
from hook.ensemble import Ensemble
from hook.images import decode_image
from hook.settings import Settings
from models.quantize import MAX_PIXELS, VARIANTS, calibration, quantize


def build(
    models: Sequence[Path], names: Sequence[str], photos: Sequence[Photo], folder: Path
) -> dict[str, list[Path]]:
    """Variant name -> its int8 copy of each model, in `models` order."""
    built: dict[str, list[Path]] = {}
    for model in models:
        detector = Detector(model)
        for name in names:
            variant = VARIANTS[name]
            batch = calibration([p.path for p in photos], detector, variant.mirror)
            out = folder / f"{model.stem}.{name}.onnx"
            started = time.perf_counter()
            quantize(model, out, variant, batch, detector.input_name)
            shutil.copyfile(model.with_suffix(".names"), out.with_suffix(".names"))
            built.setdefault(name, []).append(out)
            print(f"built {out.name} in {time.perf_counter() - started:.0f} s "
                  f"(calibrated on {len(batch)} images)", flush=True)  # fmt: skip
    return built


def spec(models: Sequence[Path], weights: Sequence[float]) -> str:
    """A bench/accuracy.py configuration: one model's path, or the models fused."""
    if len(models) == 1:
        return str(models[0])
    return "+".join(str(m) for m in models) + ":" + ",".join(f"{w:g}" for w in weights)


Group = tuple[str, Detector | Ensemble, list[tuple[str, Detector | Ensemble]]]


def timing(groups: Sequence[Group], photos: Sequence[Photo], rounds: int) -> list[str]:
    """Lines of f32 and int8 ms/image (medians over rounds) and int8/f32 per round.

    Interleaved finely: each photo goes through every detector in turn, so a burst of load from
    another process lands on float and int8 alike.
    """
    canvas = groups[0][1].canvas  # every model here letterboxes onto the same one
    decoded = [decode_image(p.path.read_bytes(), max_pixels=MAX_PIXELS, fit=canvas)
               for p in photos]  # fmt: skip
    every = [d for _, f32, int8 in groups for d in (f32, *(d for _, d in int8))]
    for detector in every:
        detector.detect(*decoded[0])  # warm-up
    ms: dict[int, list[float]] = {id(d): [] for d in every}
    for _ in range(rounds):
        spent = dict.fromkeys(ms, 0.0)
        for image, size in decoded:
            for detector in every:
                started = time.perf_counter()
                detector.detect(image, size)
                spent[id(detector)] += time.perf_counter() - started
        for key, seconds in spent.items():
            ms[key].append(1000 * seconds / len(decoded))
    lines = []
    for label, f32, int8 in groups:
        base = ms[id(f32)]
        for name, detector in int8:
            own = ms[id(detector)]
            r = [b / a for a, b in zip(base, own, strict=True)]
            lines.append(
                f"  {label + ' ' + name:32} f32 {statistics.median(base):6.1f} ms, int8 "
                f"{statistics.median(own):6.1f} ms: {statistics.median(r):.2f} "
                f"({min(r):.2f}-{max(r):.2f})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="conv-minmax,conv-percentile,notail-minmax",
                        help=f"comma-separated, of {', '.join(VARIANTS)}")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="table ms: best of this many runs")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds")
    parser.add_argument("--keep", type=Path, help="write the int8 models here (default: temp)")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    settings = Settings.from_env({}, require_api_key=False)  # the defaults, not this shell's
    models, weights, threshold = settings.models, settings.model_weights, settings.min_score
    sets = {name: repository_set(name) for name in ("photos", "holdout")}
    missing = [p.name for photos in sets.values() for p in photos if not p.path.is_file()]
    if missing:
        print(f"precision: {len(missing)} photos missing (run: .venv/bin/python -m bench.photoset)",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"{machine()}; threshold {threshold:.2f}, fused weights {weights}\n")
    with tempfile.TemporaryDirectory(prefix="precision-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        built = build(models, names, sets["photos"], folder)
        members = [(m.stem, [i]) for i, m in enumerate(models)] + [
            ("fused", list(range(len(models))))
        ]
        groups: list[Group] = [
            (label, detector_for(spec([models[i] for i in which], weights)),
             [(f"int8 {n}", detector_for(spec([built[n][i] for i in which], weights)))
              for n in names])
            for label, which in members
        ]  # fmt: skip
        for set_name, photos in sets.items():
            rows: list[tuple[str, float, Figures]] = []
            for label, f32, int8 in groups:
                for name, detector in [("f32", f32), *int8]:
                    seen = detect_all(detector, photos, args.repeats)
                    rows.append((f"{label} {name}", threshold, score(photos, seen, threshold)))
            print(f"\n{set_name}: {len(photos)} photos\n{table(rows)}", flush=True)
        print(
            f"\nms/image of detect, {args.rounds} interleaved rounds over the "
            f"{len(sets['photos'])} photos; int8/f32: median of per-round ratios (range):"
        )
        print("\n".join(timing(groups, sets["photos"], args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
