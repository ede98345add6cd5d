"""Tiled detection: the whole frame, plus overlapping tiles of a large one (hook.detect.tiling).

A `Tiled` detector offers what the worker uses of a Detector (fit_for, to_canvas, run,
postprocess), so the worker labels with or without tiles alike. The whole frame goes through
the `whole` detector (one model or the fused pair); each tile through `tiler` at the scale its
canvas gives the tile (`merge` says how the two are one list). Frames the tiling leaves whole
(under 1000 px with `auto`) cost nothing more than the whole detector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hook.detect.detection import Detection, Detects
from hook.detect.fusion import FusionRules, fit, suppress
from hook.detect.pixels import Picture, pixels_of, resized, size_of
from hook.detect.tiling import Tiling, Windows, cut_by_inner_edge, grid_for, windows
from hook.detect.yolo import Letterbox

Tiles = tuple[Windows, tuple[tuple[Any, Letterbox], ...]]  # the windows, each's canvas


class Tiled(Detects):
    """`whole` on every frame, `tiler` on the tiles of large ones; merged per label."""

    def __init__(
        self,
        whole: Detects,
        tiler: Detects,
        tiling: Tiling,
        *,
        tile_score: float,
        rules: FusionRules,
    ) -> None:
        self.whole, self.tiler, self.tiling = whole, tiler, tiling
        self.tile_score, self.rules = tile_score, rules
        self.canvas = whole.canvas
        members = getattr(whole, "members", (whole,))  # the tiler is usually one of them
        self.load_seconds = whole.load_seconds + (0.0 if tiler in members else tiler.load_seconds)

    def windows_of(self, size: tuple[int, int]) -> Windows | None:
        grid = grid_for(size, self.tiling)
        return None if grid is None else windows(size, grid, self.tiler.canvas)

    def fit_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """A decode large enough for the whole frame's canvas and for the tiles' scale."""
        whole = self.whole.fit_for(size)
        # `size` may be the header's, before EXIF turns the image: cover either orientation
        scales = [w.scale for w in (self.windows_of(size), self.windows_of(size[::-1])) if w]
        if not scales:
            return whole
        side = math.ceil(max(size) * max(scales))  # square: either orientation fits
        return max(side, whole[0]), max(side, whole[1])

    def to_canvas(
        self, image: Picture, source: tuple[int, int] | None = None
    ) -> tuple[tuple[Any, Tiles | None], Letterbox]:
        """The whole frame's canvas, and each tile's window on the frame shrunk once
        (`image` may be a reduced decode of the frame: `source` is the frame's size)."""
        pixels = pixels_of(image)
        size = source or size_of(pixels)
        tiled = self.windows_of(size)
        if tiled is None:
            whole, box = self.whole.to_canvas(pixels, source)
            return (whole, None), box
        shrunk = resized(pixels, tiled.size)
        # the whole frame's canvas from the shrunk frame (less to resize), unless it needs more
        enough = tiled.scale >= min(c / s for c, s in zip(self.whole.canvas, size, strict=True))
        whole, box = self.whole.to_canvas(shrunk if enough else pixels, size)
        views = tuple(
            self.tiler.to_canvas(shrunk[y1:y2, x1:x2], None) for x1, y1, x2, y2 in tiled.rects
        )
        return (whole, (tiled, views)), box

    def run(self, placed: list[tuple[Any, Tiles | None]]) -> list[Any]:
        """The whole detector on every frame, the tiler on every tile, each in one call."""
        wholes = self.whole.run([whole for whole, _ in placed])
        canvases = [view[0] for _, tiled in placed if tiled for view in tiled[1]]
        outputs = list(self.tiler.run(canvases)) if canvases else []
        out, at = [], 0
        for whole_output, (_, tiled) in zip(wholes, placed, strict=True):
            count = len(tiled[1]) if tiled else 0
            out.append((whole_output, tiled, outputs[at : at + count]))
            at += count
        return out

    def postprocess(self, output: Any, box: Letterbox) -> list[Detection]:
        whole_output = output[0]
        found = self.whole.postprocess(whole_output, box)
        return merge(found, self.in_tiles(output, box.source), self.rules, self.tile_score)

    def in_tiles(self, output: Any, size: tuple[int, int]) -> list[Detection]:
        """What the tiles saw, in the pixels of a frame of `size`, less boxes cut by an edge
        shared with another tile (that neighbour, or the whole frame, sees the object whole)."""
        _, tiled, outputs = output
        if tiled is None:
            return []
        windows_, views = tiled
        seen: list[Detection] = []
        for tile_output, (_, where), rect in zip(outputs, views, windows_.rects, strict=True):
            for d in self.tiler.postprocess(tile_output, where):
                moved = (
                    d.box[0] + rect[0],
                    d.box[1] + rect[1],
                    d.box[2] + rect[0],
                    d.box[3] + rect[1],
                )
                if not cut_by_inner_edge(moved, rect, windows_.size):
                    seen.append(Detection(d.label, d.score, _in_frame(moved, windows_, size)))
        return seen


def _in_frame(
    box: tuple[float, float, float, float], shrunk: Windows, size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A box on the shrunk frame in the frame's pixels (per axis: the shrunk size is rounded)."""
    fx, fy = size[0] / shrunk.size[0], size[1] / shrunk.size[1]
    return (
        max(0.0, box[0] * fx),
        max(0.0, box[1] * fy),
        min(float(size[0]), box[2] * fx),
        min(float(size[1]), box[3] * fy),
    )


def merge(
    whole: Sequence[Detection], tiled: Sequence[Detection], rules: FusionRules, tile_score: float
) -> list[Detection]:
    """The whole frame's detections, with what the tiles saw at `tile_score` or more.

    Tiles' own duplicates (an object in the overlap of two tiles) go first, by NMS. A tile's
    detection that matches one of the whole frame's (by fusion's IoU or centre rule, label or
    kin) is that object, and the surer of the two stays (a tile sees a small object larger, so
    its box is the tighter). The others are added: a rider and her horse overlap, and are two.
    """
    ranked = sorted((d for d in tiled if d.score >= tile_score), key=lambda d: -d.score)
    merged = list(whole)
    for t in suppress(ranked, rules.nms_iou, tile_score, rules):
        fits = [
            (fit(w.box, t.box, rules), i)
            for i, w in enumerate(merged)
            if rules.kindred(w.label, t.label)
        ]
        how, at = max(fits, default=(0.0, -1))
        if how == 0:
            merged.append(t)
        elif t.score > merged[at].score:
            merged[at] = t
    return sorted(merged, key=lambda d: -d.score)
