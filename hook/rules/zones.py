"""Zones: polygons in Camio's coordinates, and where a detected object stands in them.

Camio's coordinates are fractions of the image, 0..1, origin at the BOTTOM-LEFT (y grows
upwards), as in the labels' polygons; detections are pixel boxes with a top-left origin. An
object stands at the bottom-centre of its box (its feet, a car's wheels), so that is the point
a zone is tested with: a person whose head reaches into a zone is not standing in it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]
Polygon = tuple[Point, ...]

# A point this close to an edge is on it: fractions from pixels are not exact (1 - 210/300 is
# 0.30000000000000004), and "on the edge counts as inside" must hold for such a point too.
EDGE = 1e-9


def standing_point(box: tuple[float, float, float, float], size: tuple[int, int]) -> Point:
    """The bottom-centre of a pixel box (x1, y1, x2, y2) as a Camio point, kept inside 0..1."""
    width, height = size
    x = (box[0] + box[2]) / 2 / width
    y = 1 - box[3] / height
    return (_unit(x), _unit(y))


def box_area(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    """A pixel box's area as a fraction of the image's (0 for an inverted box)."""
    width, height = size
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]) / (width * height)


def contains(polygon: Sequence[Point], point: Point) -> bool:
    """Whether `point` is inside `polygon` or on its edge (even-odd rule for crossing ones)."""
    edges = list(zip(polygon, [*polygon[1:], polygon[0]], strict=True))
    if any(_on_segment(a, b, point) for a, b in edges):
        return True
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in edges:
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def first_containing(polygons: Sequence[Sequence[Point]], point: Point) -> int | None:
    """The index of the first polygon holding `point`, or None."""
    return next((n for n, polygon in enumerate(polygons) if contains(polygon, point)), None)


def area(polygon: Sequence[Point]) -> float:
    """The polygon's area (shoelace; 0 when its points lie on one line)."""
    pairs = zip(polygon, [*polygon[1:], polygon[0]], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2
    t = min(1.0, max(0.0, t))
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy)) <= EDGE


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
