"""Precision benchmark: does int8 keep the accuracy table while cutting CPU time?

For yolov3-tiny, nanodet-g and the default detector (the two fused, default weights and
threshold): the float32 models against int8 static quantizations of them, built into a temp dir
by onnxruntime's quantize_static (models/quantize.py, which models/build.py int8 uses too) and
calibrated on exactly what the shipped builds are calibrated on (models/int8.py
calibration_photos: the repository's photo set and the camera-like frames where the checkout has
them) letterboxed as hook does it; the holdout set is never calibrated on, only checked. Variants
(--variants, of models/quantize.py VARIANTS; its docstring has the figures that chose the shipped
one):

- conv-rr (shipped): every convolution, Percentile on the photos and their mirror images,
  7-bit weights (reduce_range);
- conv-rr-keep: conv-rr with the first convolution and the heads' 1x1s left float;
- conv-minmax-rr: conv-rr calibrated by MinMax;
- conv-u8u8: uint8 weights (no saturation, but about f32's speed on AVX2);
- conv-percentile: every convolution, Percentile, 8-bit weights (shipped before: on AVX2 without
  VNNI, u8*s8 products saturate and yolov3-tiny loses a quarter of its recall);
- conv-minmax: every convolution, MinMax;
- notail-minmax: every operator except the decode tail (the nodes after the last Conv: sigmoid,
  exp, softmax, box arithmetic), MinMax;
- all-minmax: every operator, the decode tail too (scores share one uint8 range with box
  pixels there, and drop to nothing: kept only to show it).

Printed: the machine (CPU model and the vector flags int8 depends on); per photo set (the
repository's, the holdout and the camera-like frames when fetched) bench/accuracy.py's table at
the default threshold; then for each thread count (--threads) the whole detect's ms/image
(letterbox, inference, postprocess) on the repository's decoded photos, each photo through every
detector in turn so load from other processes hits float and int8 alike: per round (all the
photos once) each detector's mean, best and median of the rounds, and the int8/f32 ratio as the
median of the rounds' ratios and their range; last, one summary line per configuration and
variant with all of it.

    .venv/bin/python bench/precision.py [--variants conv-rr,conv-percentile]
                                        [--repeats 3] [--rounds 6] [--threads 1,2] [--keep DIR]
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
from hook.config.settings import Settings
from hook.detect.detection import Detects
from hook.detect.detector import Detector
from hook.intake.images import decode_image
from models.int8 import SHIPPED, calibration_photos, described
from models.quantize import MAX_PIXELS, VARIANTS, calibration, quantize

SETS = ("photos", "holdout", "cameras")  # cameras: when fetched


def build(
    models: Sequence[Path], names: Sequence[str], photos: Sequence[Path], folder: Path
) -> dict[str, list[Path]]:
    """Variant name -> its int8 copy of each model, in `models` order."""
    built: dict[str, list[Path]] = {}
    for model in models:
        detector = Detector(model)
        for name in names:
            variant = VARIANTS[name]
            batch = calibration(photos, detector, variant.mirror)
            out = folder / f"{model.stem}.{name}.onnx"
            started = time.perf_counter()
            quantize(model, out, variant, batch, detector.input_name)
            shutil.copyfile(model.with_suffix(".names"), out.with_suffix(".names"))
            built.setdefault(name, []).append(out)
            print(
                f"built {out.name} in {time.perf_counter() - started:.0f} s "
                f"(calibrated on {len(batch)} images)",
                flush=True,
            )
    return built


def spec(models: Sequence[Path], weights: Sequence[float]) -> str:
    """A bench/accuracy.py configuration: one model's path, or the models fused."""
    if len(models) == 1:
        return str(models[0])
    return "+".join(str(m) for m in models) + ":" + ",".join(f"{w:g}" for w in weights)


Group = tuple[str, Detects, list[tuple[str, Detects]]]
Speed = tuple[float, float, float, float, float]  # best ms, median ms, ratio: median, min, max


def timing(groups: Sequence[Group], photos: Sequence[Photo], rounds: int) -> dict[str, Speed]:
    """`label name` -> ms/image of detect (best, median of rounds) and its ratio to f32's.

    Interleaved finely: each photo goes through every detector in turn, so a burst of load from
    another process lands on float and int8 alike.
    """
    canvas = groups[0][1].canvas  # every model here letterboxes onto the same one
    decoded = [decode_image(p.path.read_bytes(), max_pixels=MAX_PIXELS, fit=canvas) for p in photos]
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
    speeds: dict[str, Speed] = {}
    for label, f32, int8 in groups:
        base = ms[id(f32)]
        for name, detector in [("f32", f32), *int8]:
            own = ms[id(detector)]
            r = [b / a for a, b in zip(base, own, strict=True)]
            speeds[f"{label} {name}"] = (
                min(own),
                statistics.median(own),
                statistics.median(r),
                min(r),
                max(r),
            )
    return speeds


def speed_lines(speeds: dict[str, Speed]) -> list[str]:
    return [
        f"  {key:34} best {best:6.1f} ms, median {median:6.1f} ms; /f32 {ratio:.2f} "
        f"({low:.2f}-{high:.2f})"
        for key, (best, median, ratio, low, high) in speeds.items()
    ]


def figures(f: Figures) -> str:
    """recall (found/wanted), false labels, photos of nothing labeled: `0.90 (26/29) 6 2/21`."""
    return (
        f"{f.recall:.2f} ({f.found}/{f.wanted}) {f.false_labels} {f.noisy_negatives}/{f.negatives}"
    )


def summary(
    keys: Sequence[str],
    speeds: dict[int, dict[str, Speed]],
    accuracy: dict[str, dict[str, Figures]],
) -> str:
    """One row per configuration and variant: ms/image and ratio per thread count, then the
    figures per photo set."""
    head = [f"{t} thread{'s' if t > 1 else ''}: ms (/f32)" for t in speeds]
    head += [f"{name}: recall, false, empty labeled" for name in accuracy]
    lines = [
        "| configuration | " + " | ".join(head) + " |",
        "| --- |" + " --- |" * len(head),
    ]
    for key in keys:
        cells = [f"{s[key][1]:.1f} ({s[key][2]:.2f})" for s in speeds.values()]
        cells += [figures(rows[key]) for rows in accuracy.values()]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _threads(raw: str) -> list[int]:
    try:
        values = [int(t) for t in raw.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not comma-separated numbers") from None
    if not all(v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{raw!r}: thread counts are 0 (all) or more")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        default=f"{SHIPPED},conv-rr-keep,conv-percentile",
        help=f"comma-separated, of {', '.join(VARIANTS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="table ms: best of this many runs")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds")
    parser.add_argument(
        "--threads",
        type=_threads,
        default=[1, 2],
        help="comma-separated thread counts to time (default 1,2)",
    )
    parser.add_argument("--keep", type=Path, help="write the int8 models here (default: temp)")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    settings = Settings.from_env({}, require_api_key=False)  # the defaults, not this shell's
    models, weights, threshold = settings.models, settings.model_weights, settings.min_score
    sets = {name: repository_set(name) for name in SETS}
    if not all(p.path.is_file() for p in sets["cameras"]):
        del sets["cameras"]  # not fetched (or not all of it): judged on the others
    missing = [p.name for photos in sets.values() for p in photos if not p.path.is_file()]
    photos = calibration_photos()
    if missing or photos is None:
        print(
            "precision: photos missing (run: .venv/bin/python -m bench.photoset)", file=sys.stderr
        )
        return 1
    print(f"{machine()}; threshold {threshold:.2f}, fused weights {weights}")
    print(f"calibration: {described(photos)}, and their mirror images where a variant says\n")
    with tempfile.TemporaryDirectory(prefix="precision-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        built = build(models, names, photos, folder)
        members = [(m.stem, [i]) for i, m in enumerate(models)] + [
            ("fused", list(range(len(models))))
        ]

        def groups(threads: int) -> list[Group]:
            return [
                (
                    label,
                    detector_for(spec([models[i] for i in which], weights), threads),
                    [
                        (
                            f"int8 {n}",
                            detector_for(spec([built[n][i] for i in which], weights), threads),
                        )
                        for n in names
                    ],
                )
                for label, which in members
            ]

        measured = groups(0)
        keys = [
            f"{label} {name}"
            for label, f32, int8 in measured
            for name in ("f32", *(n for n, _ in int8))
        ]
        accuracy: dict[str, dict[str, Figures]] = {}
        for set_name, set_photos in sets.items():
            rows: list[tuple[str, float, Figures]] = []
            for label, f32, int8 in measured:
                for name, detector in [("f32", f32), *int8]:
                    seen = detect_all(detector, set_photos, args.repeats)
                    rows.append((f"{label} {name}", threshold, score(set_photos, seen, threshold)))
            accuracy[set_name] = {key: f for key, _, f in rows}
            print(f"\n{set_name}: {len(set_photos)} photos\n{table(rows)}", flush=True)
        speeds: dict[int, dict[str, Speed]] = {}
        for threads in args.threads:
            speeds[threads] = timing(groups(threads), sets["photos"], args.rounds)
            print(
                f"\nms/image of detect with {threads or 'all'} thread(s), {args.rounds} "
                f"interleaved rounds over the {len(sets['photos'])} photos; int8/f32: median of "
                "per-round ratios (range):"
            )
            print("\n".join(speed_lines(speeds[threads])), flush=True)
        print(f"\nsummary at {threshold:.2f} (median ms/image, ratio to f32):")
        print(summary(keys, speeds, accuracy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
