"""Zones: where a box stands in Camio's coordinates, and points inside, outside and on the edge."""

from __future__ import annotations

import pytest

from hook.rules.zones import area, box_area, contains, first_containing, standing_point

BOTTOM_BAND = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3))  # the example zone
TRIANGLE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))
L_SHAPE = ((0.0, 0.0), (0.6, 0.0), (0.6, 0.2), (0.2, 0.2), (0.2, 0.6), (0.0, 0.6))


def test_standing_point_is_the_bottom_centre_with_the_origin_bottom_left() -> None:
    size = (640, 480)  # not square: x and y scale differently
    assert standing_point((100, 80, 300, 480), size) == (200 / 640, 0.0)  # feet on the bottom row
    assert standing_point((0, 0, 64, 48), size) == (32 / 640, 0.9)  # near the top of the image
    assert standing_point((600, 0, 640, 240), size) == (620 / 640, 0.5)


def test_standing_point_of_a_box_reaching_past_the_image_is_on_its_edge() -> None:
    assert standing_point((-40, 10, 20, 500), (640, 480)) == (0.0, 0.0)


def test_box_area_is_a_fraction_of_the_image() -> None:
    assert box_area((0, 0, 64, 48), (640, 480)) == pytest.approx(0.01)
    assert box_area((10, 10, 5, 20), (640, 480)) == 0.0  # inverted: no area


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.5, 0.1), True),
        ((0.5, 0.3), True),  # on the top edge
        ((0.0, 0.15), True),  # on the left edge
        ((1.0, 0.3), True),  # on a vertex
        ((0.0, 0.0), True),  # on the corner of the image
        ((0.5, 0.3000001), False),  # just above the edge
        ((1.0000001, 0.1), False),
        ((0.5, 0.5), False),
    ],
)
def test_a_band_holds_its_inside_and_its_edges(point: tuple[float, float], inside: bool) -> None:
    assert contains(BOTTOM_BAND, point) is inside


def test_a_point_on_the_edge_computed_from_pixels_is_on_it() -> None:
    feet = standing_point((0, 0, 100, 210), (300, 300))
    assert feet[1] != 0.3  # 1 - 210/300 is not exactly 0.3 in floating point
    assert contains(BOTTOM_BAND, feet)


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.5, 0.5), True),  # on the slanted edge
        ((0.0, 1.0), True),  # its top vertex
        ((0.25, 0.25), True),
        ((0.5, 0.5001), False),
        ((0.7, 0.7), False),
    ],
)
def test_a_triangle_holds_its_slanted_edge(point: tuple[float, float], inside: bool) -> None:
    assert contains(TRIANGLE, point) is inside


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.1, 0.5), True),
        ((0.5, 0.1), True),
        ((0.4, 0.4), False),  # in the notch of the L
        ((0.2, 0.4), True),  # on the notch's edge
        ((0.2, 0.2), True),  # on the inner corner
    ],
)
def test_a_concave_zone(point: tuple[float, float], inside: bool) -> None:
    assert contains(L_SHAPE, point) is inside


def test_first_containing_names_the_first_zone_holding_the_point() -> None:
    zones = [TRIANGLE, BOTTOM_BAND]
    assert first_containing(zones, (0.9, 0.05)) == 0
    assert first_containing(zones, (0.9, 0.2)) == 1
    assert first_containing(zones, (0.9, 0.9)) is None
    assert first_containing([], (0.5, 0.5)) is None


def test_area() -> None:
    assert area(BOTTOM_BAND) == pytest.approx(0.3)
    assert area(L_SHAPE) == pytest.approx(0.6 * 0.2 + 0.2 * 0.4)
    assert area(((0.0, 0.0), (0.5, 0.5), (1.0, 1.0))) == 0.0  # on one line
