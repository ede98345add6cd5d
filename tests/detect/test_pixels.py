"""The letterbox's resize: Pillow's antialiased bilinear, approximated by a blur and OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from hook.detect.pixels import antialias_sigma, on_canvas, pixels_of, resized, size_of
from tests.factories import DATA

# The test photos the letterbox shrinks by about 1.85, as most camera stills are
SHRUNK_BY_THE_LETTERBOX = ("dog.jpg", "eagle.jpg", "horses.jpg", "kite.jpg")


@pytest.mark.parametrize("name", SHRUNK_BY_THE_LETTERBOX)
def test_shrinking_is_pillows_antialiased_bilinear_within_half_a_level(name: str) -> None:
    image = Image.open(DATA / name).convert("RGB")
    scale = 416 / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    pillow = np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    ours = resized(pixels_of(image), size).astype(np.int16)
    assert ours.shape == pillow.shape
    assert np.abs(ours - pillow).mean() < 0.5


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
