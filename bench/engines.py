"""Engines benchmark: the default detector under each HOOK_ENGINE x HOOK_PRECISION here.

For the default fused detector (yolov3-tiny + nanodet-g, built by detector_from as the
worker builds it) under onnxruntime f32 and int8 and OpenVINO f32, bf16 and int8 (those this
machine runs; the others are listed with the ConfigError that refuses them):

- ms/image of the whole detect (letterbox, inference, postprocess) of the repository's decoded
  photos, in `rounds` rounds interleaved finely (each photo through every configuration in turn,
  so load from other processes hits all alike): the best and the median round's mean, and the
  ratio to onnxruntime f32 (the median of the rounds' ratios);
- bench/accuracy.py's figures at the default threshold on the repository's set and the
  held-out set: recall, false labels, photos of nothing labeled, people error.

    .venv/bin/python bench/engines.py [--rounds 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import onnxruntime as ort

from bench.accuracy import MAX_PIXELS, Figures, detect_all, score
from bench.photoset import SETS, Photo, PhotoSetError, repository_set
from bench.stack import cpu
from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.detect.detection import Detects
from hook.errors import ConfigError
from hook.intake.images import decode_image

CONFIGS = (
    ("onnxruntime", "f32"),
    ("onnxruntime", "int8"),
    ("openvino", "f32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
)
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Row:
    """One configuration's figures, or why this machine does not run it."""

    engine: str
    precision: str
    best_ms: float | None = None
    median_ms: float | None = None
    ratio: float | None = None  # to onnxruntime f32, median of per-round ratios
    ratio_range: tuple[float, float] | None = None
    accuracy: dict[str, Figures] | None = None  # photo set name -> figures
    refused: str = ""  # the ConfigError of a configuration not run here

    @property
    def name(self) -> str:
        return f"{self.engine} {self.precision}"


def machine() -> str:
    """The CPU, the flags that decide which arithmetic is fast, and the engines' versions."""
    import openvino  # type: ignore[import-untyped]  # noqa: PLC0415 - as in hook.detect.engines

    name, flags = cpu()
    present = [f for f in FLAGS if f in flags]
    return (
        f"{name} ({', '.join(present) or 'no AVX2'}), onnxruntime {ort.__version__}, "
        f"openvino {openvino.get_version().split('-')[0]}"
    )


def settings_for(engine: str, precision: str, threads: int) -> Settings:
    env = {"HOOK_ENGINE": engine, "HOOK_PRECISION": precision, "HOOK_THREADS": str(threads)}
    return Settings.from_env(env, require_api_key=False)  # the defaults, not this shell's


def timing(detectors: Sequence[Detects], photos: Sequence[Photo], rounds: int) -> list[list[float]]:
    """Per detector, each round's mean ms/image; each photo goes through every one in turn."""
    decoded = [
        decode_image(p.path.read_bytes(), max_pixels=MAX_PIXELS, fit=detectors[0].canvas)
        for p in photos
    ]
    for detector in detectors:
        detector.detect(*decoded[0])  # warm-up
    ms: list[list[float]] = [[] for _ in detectors]
    for _ in range(rounds):
        spent = [0.0] * len(detectors)
        for image, size in decoded:
            for i, detector in enumerate(detectors):
                started = time.perf_counter()
                detector.detect(image, size)
                spent[i] += time.perf_counter() - started
        for i, seconds in enumerate(spent):
            ms[i].append(1000 * seconds / len(decoded))
    return ms


def photo_sets() -> dict[str, list[Photo]]:
    sets = {name: repository_set(name) for name in SETS}
    missing = [p.name for photos in sets.values() for p in photos if not p.path.is_file()]
    if missing:
        raise PhotoSetError(
            f"{len(missing)} photos missing; run: .venv/bin/python -m bench.photoset"
        )
    return sets


def compare(rounds: int = 5, threads: int = 0) -> list[Row]:
    """Every configuration's Row, onnxruntime f32 first (the base of the ratios)."""
    sets = photo_sets()
    built: dict[tuple[str, str], Detects] = {}
    refused: dict[tuple[str, str], str] = {}
    threshold = settings_for("onnxruntime", "f32", threads).thresholds
    for engine, precision in CONFIGS:
        try:
            built[engine, precision] = detector_from(settings_for(engine, precision, threads))
        except ConfigError as exc:
            refused[engine, precision] = str(exc)
    keys = list(built)
    ms = timing([built[k] for k in keys], sets["photos"], rounds)
    base = ms[keys.index(("onnxruntime", "f32"))]
    rows = []
    for engine, precision in CONFIGS:
        if (engine, precision) in refused:
            rows.append(Row(engine, precision, refused=refused[engine, precision]))
            continue
        own = ms[keys.index((engine, precision))]
        ratios = [b / a for a, b in zip(base, own, strict=True)]
        detector = built[engine, precision]
        figures = {
            name: score(photos, detect_all(detector, photos), threshold)
            for name, photos in sets.items()
        }
        spread = (min(ratios), max(ratios))
        rows.append(
            Row(
                engine,
                precision,
                min(own),
                statistics.median(own),
                statistics.median(ratios),
                spread,
                figures,
            )
        )
    return rows


def _figures(f: Figures) -> str:
    people = "-" if f.people_error is None else f"{f.people_error:.2f}"
    return (
        f"{f.recall:.2f} ({f.found}/{f.wanted}) | {f.false_labels} "
        f"| {f.noisy_negatives}/{f.negatives} | {people}"
    )


def table(rows: Sequence[Row]) -> str:
    """One markdown table: time, ratio, and every set's accuracy, side by side."""
    per_set = "| recall | false labels | nothing labeled | people error "
    head = "| engine precision | ms/image best | median | x onnxruntime f32 (range) " + "".join(
        per_set.replace("| recall", f"| {name} recall") for name in SETS
    )
    lines = [head + "|", "|" + " --- |" * (4 + 4 * len(SETS))]
    for r in rows:
        if r.accuracy is None or r.ratio is None or r.ratio_range is None:
            lines.append(f"| {r.name} | not run here: {r.refused} |" + " |" * (2 + 4 * len(SETS)))
            continue
        lines.append(
            f"| {r.name} | {r.best_ms:.1f} | {r.median_ms:.1f} | {r.ratio:.2f} "
            f"({r.ratio_range[0]:.2f}-{r.ratio_range[1]:.2f}) | "
            + " | ".join(_figures(r.accuracy[name]) for name in SETS)
            + " |"
        )
    return "\n".join(lines)


def measure(rounds: int = 3, threads: int = 0) -> list[tuple[str, str]]:
    """Rows for `python -m bench`: per configuration run here, time, ratio and accuracy."""
    rows = []
    for r in compare(rounds, threads):
        label = f"engines, default detector, {r.name}: ms/image (x onnxruntime f32); recall, "
        if r.accuracy is None or r.ratio is None:
            rows.append((label + "false labels", f"not run here: {r.refused}"))
            continue
        ours, held = r.accuracy["photos"], r.accuracy["holdout"]
        rows.append(
            (
                label + "false labels (holdout's)",
                f"{r.median_ms:.1f} ms ({r.ratio:.2f}); {ours.recall:.2f}, {ours.false_labels} "
                f"({held.recall:.2f}, {held.false_labels})",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="HOOK_THREADS of every configuration (0: the engine's default)",
    )
    args = parser.parse_args(argv)
    try:
        rows = compare(args.rounds, args.threads)
    except PhotoSetError as exc:
        print(f"engines: {exc}", file=sys.stderr)
        return 1
    sets = photo_sets()
    counted = ", ".join(f"{name} ({len(photos)})" for name, photos in sets.items())
    print(
        f"{machine()}\nthe default detector, {args.rounds} rounds over the "
        f"{len(sets['photos'])} photos; accuracy on {counted}\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
