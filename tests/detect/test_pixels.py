"""The letterbox's resize: Pillow's antialiased bilinear, approximated by a blur and OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hook.detect.pixels import (
    REDUCING_GAP,
    antialias_sigma,
    box_reduced,
    on_canvas,
    pixels_of,
    resized,
    size_of,
    use_threads,
)
from tests.factories import DATA

FACTORS = (1.15, 1.54, 1.85, 2.31, 3.08, 9.6)  # the camera set's frames reach 1.15 to 3.08
FINE_FUR = "giraffe.jpg"  # detail finer than a pixel: every two filters differ most there


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("path", sorted(DATA.glob("*.jpg")), ids=lambda p: p.name)
def test_shrinking_is_close_to_pillows_antialiased_bilinear(path: Path, factor: float) -> None:
    """About half a level per pixel from 1.8 up, about one below (where bilinear's own
    smoothing varies from pixel to pixel), three times that on the giraffe's fur."""
    image = Image.open(path).convert("RGB")
    size = (round(image.width / factor), round(image.height / factor))
    pillow = np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    ours = resized(pixels_of(image), size).astype(np.int16)
    bound = (0.6 if factor >= 1.8 else 1.2) * (3 if path.name == FINE_FUR else 1)
    assert ours.shape == pillow.shape
    assert np.abs(ours - pillow).mean() < bound


def test_each_axis_is_shrunk_by_its_own_factor() -> None:
    """Shrunk 4 times across and not at all down: a blur or a box on the wrong axis shows."""
    image = Image.open(DATA / "dog.jpg").convert("RGB").resize((800, 400))
    pillow = np.asarray(image.resize((200, 400), Image.Resampling.BILINEAR), dtype=np.int16)
    ours = resized(pixels_of(image), (200, 400)).astype(np.int16)
    assert np.abs(ours - pillow).mean() < 0.6


@pytest.mark.parametrize(("size", "to"), [((32768, 512), (416, 7)), ((4000, 2250), (416, 234))])
def test_large_factors_are_boxed_first_so_the_blur_stays_small(
    size: tuple[int, int], to: tuple[int, int]
) -> None:
    """A 32768 px panorama (16 MP, within the pixel limit) shrunk 79 times: averaged by whole
    boxes until 2 to 4 is left, so the blur's kernel (and its CPU) stays that of a factor of 4,
    not 79; the result still Pillow's, within a level and a half on random noise."""
    wide = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    boxed = box_reduced(wide, to)
    for n, m in zip(size_of(boxed), to, strict=True):
        assert REDUCING_GAP <= n / m < 2 * REDUCING_GAP + 0.1
    pillow = np.asarray(Image.fromarray(wide).resize(to, Image.Resampling.BILINEAR), np.int16)
    assert np.abs(resized(wide, to).astype(np.int16) - pillow).mean() < 1.5  # noise: the worst
    assert size_of(box_reduced(wide[:60, :60], (40, 40))) == (60, 60)  # under the gap: no box


def test_a_pattern_finer_than_the_new_pixels_is_mostly_averaged_away() -> None:
    """One-pixel stripes shrunk by 1.8: interpolating between two neighbours alone keeps
    their full contrast at a false, coarser period; the blur first takes most of it away."""
    stripes = np.zeros((180, 180, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    plain = cv2.resize(stripes, (100, 100), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    ours = resized(stripes, (100, 100)).astype(np.float64)
    assert ours.std() < plain.std() / 3
    assert abs(ours.mean() - 127.5) < 3


def test_the_blur_widens_bilinear_to_pillows_triangle() -> None:
    assert antialias_sigma(1.0) == 0.0 and antialias_sigma(0.5) == 0.0  # enlarging: none
    assert antialias_sigma(2.0) == pytest.approx((3 / 6) ** 0.5)  # (2² - 1²) / 6


def test_the_same_size_is_the_same_array_and_an_array_is_never_copied() -> None:
    pixels = np.zeros((30, 40, 3), dtype=np.uint8)
    assert pixels_of(pixels) is pixels
    assert resized(pixels, (40, 30)) is pixels
    assert size_of(pixels) == (40, 30)


def test_on_canvas_places_the_pixels_and_fills_the_rest() -> None:
    white = np.full((2, 3, 3), 255, dtype=np.uint8)
    canvas = on_canvas(white, (6, 4), (2, 1), 114)
    assert canvas.shape == (4, 6, 3)
    assert (canvas[1:3, 2:5] == 255).all()
    assert (canvas[0] == 114).all() and (canvas[:, :2] == 114).all() and (canvas[3] == 114).all()


def test_pixels_are_rgb_whatever_the_image_mode() -> None:
    gray = Image.new("L", (4, 2), 200)
    assert pixels_of(gray).shape == (2, 4, 3)
    assert (pixels_of(Image.new("RGBA", (3, 3), (1, 2, 3, 0))) == (1, 2, 3)).all()
    with pytest.raises(ValueError, match="height x width x 3"):
        pixels_of(np.zeros((4, 4), dtype=np.uint8))


def test_opencv_runs_on_the_lanes_threads() -> None:
    before = cv2.getNumThreads()
    try:
        use_threads(0)  # the engine's default: OpenCV keeps to one
        assert cv2.getNumThreads() == 1
        use_threads(3)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
