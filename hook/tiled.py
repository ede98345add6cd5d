"""Tiled detection: the whole frame, plus overlapping tiles of a large one (hook.tiling).

A `Tiled` detector offers what the worker uses of a Detector (fit_for, to_canvas, run,
postprocess), so the worker labels with or without tiles alike. The whole frame goes through
the `whole` detector (one model or the fused pair); each tile through `tiler` at the scale its
canvas gives the tile. What a tile sees that the whole frame already has is the whole frame's;
what only a tile sees is added when it scores at least `tile_score`. Frames the tiling leaves
whole (under 1000 px with `auto`) cost nothing more than the whole detector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image

from hook.detector import Detection, Detects
from hook.fusion import FusionRules, fit, iou, suppress
from hook.tiling import Rect, Tiling, cut_by_inner_edge, grid_for, tiles
from hook.yolo import Letterbox

TilePlace = tuple[Any, Letterbox, Rect]  # a tile's canvas, its placement, and where it lies


class Tiled(Detects):
    """`whole` on every frame, `tiler` on the tiles of large ones; merged per label."""

    def __init__(
        self, whole: Detects, tiler: Detects, tiling: Tiling, *, tile_score: float,
        rules: FusionRules,
    ) -> None:  # fmt: skip
        self.whole, self.tiler, self.tiling = whole, tiler, tiling
        self.tile_score, self.rules = tile_score, rules
        self.canvas = whole.canvas
        self.load_seconds = whole.load_seconds + (0.0 if tiler is whole else tiler.load_seconds)

    def fit_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """A decode large enough for the whole frame's canvas and for every tile's."""
        grid = grid_for(size, self.tiling)
        if grid is None:
            return self.whole.fit_for(size)
        scale = min(
            min(c / (r[2] - r[0]), d / (r[3] - r[1]))
            for r in tiles(size, grid)
            for c, d in [self.tiler.canvas]
        )
        side = math.ceil(max(size) * min(1.0, scale))
        whole = self.whole.fit_for(size)
        return max(side, whole[0]), max(side, whole[1])

    def to_canvas(
        self, image: Image.Image, source: tuple[int, int] | None = None
    ) -> tuple[tuple[Any, tuple[TilePlace, ...]], Letterbox]:
        """The whole frame's canvas, and each tile's (cut from `image`, which may be reduced)."""
        whole, box = self.whole.to_canvas(image, source)
        size = source or image.size
        grid = grid_for(size, self.tiling)
        placed: list[TilePlace] = []
        if grid is not None:
            fx, fy = image.width / size[0], image.height / size[1]
            for rect in tiles(size, grid):
                piece = image.crop(
                    (round(rect[0] * fx), round(rect[1] * fy),
                     round(rect[2] * fx), round(rect[3] * fy))
                )  # fmt: skip
                canvas, where = self.tiler.to_canvas(piece, (rect[2] - rect[0], rect[3] - rect[1]))
                placed.append((canvas, where, rect))
        return (whole, tuple(placed)), box

    def run(self, placed: list[tuple[Any, tuple[TilePlace, ...]]]) -> list[Any]:
        """The whole detector on every frame, the tiler on every tile, each in one call."""
        wholes = self.whole.run([whole for whole, _ in placed])
        pieces = [tile for _, tiled in placed for tile in tiled]
        outputs = list(self.tiler.run([canvas for canvas, _, _ in pieces])) if pieces else []
        out, at = [], 0
        for whole_output, (_, tiled) in zip(wholes, placed, strict=True):
            mine = [(outputs[at + i], where, rect) for i, (_, where, rect) in enumerate(tiled)]
            at += len(tiled)
            out.append((whole_output, mine))
        return out

    def postprocess(self, output: Any, box: Letterbox) -> list[Detection]:
        whole_output, tiled = output
        found = self.whole.postprocess(whole_output, box)
        seen: list[Detection] = []
        for tile_output, where, rect in tiled:
            for d in self.tiler.postprocess(tile_output, where):
                moved = (d.box[0] + rect[0], d.box[1] + rect[1], d.box[2] + rect[0],
                         d.box[3] + rect[1])  # fmt: skip
                if not cut_by_inner_edge(moved, rect, box.source):
                    seen.append(Detection(d.label, d.score, moved))
        return merge(found, seen, self.rules, self.tile_score)


def merge(
    whole: Sequence[Detection], tiled: Sequence[Detection], rules: FusionRules, tile_score: float
) -> list[Detection]:
    """The whole frame's detections, with what the tiles saw at `tile_score` or more.

    Tiles' own duplicates (an object in the overlap of two tiles) go first, by NMS. A tile's
    detection that matches one of the whole frame's (by fusion's IoU or centre rule, label or
    kin) is that object: it keeps the whole frame's box and label, at the better of the two
    scores (a tile sees a small object larger, and surer). One that overlaps whole-frame objects
    of other labels by more than NMS's IoU is one of them named otherwise: the surer name wins.
    The others are added.
    """
    ranked = sorted((d for d in tiled if d.score >= tile_score), key=lambda d: -d.score)
    merged = list(whole)
    for t in suppress(ranked, rules.nms_iou, tile_score, rules):
        fits = [(fit(w.box, t.box, rules), i) for i, w in enumerate(merged)
                if rules.kindred(w.label, t.label)]  # fmt: skip
        how, at = max(fits, default=(0.0, -1))
        if how > 0:
            if t.score > merged[at].score:
                merged[at] = Detection(merged[at].label, t.score, merged[at].box)
            continue
        named = [i for i, w in enumerate(merged) if iou(w.box, t.box) > rules.nms_iou]
        if not named:
            merged.append(t)
            continue
        surest = max(named, key=lambda i: merged[i].score)
        if t.score > merged[surest].score:
            merged[surest] = t
    return sorted(merged, key=lambda d: -d.score)
