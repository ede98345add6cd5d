"""Tiles of large frames: the grid a frame gets, the rectangles, and the cut boxes dropped."""

from __future__ import annotations

import pytest

from hook.detect.tiling import Tiling, cut_by_inner_edge, grid_for, parse_tiling, tiles

AUTO = Tiling("auto")


def test_the_setting_is_off_auto_or_a_grid() -> None:
    assert parse_tiling("auto") == AUTO and parse_tiling(" OFF ") == Tiling("off")
    assert parse_tiling("3x2") == Tiling("grid", (3, 2)) and str(parse_tiling("3X2")) == "3x2"
    for bad in ("3", "3x", "x2", "0x2", "1x1", "9x1", "three"):
        with pytest.raises(ValueError, match=r"grid|off, auto"):
            parse_tiling(bad)


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((768, 576), None),  # under 1000 px: the whole frame alone, nothing extra
        ((999, 999), None),
        ((1280, 720), (3, 2)),  # 3x2 found one more thing than 2x1 on the camera frames
        ((1920, 1080), (3, 2)),
        ((1080, 1920), (2, 3)),  # a portrait frame turns the grid
        ((3840, 2160), (3, 2)),  # 4K: tiles larger, never more than 6
        ((4096, 4096), (2, 3)),  # square: a column goes first, as a portrait frame's would
        ((2042, 1021), (4, 1)),
        ((1021, 2042), (1, 4)),  # the same frame turned gets the same grid turned
    ],
)
def test_auto_tiles_large_frames_into_at_most_six_tiles(
    size: tuple[int, int], grid: tuple[int, int] | None
) -> None:
    assert grid_for(size, AUTO) == grid
    assert grid_for(size, Tiling("off")) is None
    assert grid_for(size, Tiling("grid", (2, 2))) == (2, 2)


def test_a_grid_leaves_a_frame_too_small_to_cut_whole() -> None:
    assert grid_for((1, 1), Tiling("grid", (3, 2))) is None
    assert grid_for((1000, 1), Tiling("grid", (2, 3))) is None
    assert grid_for((64, 64), Tiling("grid", (2, 2))) == (2, 2)


@pytest.mark.parametrize(
    ("size", "grid"), [((1920, 1080), (3, 2)), ((1280, 720), (2, 1)), ((1001, 1003), (4, 3))]
)
def test_tiles_cover_the_frame_and_neighbours_overlap(
    size: tuple[int, int], grid: tuple[int, int]
) -> None:
    rects = tiles(size, grid)
    assert len(rects) == grid[0] * grid[1]
    w, h = size
    assert all(0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h for x1, y1, x2, y2 in rects)
    points = [(x, y) for x in [*range(0, w, 7), w - 1] for y in [*range(0, h, 7), h - 1]]
    assert all(any(r[0] <= x < r[2] and r[1] <= y < r[3] for r in rects) for x, y in points)
    # each neighbour shares about 20% of a tile's width
    first, second = rects[0], rects[1]
    shared = first[2] - second[0]
    assert shared == pytest.approx(0.2 * (first[2] - first[0]), abs=2)
    assert rects[-1][2] == w and rects[-1][3] == h


def test_a_box_cut_by_an_edge_inside_the_frame_is_dropped_not_one_on_the_frames_border() -> None:
    size = (1920, 1080)
    left_top = (0, 0, 738, 600)  # the first of a 3x2 grid: its right and bottom sides are inner
    assert cut_by_inner_edge((700.0, 100.0, 738.0, 200.0), left_top, size)  # at the right side
    assert cut_by_inner_edge((100.0, 550.0, 150.0, 600.0), left_top, size)  # at the bottom
    assert not cut_by_inner_edge((0.0, 0.0, 50.0, 80.0), left_top, size)  # the frame's corner
    assert not cut_by_inner_edge((300.0, 200.0, 400.0, 400.0), left_top, size)  # inside
