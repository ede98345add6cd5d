"""Accuracy benchmark: do the delivered labels name what a person would, and nothing else?

Over a labeled photo set (bench/photoset.py: the repository's set, or a folder of your own photos
with a PHOTO.toml manifest beside each), per detector configuration and score threshold:

- recall: of the things a person would name ("must"), the share named by a delivered label;
- false labels: delivered labels that are neither must nor allow, summed over the photos, and on
  how many photos of nothing ("kind = none") any label at all was delivered;
- people: mean absolute error of the person count, over the photos that give one;
- ms/image: letterbox, inference and postprocessing (every model of a fused configuration).

Labels are what Camio receives: one entry per label and image, so a label counts once per photo.

    .venv/bin/python bench/accuracy.py [DIR] [--set holdout] [--models "a b a+b"]
                                       [--thresholds 0.25,0.35] [--details]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from bench.photoset import SETS, Photo, PhotoSetError, folder_set, repository_set
from bench.stack import cpu
from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.detect.detection import Detection, Detects
from hook.detect.detector import Detector
from hook.detect.ensemble import MEMBER_FLOOR, Ensemble
from hook.detect.thresholds import Thresholds
from hook.errors import ConfigError
from hook.intake.images import decode_image, inspect_image

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
FLOOR = 0.05  # detections are kept down to this score once, then thresholds are applied
MAX_PIXELS = 40_000_000
DEFAULT_CONFIGS = "yolov3-tiny nanodet-g yolov3-tiny+nanodet-g:1,1.5 default"
Threshold = float | Thresholds  # one for every label, or the settings' per label


@dataclass(frozen=True)
class Figures:
    """One configuration at one threshold, over one photo set."""

    recall: float
    found: int
    wanted: int
    false_labels: int
    noisy_negatives: int
    negatives: int
    people_error: float | None
    ms: float


@dataclass(frozen=True)
class Seen:
    """What a configuration found on one photo, down to FLOOR, and how long it took."""

    detections: tuple[Detection, ...]
    ms: float


def delivered(detections: Sequence[Detection], threshold: Threshold) -> dict[str, int]:
    """Label -> count at a threshold (or per-label ones), as the callback body would carry them."""
    limits = _thresholds_of(threshold)
    counts: dict[str, int] = {}
    for d in detections:
        if d.score >= limits.of(d.label):
            counts[d.label] = counts.get(d.label, 0) + 1
    return counts


def _thresholds_of(threshold: Threshold) -> Thresholds:
    return threshold if isinstance(threshold, Thresholds) else Thresholds(threshold)


def score(photos: Sequence[Photo], seen: Sequence[Seen], threshold: Threshold) -> Figures:
    """The figures for one configuration's detections at one threshold."""
    found = wanted = false_labels = noisy = negatives = 0
    errors: list[int] = []
    for photo, result in zip(photos, seen, strict=True):
        labels = delivered(result.detections, threshold)
        wanted += len(photo.must)
        found += sum(1 for group in photo.must if group & labels.keys())
        false_labels += sum(1 for label in labels if label not in photo.acceptable)
        if photo.kind == "none":
            negatives += 1
            noisy += any(label not in photo.acceptable for label in labels)
        if photo.people is not None:
            errors.append(abs(labels.get("person", 0) - photo.people))
    return Figures(
        recall=found / wanted if wanted else 1.0,
        found=found,
        wanted=wanted,
        false_labels=false_labels,
        noisy_negatives=noisy,
        negatives=negatives,
        people_error=statistics.mean(errors) if errors else None,
        ms=statistics.mean(r.ms for r in seen) if seen else 0.0,
    )


def model_path(name: str) -> Path:
    """A model by name (models/NAME.onnx) or by path."""
    path = Path(name)
    return path if path.suffix == ".onnx" else MODELS / f"{name}.onnx"


def detect_all(detector: Detects, photos: Sequence[Photo], repeats: int = 1) -> list[Seen]:
    """Every photo through one detector (its floor at FLOOR), best time of `repeats`."""
    out = []
    for photo in photos:
        data = photo.path.read_bytes()
        info = inspect_image(data, max_pixels=MAX_PIXELS)
        fit = detector.fit_for((info.width, info.height))  # as the worker's Loader decodes
        image, size = decode_image(data, max_pixels=MAX_PIXELS, fit=fit)
        best, found = float("inf"), []
        for _ in range(repeats):
            started = time.perf_counter()
            found = detector.detect(image, size)
            best = min(best, time.perf_counter() - started)
        out.append(Seen(tuple(found), best * 1000))
    return out


def detector_for(spec: str, threads: int = 0) -> Detects:
    """`name`, or `a+b` fused (`a+b:1,1.5` with weights), as the worker would build it."""
    names, _, weights = spec.partition(":")
    if "+" not in names and weights:
        raise ValueError(f"{spec}: weights are for models fused with +")
    if "+" not in names:
        return Detector(model_path(names), min_score=FLOOR, threads=threads)
    members = [
        Detector(model_path(n), min_score=MEMBER_FLOOR, threads=threads) for n in names.split("+")
    ]
    parsed = [float(w) for w in weights.split(",")] if weights else None
    return Ensemble(members, weights=parsed, min_score=FLOOR)


def settings_of(spec: str) -> Settings | None:
    """`default` (the worker's detector from the default settings), or `default:K=V;K=V` with
    HOOK_ settings changed; None for a spec of models (detector_for)."""
    name, _, changes = spec.partition(":")
    if name != "default":
        return None
    env = dict(change.split("=", 1) for change in changes.split(";") if change)
    return Settings.from_env(env, require_api_key=False)


def configuration(spec: str, threshold: float) -> tuple[Detects, Threshold]:
    """A spec's detector and the threshold it reports at: a settings spec's own thresholds."""
    settings = settings_of(spec)
    if settings is None:
        return detector_for(spec), threshold
    detector = detector_from(settings)
    return detector, detector.thresholds  # what the worker reports from


def measure(repeats: int = 2) -> list[tuple[str, str]]:
    """Rows for `python -m bench`: the default detector and each model alone, on every set."""
    rows = []
    default, thresholds = configuration("default", 0.0)
    settings = Settings.from_env({}, require_api_key=False)
    configs: list[tuple[str, Detects, Threshold]] = [
        ("default", default, thresholds),
        *((n, detector_for(n), settings.min_score) for n in ("yolov3-tiny", "nanodet-g")),
    ]
    for name in SETS:
        photos = repository_set(name)
        missing = [p.name for p in photos if not p.path.is_file()]
        if missing:
            raise PhotoSetError(
                f"{len(missing)} photos missing; run: .venv/bin/python -m bench.photoset"
            )
        for label, detector, threshold in configs:
            f = score(photos, detect_all(detector, photos, repeats), threshold)
            rows.append(
                (
                    f"accuracy on {name}, {label} at {shown(threshold)}: recall, false labels, "
                    "ms/image",
                    f"{f.recall:.2f} ({f.found}/{f.wanted}), {f.false_labels} "
                    f"({f.noisy_negatives}/{f.negatives} photos of nothing), {f.ms:.1f} ms",
                )
            )
    return rows


def shown(threshold: Threshold) -> str:
    if isinstance(threshold, float):
        return f"{threshold:.2f}"
    labels = ", ".join(f"{k} {v:g}" for k, v in threshold.labels.items())
    return f"{threshold.default:.2f}" + (f" ({labels})" if labels else "")


def table(rows: Sequence[tuple[str, Threshold, Figures]]) -> str:
    lines = [
        "| configuration | threshold | recall | false labels | photos of nothing labeled "
        "| people error | ms/image |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, threshold, f in rows:
        people = "-" if f.people_error is None else f"{f.people_error:.1f}"
        lines.append(
            f"| {name} | {shown(threshold)} | {f.recall:.2f} ({f.found}/{f.wanted}) "
            f"| {f.false_labels} | {f.noisy_negatives}/{f.negatives} | {people} | {f.ms:.1f} |"
        )
    return "\n".join(lines)


def details(photos: Sequence[Photo], seen: Sequence[Seen], threshold: Threshold) -> str:
    """Per photo: what was delivered, marking misses (-) and false labels (!)."""
    lines = []
    for photo, result in zip(photos, seen, strict=True):
        labels = delivered(result.detections, threshold)
        best: dict[str, float] = {}
        for d in result.detections:
            if d.label in labels:
                best[d.label] = max(best.get(d.label, 0.0), d.score)
        said = [
            f"{'!' if label not in photo.acceptable else ''}{label} x{n} {best[label]:.2f}"
            for label, n in sorted(labels.items())
        ]
        missed = ["-" + "/".join(sorted(g)) for g in photo.must if not g & labels.keys()]
        lines.append(f"  {photo.name:16} {', '.join(said + missed) or '(nothing)'}")
    return "\n".join(lines)


def _thresholds(raw: str) -> list[float]:
    try:
        values = [float(t) for t in raw.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not comma-separated numbers") from None
    if not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{raw!r}: thresholds are scores from 0 to 1")
    return values


def machine() -> str:
    name, flags = cpu()
    wide = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(wide) or 'no AVX2'}), onnxruntime {ort.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="photos with PHOTO.toml manifests")
    parser.add_argument("--set", default="photos", choices=SETS, help="the repository's set")
    parser.add_argument(
        "--models",
        default=DEFAULT_CONFIGS,
        help="space-separated configurations: a model name (models/NAME.onnx) or path, "
        "models fused: a+b, a+b:WEIGHT,WEIGHT, or the worker's detector: default, "
        "default:HOOK_TILES=off;HOOK_MIN_SCORE=0.4 (its own thresholds, not --thresholds)",
    )
    parser.add_argument(
        "--thresholds",
        default="0.25,0.35,0.45",
        type=_thresholds,
        help="comma-separated scores from 0 to 1",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timing: best of this many runs")
    parser.add_argument("--details", action="store_true", help="per-photo labels")
    args = parser.parse_args(argv)
    try:
        photos = folder_set(args.folder) if args.folder else repository_set(args.set)
    except PhotoSetError as exc:
        print(f"accuracy: {exc}", file=sys.stderr)
        return 1
    missing = [p.name for p in photos if not p.path.is_file()]
    if missing:
        print(
            f"accuracy: {len(missing)} photos missing (run: .venv/bin/python -m bench.photoset)",
            file=sys.stderr,
        )
        return 1
    rows: list[tuple[str, Threshold, Figures]] = []
    notes = []
    for name in args.models.split():
        try:
            configs = [configuration(name, t) for t in args.thresholds]
        except (ValueError, ConfigError) as exc:
            print(f"accuracy: {exc}", file=sys.stderr)
            return 1
        detector = configs[0][0]
        if settings_of(name) is not None:
            configs = configs[:1]  # a settings spec reports at its own thresholds
        seen = detect_all(detector, photos, args.repeats)
        rows += [(name, t, score(photos, seen, t)) for _, t in configs]
        if args.details:
            first = configs[0][1]
            notes.append(f"{name} at {shown(first)}:\n{details(photos, seen, first)}")
    print(f"{len(photos)} photos, {machine()}\n")
    print(table(rows))
    for note in notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
