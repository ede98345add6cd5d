"""Annotated pictures on the real photos: size, aspect ratio, where the boxes land, the labels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from hook.detect.detection import Detection
from hook.intake.images import decode_image
from hook.pictures.drawing import MAX_SIDE, PALETTE, annotate, label_colours, tag_origin
from tests.factories import DATA

PHOTOS = DATA / "photos"
MAX_PIXELS = 40_000_000
# 640x424, 773x512, 1352x900, 810x1080 (portrait), 1280x720, 1920x1280, 2560x1600
SIZES = [DATA / "person.jpg", DATA / "eagle.jpg", DATA / "kite.jpg"] + [
    PHOTOS / name for name in ("bus.jpg", "touchline.jpg", "group-of-three.jpg", "dandelion.jpg")
]

needs_photos = pytest.mark.skipif(
    not PHOTOS.is_dir(), reason="needs the photo set: bash scripts/setup.sh --test"
)


def decoded(path: Path, fit: tuple[int, int] | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """The photo as the gallery decodes it: reduced to what the picture needs."""
    return decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, fit=fit or (MAX_SIDE, MAX_SIDE))


def opened(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


def changed(before: bytes, after: bytes) -> tuple[int, int, int, int]:
    """The bounding box of the pixels the drawing changed clearly (past JPEG's noise)."""
    diff = ImageChops.difference(opened(before), opened(after)).convert("L")
    box = diff.point(lambda v: 255 if v > 40 else 0).getbbox()
    assert box is not None, "nothing was drawn"
    return box


def person(box: tuple[float, float, float, float], score: float = 0.93) -> Detection:
    return Detection("person", score, box)


@needs_photos
@pytest.mark.parametrize("path", SIZES, ids=lambda p: p.stem)
def test_a_jpeg_of_the_same_aspect_ratio_at_most_max_side(path: Path) -> None:
    image, source = decoded(path)
    w, h = source
    picture = opened(annotate(image, source, [person((w * 0.2, h * 0.2, w * 0.6, h * 0.9))]))
    assert picture.format == "JPEG" and picture.mode == "RGB"
    assert max(picture.size) == min(MAX_SIDE, max(source))  # shrunk to fit, never enlarged
    assert abs(picture.size[1] - picture.size[0] * h / w) <= 1


def test_a_small_or_reduced_image_is_never_enlarged() -> None:
    image, source = decoded(DATA / "person.jpg")
    assert opened(annotate(image, source, [])).size == source == (640, 424)
    reduced, source = decoded(DATA / "kite.jpg", fit=(338, 225))  # a quarter-size decode
    assert reduced.size == (338, 225) and source == (1352, 900)
    assert opened(annotate(reduced, source, [])).size == (338, 225)


def test_the_box_is_drawn_where_the_detection_is() -> None:
    image, source = decoded(DATA / "person.jpg")  # 640x424, drawn at that size
    box = (200.0, 150.0, 400.0, 380.0)
    empty, drawn = annotate(image, source, []), annotate(image, source, [person(box)])
    left, top, right, bottom = changed(empty, drawn)
    assert abs(left - 200) <= 2 and abs(right - 401) <= 2 and abs(bottom - 381) <= 2
    assert 150 - 40 < top < 150 - 10  # the label strip sits on the box's top edge
    before, after = (np.asarray(opened(jpeg)).astype(int) for jpeg in (empty, drawn))
    for x, y in [(200, 300), (399, 300), (300, 379)]:  # on the box's lines: coloured
        assert np.abs(after[y, x] - before[y, x]).sum() > 90
    for x, y in [(100, 300), (300, 260), (500, 50)]:  # outside it and in its middle: untouched
        assert (after[y, x] == before[y, x]).all()


def test_the_label_is_written_on_its_strip() -> None:
    image, source = decoded(DATA / "person.jpg")
    box = (200.0, 150.0, 400.0, 380.0)
    empty = annotate(image, source, [])
    plain = annotate(image, source, [Detection("person", 0.93, box)])
    longer = annotate(image, source, [Detection("person with a long name", 0.93, box)])
    left, top, _, _ = changed(empty, plain)
    strip = np.asarray(opened(plain).crop((left + 2, top + 2, left + 60, 148))).reshape(-1, 3)
    colour = np.array(label_colours(["person"])["person"])
    on_strip = np.abs(strip.astype(int) - colour).sum(axis=1) < 60
    assert on_strip.mean() > 0.4  # the strip is the box's colour...
    assert (strip.min(axis=1) > 200).mean() > 0.05 or (strip.max(axis=1) < 60).mean() > 0.05
    assert changed(plain, longer)[2] > 260  # ...with the text in white or black on it


def test_a_reduced_decode_puts_the_boxes_where_the_full_one_does() -> None:
    box = (520.0, 180.0, 980.0, 700.0)  # original pixels of kite.jpg (1352x900)
    fractions = []
    for fit in [(1352, 900), (676, 450), (338, 225)]:  # whole, half and quarter decodes
        image, source = decoded(DATA / "kite.jpg", fit=fit)
        assert image.size == fit and source == (1352, 900)
        empty, drawn = annotate(image, source, []), annotate(image, source, [person(box)])
        size = opened(drawn).size
        left, _, right, bottom = changed(empty, drawn)
        fractions.append((left / size[0], right / size[0], bottom / size[1]))
    for got in fractions:
        for a, b in zip(got, (520 / 1352, 980 / 1352, 700 / 900), strict=True):
            assert abs(a - b) < 0.015, fractions


def test_lines_and_labels_grow_with_the_picture() -> None:
    heights = []
    for fit in [(338, 225), (1352, 900)]:
        image, source = decoded(DATA / "kite.jpg", fit=fit)
        box = (520.0, 450.0, 980.0, 800.0)
        _, top, _, _ = changed(annotate(image, source, []), annotate(image, source, [person(box)]))
        scale = image.size[1] / 900
        heights.append((450 * scale - top) / image.size[1])  # the strip's height, in fractions
    small, large = heights
    assert small > large > 0  # a bigger share of a small picture: readable when shown small


@pytest.mark.parametrize(
    ("box", "inside"),
    [
        ((0.0, 0.0, 120.0, 90.0), "top-left corner: the label goes inside the box"),
        ((600.0, 300.0, 640.0, 424.0), "right edge: the label moves left into view"),
        ((560.0, 400.0, 640.0, 424.0), "bottom-right corner"),
        ((-50.0, -30.0, 700.0, 500.0), "a box past every edge"),
    ],
)
def test_labels_near_the_edges_stay_inside(box: tuple[float, ...], inside: str) -> None:
    image, source = decoded(DATA / "person.jpg")
    x1, y1, x2, y2 = box
    found = [person((x1, y1, x2, y2))]
    left, top, right, bottom = changed(annotate(image, source, []), annotate(image, source, found))
    assert left >= 0 and top >= 0 and right <= 640 and bottom <= 424, inside
    assert right - left > 60, inside  # "person 0.93" whole, not cut off at the edge


def test_tag_origin_keeps_the_strip_in_the_picture() -> None:
    size, tag = (640, 424), (80, 20)
    assert tag_origin((100, 100, 200, 200), tag, size) == (100, 80)  # above the box
    assert tag_origin((100, 10, 200, 200), tag, size) == (100, 10)  # no room above: inside
    assert tag_origin((600, 100, 639, 200), tag, size) == (560, 80)  # moved left
    assert tag_origin((0, 420, 10, 423), tag, size) == (0, 400)  # above, at the bottom
    assert tag_origin((0, 0, 10, 10), (700, 500), size) == (0, 0)  # bigger than the picture


def test_each_label_its_own_colour_the_same_every_time() -> None:
    labels = ["person", "car", "dog", "bicycle", "truck", "cat", "bus", "horse"]
    colours = label_colours(labels)
    assert len(set(colours.values())) == len(labels)
    assert set(colours.values()) <= set(PALETTE)
    assert label_colours(list(reversed(labels))) == colours
    assert label_colours(["dog"])["dog"] == label_colours(["dog", "cat"])["dog"]
    assert len(set(label_colours([f"label {n}" for n in range(20)]).values())) == 20


def test_the_image_given_is_left_as_it_was() -> None:
    image, source = decoded(DATA / "person.jpg")
    copy = image.copy()
    annotate(image, source, [person((200.0, 150.0, 400.0, 380.0))])
    assert ImageChops.difference(image, copy).getbbox() is None
