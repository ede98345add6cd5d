"""Tiled detection: merging what the tiles see with the whole frame, by hand and on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hook.config.detectors import detector_from
from hook.detect import yolo
from hook.detect.detection import Detection, Detects
from hook.detect.fusion import CLOSE_VEHICLES, FusionRules, iou
from hook.detect.pixels import resized
from hook.detect.tiled import Tiled, merge
from hook.detect.tiling import tiles
from hook.intake.images import decode_image
from tests.factories import DATA, make_settings

RULES = FusionRules((1.0,), near=0.5, kin=(CLOSE_VEHICLES,))


def det(label: str, score: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(label, score, box)


def test_an_object_in_two_tiles_overlap_is_counted_once() -> None:
    seen = [det("person", 0.8, (600, 100, 640, 200)), det("person", 0.7, (601, 102, 641, 199))]
    assert merge([], seen, RULES, 0.5) == [seen[0]]


def test_a_tile_seeing_a_whole_frame_object_surer_stands_for_it_not_beside_it() -> None:
    whole = [det("car", 0.31, (100, 100, 140, 130))]  # under its threshold on the whole frame
    tile = [det("truck", 0.8, (102, 101, 141, 131))]  # kin: the same vehicle
    assert merge(whole, tile, RULES, 0.5) == tile
    sure = [det("car", 0.9, (100, 100, 140, 130))]
    assert merge(sure, tile, RULES, 0.5) == sure


def test_a_tiles_object_of_another_label_overlapping_one_of_the_whole_frame_is_another() -> None:
    """A rider on her horse: the boxes overlap, the objects are two (fusion never joins labels
    that are not kin either)."""
    horse = det("horse", 0.8, (917, 437, 1118, 627))
    rider = det("person", 0.76, (960, 380, 1040, 560))
    assert merge([horse], [rider], RULES, 0.5) == [horse, rider]


def test_what_only_a_tile_sees_is_added_at_the_tile_score() -> None:
    whole = [det("person", 0.9, (0, 0, 100, 300))]
    tile = [det("dog", 0.55, (500, 500, 530, 520)), det("cat", 0.45, (700, 500, 730, 520))]
    assert merge(whole, tile, RULES, 0.5) == [whole[0], tile[0]]


@pytest.fixture(scope="module")
def detectors() -> tuple[Detects, Detects]:
    """The default detector (tiles auto) and the same without tiles, in f32."""
    tiled = detector_from(make_settings(HOOK_PRECISION="f32"))
    whole = detector_from(make_settings(HOOK_PRECISION="f32", HOOK_TILES="off"))
    assert isinstance(tiled, Tiled)
    return tiled, whole


def frame_with(scale: float, at: tuple[int, int]) -> Image.Image:
    """person.jpg (a woman, her dog and a horse) pasted at `scale` into an empty 1080p frame."""
    photo = Image.open(DATA / "person.jpg").convert("RGB")
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    frame = Image.new("RGB", (1920, 1080), (90, 110, 80))
    frame.paste(photo, at)
    return frame


def people(found: list[Detection]) -> list[Detection]:
    return [d for d in found if d.label == "person" and d.score >= 0.3]


@pytest.mark.parametrize("at", [(100, 100), (300, 600), (700, 520), (1000, 300), (1500, 700)])
def test_a_distant_person_is_found_by_the_tiles_surer_than_by_the_whole_frame_and_once(
    detectors: tuple[Detects, Detects], at: tuple[int, int]
) -> None:
    """The woman about 110 px tall in 1080p: 24 px on the whole frame's canvas, 62 on a tile's."""
    tiled, whole = detectors
    frame = frame_with(0.4, at)
    (person,) = people(tiled.detect(frame))
    x, y = at  # she stands at 187..276 x 102..377 in the photo
    assert iou(person.box, (x + 75, y + 41, x + 110, y + 151)) >= 0.5, person
    alone = people(whole.detect(frame))
    assert all(d.score < person.score for d in alone)
    if at == (300, 600):
        assert alone == []  # missed without tiles


def test_a_person_cut_by_tile_edges_is_counted_once(detectors: tuple[Detects, Detects]) -> None:
    tiled, _ = detectors
    frame = frame_with(1.0, (510, 300))  # the woman spans x 697-786 and y 402-677
    edges = tiles((1920, 1080), (3, 2))
    assert edges[0][2] == 738 and edges[3][1] == 480  # she crosses a column and a row edge
    assert len(people(tiled.detect(frame))) == 1


def test_a_4k_frame_decoded_small_as_the_worker_does_maps_its_tiles_back_to_the_frame(
    detectors: tuple[Detects, Detects],
) -> None:
    """A JPEG decodes at the smallest DCT scale covering the tiles' (here 1/2 of 3840x2160), and
    the tiles' boxes come back in the frame's own pixels."""
    tiled, _ = detectors
    frame = Image.new("RGB", (3840, 2160), (90, 110, 80))
    frame.paste(frame_with(0.4, (300, 600)).resize((3840, 2160)))  # every pixel doubled
    data = io.BytesIO()
    frame.save(data, format="JPEG", quality=92)
    fit = tiled.fit_for(frame.size)
    image, size = decode_image(data.getvalue(), max_pixels=16_777_216, fit=fit)
    assert size == (3840, 2160) and image.size == (1920, 1080)
    (person,) = people(tiled.detect(image, size))
    assert iou(person.box, (750, 1282, 820, 1502)) >= 0.5, person  # (x + 75, y + 41, ...) x 2


def test_each_tile_canvas_is_its_window_of_the_shrunk_frame(
    detectors: tuple[Detects, Detects],
) -> None:
    """A non-square frame of distinct pixels: every tile's canvas is the letterbox of its
    window (x1, y1, x2, y2) cut from the frame shrunk once, rows by y and columns by x."""
    tiled, _ = detectors
    assert isinstance(tiled, Tiled)
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (1080, 1620, 3), dtype=np.uint8)
    (_, tiles_), _ = tiled.to_canvas(frame, None)
    assert tiles_ is not None
    windows, views = tiles_
    shrunk = resized(frame, windows.size)
    assert len(views) == len(windows.rects) > 1
    for (canvas, box), (x1, y1, x2, y2) in zip(views, windows.rects, strict=True):
        expected, expected_box = yolo.letterbox(shrunk[y1:y2, x1:x2], tiled.tiler.canvas)
        assert box == expected_box and np.array_equal(canvas, expected)
