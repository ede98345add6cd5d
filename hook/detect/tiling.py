"""Tiles: a large frame cut into overlapping pieces, so small distant objects reach the model at
several times the scale the whole frame's letterbox leaves them (a 60 px person in a 1920x1080
frame is 13 px on a 416 canvas, 34 px on a 3x2 tile's).

Pure math on sizes and boxes: which grid a frame gets, the tiles' rectangles, and which boxes a
tile may report (not those cut by an edge it shares with a neighbour, which sees them whole).
hook.detect.tiled runs the models and merges what the tiles see with the whole frame's detections.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

Grid = tuple[int, int]  # columns, rows
Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels

AUTO_FROM = 1000  # under `auto`, a frame whose longer side is at least this gets tiles
AUTO_TILE = 700  # ... cut so each tile's longer side is at most about this many pixels
AUTO_MOST = 6  # ... in at most this many tiles
OVERLAP = 0.2  # of a tile's width (height) shared with its neighbour
EDGE = 0.01  # a box within this fraction of a tile's side of an inner edge was cut by it
MIN_TILE = 32  # pixels: a grid that would cut a frame finer than this leaves it whole
_GRID = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Tiling:
    """How frames are tiled: never (`off`), by size (`auto`), or always by one grid."""

    mode: str  # "off", "auto" or "grid"
    grid: Grid = (1, 1)

    def __str__(self) -> str:
        return f"{self.grid[0]}x{self.grid[1]}" if self.mode == "grid" else self.mode


def parse_tiling(text: str) -> Tiling:
    """`off`, `auto` or a grid `COLSxROWS` (e.g. `3x2`); ValueError naming what is wrong."""
    word = text.strip().lower()
    if word in ("off", "auto"):
        return Tiling(word)
    match = _GRID.match(word)
    if not match:
        raise ValueError(f"{text!r} is not off, auto or a grid such as 3x2")
    cols, rows = int(match[1]), int(match[2])
    if not (1 <= cols <= 8 and 1 <= rows <= 8) or cols * rows < 2:
        raise ValueError(f"{text!r}: a grid has 2 to 64 tiles, 1 to 8 a side")
    return Tiling("grid", (cols, rows))


def grid_for(size: tuple[int, int], tiling: Tiling) -> Grid | None:
    """The grid a frame of `size` (w, h) is cut into, or None for the whole frame alone.

    `auto` leaves frames under AUTO_FROM alone and cuts larger ones into tiles of at most
    about AUTO_TILE pixels a side, but never more than AUTO_MOST of them.
    """
    w, h = size
    if tiling.mode == "grid":  # a frame too small to cut is looked at whole
        cols, rows = tiling.grid
        return tiling.grid if min(w / cols, h / rows) >= MIN_TILE else None
    if tiling.mode == "off" or max(w, h) < AUTO_FROM:
        return None
    # n tiles with overlap cover n - (n - 1) * OVERLAP tile lengths
    cols, rows = (max(1, math.ceil((s / AUTO_TILE - OVERLAP) / (1 - OVERLAP))) for s in (w, h))
    while cols * rows > AUTO_MOST:  # take a tile from the side whose tiles are the smaller
        if rows > 1 and (cols == 1 or (w / cols, cols) > (h / rows, rows)):
            rows -= 1
        else:
            cols -= 1
    return (cols, rows) if cols * rows > 1 else None


def tiles(size: tuple[int, int], grid: Grid, overlap: float = OVERLAP) -> list[Rect]:
    """The grid's rectangles over a frame of `size`, row by row, neighbours sharing `overlap`."""
    w, h = size
    xs = _spans(w, grid[0], overlap)
    ys = _spans(h, grid[1], overlap)
    return [(x1, y1, x2, y2) for y1, y2 in ys for x1, x2 in xs]


def _spans(length: int, count: int, overlap: float) -> list[tuple[int, int]]:
    """`count` equal spans over 0..length, each sharing `overlap` of its length with the next."""
    if count == 1:
        return [(0, length)]
    span = length / (count - (count - 1) * overlap)
    step = span * (1 - overlap)
    return [(round(i * step), min(length, round(i * step + span))) for i in range(count)]


@dataclass(frozen=True)
class Windows:
    """A frame's tiles as windows of the model's canvas on the frame shrunk once by `scale`:
    one resize of the frame instead of one per tile, and no resize of any tile."""

    scale: float  # shrunk size over the frame's
    size: tuple[int, int]  # the shrunk frame's
    rects: tuple[Rect, ...]  # the windows, in the shrunk frame's pixels


def windows(size: tuple[int, int], grid: Grid, canvas: tuple[int, int]) -> Windows:
    """The grid's tiles (as `tiles` cuts them) at the scale the canvas gives them, as windows
    the canvas's size spread evenly over the shrunk frame (neighbours share at least OVERLAP)."""
    first = tiles(size, grid)[0]
    scale = min(canvas[0] / (first[2] - first[0]), canvas[1] / (first[3] - first[1]))
    shrunk = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    xs = _starts(shrunk[0], canvas[0], grid[0])
    ys = _starts(shrunk[1], canvas[1], grid[1])
    rects = tuple(
        (x, y, min(x + canvas[0], shrunk[0]), min(y + canvas[1], shrunk[1])) for y in ys for x in xs
    )
    return Windows(scale, shrunk, rects)


def _starts(length: int, window: int, count: int) -> list[int]:
    """Where `count` windows of `window` pixels start to cover 0..length evenly."""
    if count == 1 or length <= window:
        return [0]
    step = (length - window) / (count - 1)
    return [round(i * step) for i in range(count)]


def cut_by_inner_edge(
    box: tuple[float, float, float, float], tile: Rect, size: tuple[int, int]
) -> bool:
    """True when `box` (frame pixels) touches a side of `tile` that lies inside the frame.

    A neighbouring tile overlaps that side and sees such an object whole (as the whole frame
    does a large one), so the cut piece is dropped rather than counted as a second object.
    """
    x1, y1, x2, y2 = tile
    w, h = size
    mx, my = EDGE * (x2 - x1), EDGE * (y2 - y1)
    return (
        (x1 > 0 and box[0] <= x1 + mx)
        or (y1 > 0 and box[1] <= y1 + my)
        or (x2 < w and box[2] >= x2 - mx)
        or (y2 < h and box[3] >= y2 - my)
    )
