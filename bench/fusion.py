"""How the default detector's levers were chosen: fusion rules, tiles and thresholds, side by side.

Each model runs once per photo, on the whole frame and on its tiles (bench/accuracy.py's sets,
decoded whole), and every variant below is then scored on those same detections, so a table of
many variants costs one pass of the models. The variants change one lever at a time from the
fusion before this work (weights 1, 1.5, IoU 0.55, one threshold) up to the default; the
`ensemble-boxes` package's weighted boxes fusion (MIT; Solovyev et al.) is compared when it is
installed (`pip install ensemble-boxes`, which brings numba: not one of hook's requirements).

    .venv/bin/python -m bench.fusion [--sets photos,holdout,cameras] [--precision f32]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench.accuracy import Seen as Found
from bench.accuracy import Threshold, machine, score, table
from bench.photoset import Photo, repository_set
from hook.config.pair import DEFAULT_SURE, DEFAULT_WEIGHTS
from hook.config.settings import Settings
from hook.config.table import DEFAULT_MODELS
from hook.detect.detection import Detection
from hook.detect.detector import Detector
from hook.detect.ensemble import FUSION_IOU, FUSION_NEAR, KIN, MEMBER_FLOOR
from hook.detect.fusion import FusionRules, fuse
from hook.detect.thresholds import FLOOR
from hook.detect.tiled import Tiled, merge
from hook.detect.tiling import parse_tiling
from hook.intake.images import decode_image

MAX_PIXELS = 40_000_000
GRIDS = ("auto", "2x1", "3x2")
ALONE = FusionRules((1.0,))  # a tiler's own rules: the merge is the variant's


@dataclass
class Seen:
    """One photo: each model's detections on the whole frame and on each grid's tiles."""

    size: tuple[int, int]
    whole: list[list[Detection]]
    tiled: dict[tuple[str, int], list[Detection]]
    ms: dict[tuple[str, int], float]


def look(photo: Photo, models: Sequence[Detector]) -> Seen:
    image, size = decode_image(photo.path.read_bytes(), max_pixels=MAX_PIXELS)
    seen = Seen(size, [], {}, {})
    for m, model in enumerate(models):
        started = time.perf_counter()
        seen.whole.append(model.detect(image, size))
        seen.ms["whole", m] = (time.perf_counter() - started) * 1000
        for name in GRIDS:
            tiled = Tiled(model, model, parse_tiling(name), tile_score=0.0, rules=ALONE)
            if tiled.windows_of(size) is None:
                continue
            started = time.perf_counter()
            placed, _ = tiled.to_canvas(image, size)
            seen.tiled[name, m] = tiled.in_tiles(tiled.run([placed])[0], size)
            # the whole frame ran again beside the tiles: its time is counted once, above
            seen.ms[name, m] = (time.perf_counter() - started) * 1000 - seen.ms["whole", m]
    return seen


@dataclass(frozen=True)
class Variant:
    """One way of turning a photo's detections into labels."""

    name: str
    rules: FusionRules
    threshold: Threshold
    grid: str | None = None  # tiles by the `tiler`th model, merged at tile_score
    tile_score: float = 0.5
    tiler: int = 0
    wbf: str | None = None  # ensemble-boxes' conf_type, in place of hook.detect.fusion

    def labels(self, seen: Seen) -> tuple[list[Detection], float]:
        fused = _wbf(seen, self) if self.wbf else fuse(seen.whole, self.rules, FLOOR)
        ms = seen.ms["whole", 0] + seen.ms["whole", 1]
        if self.grid and (self.grid, self.tiler) in seen.tiled:
            single = replace(self.rules, weights=(1.0,), sure=())
            fused = merge(fused, seen.tiled[self.grid, self.tiler], single, self.tile_score)
            ms += seen.ms[self.grid, self.tiler]
        return fused, ms


def variants(default: Settings) -> list[Variant]:
    before = FusionRules(DEFAULT_WEIGHTS, nms_iou=default.iou)
    sure = replace(before, sure=DEFAULT_SURE)
    rules = replace(sure, near=FUSION_NEAR, kin=KIN)
    one = default.min_score
    chosen = default.thresholds
    grid = str(default.tiles)
    out = [
        Variant("fusion before (weights 1, 1.5)", before, one),
        Variant("+ a sure model's lone box kept", sure, one),
        Variant("+ near centres and kin labels join", rules, one),
        Variant("+ thresholds per label", rules, chosen),
        Variant("+ tiles 2x1", rules, chosen, "2x1", default.tile_score),
        Variant("+ tiles 3x2", rules, chosen, "3x2", default.tile_score),
        Variant(f"+ tiles {grid} (the default)", rules, chosen, grid, default.tile_score),
        Variant(f"  tiles {grid}, tile score 0.4", rules, chosen, grid, 0.4),
        Variant(f"  tiles {grid}, tile score 0.5", rules, chosen, grid, 0.5),
        Variant(f"  tiles {grid} by nanodet-g, tile score 0.55", rules, chosen, grid, 0.55, 1),
        Variant(f"  tiles {grid} by nanodet-g, tile score 0.65", rules, chosen, grid, 0.65, 1),
    ]
    if _has_wbf():
        out += [
            Variant(f"ensemble-boxes WBF {kind}", before, one, wbf=kind)
            for kind in ("avg", "max", "absent_model_aware_avg")
        ]
        out.append(
            Variant(
                f"ensemble-boxes WBF avg, per label, tiles {grid}",
                rules,
                chosen,
                grid,
                default.tile_score,
                wbf="avg",
            )
        )
    return out


def _has_wbf() -> bool:
    try:
        import ensemble_boxes  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _wbf(seen: Seen, variant: Variant) -> list[Detection]:
    from ensemble_boxes import weighted_boxes_fusion  # noqa: PLC0415

    w, h = seen.size
    names: dict[str, int] = {}
    boxes, scores, labels = [], [], []
    for found in seen.whole:
        kept = found or [Detection("", 0.0, (0.0, 0.0, 1.0, 1.0))]  # it wants no empty list
        boxes.append(
            [
                [max(0.0, min(1.0, v / s)) for v, s in zip(d.box, (w, h, w, h), strict=True)]
                for d in kept
            ]
        )
        scores.append([d.score for d in kept])
        labels.append([names.setdefault(d.label, len(names)) for d in kept])
    fused: Any = weighted_boxes_fusion(
        boxes,
        scores,
        labels,
        weights=list(variant.rules.weights),
        iou_thr=FUSION_IOU,
        skip_box_thr=MEMBER_FLOOR,
        conf_type=variant.wbf,
    )
    label_of = {v: k for k, v in names.items()}
    return [
        Detection(label_of[int(c)], float(s), (b[0] * w, b[1] * h, b[2] * w, b[3] * h))
        for b, s, c in zip(*fused, strict=True)
        if s > 0 and label_of[int(c)]
    ]


def run(sets: Sequence[str], precision: str) -> str:
    models = [Detector(m, min_score=MEMBER_FLOOR, precision=precision) for m in DEFAULT_MODELS]
    default = Settings.from_env({"HOOK_PRECISION": precision}, require_api_key=False)
    chosen = variants(default)
    out = [f"{machine()}, precision {precision}; ms/image from one pass, decode excluded\n"]
    for name in sets:
        photos = [p for p in repository_set(name) if p.path.is_file()]
        seen = [look(p, models) for p in photos]
        rows = []
        for v in chosen:
            found = [v.labels(s) for s in seen]
            figures = score(photos, [Found(tuple(d), ms) for d, ms in found], v.threshold)
            rows.append((v.name, v.threshold, figures))
        out += [f"{name}: {len(photos)} photos", table(rows), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="photos,holdout,cameras")
    parser.add_argument("--precision", default="f32", choices=("f32", "int8", "bf16"))
    args = parser.parse_args(argv)
    print(run(args.sets.split(","), args.precision))
    return 0


if __name__ == "__main__":
    sys.exit(main())
