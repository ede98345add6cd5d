"""Pixels as the detectors take them: RGB images as HxWx3 uint8 arrays, resized by OpenCV.

Shrinking is Pillow's antialiased bilinear resize, approximated at about a quarter of its
cost on one core (bench/split.py): a Gaussian blur with the variance Pillow's wider triangle
filter adds, then OpenCV's bilinear interpolation. The factor is under 2 here (a large JPEG is
decoded at a reduced DCT scale first, any other image reduced by a whole factor), where the
two differ by under half a level per pixel on the test photos (tests/detect/test_pixels.py).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

# One image's resize is too small to share out; the worker's lanes are the parallelism.
cv2.setNumThreads(1)

Pixels = np.ndarray  # height x width x 3, uint8, RGB
MIN_SIGMA = 0.05  # a blur narrower than this moves no pixel by a level


def pixels_of(image: Image.Image | Pixels) -> Pixels:
    """An image's pixels as an array (an array as it is, never copied)."""
    return image if isinstance(image, np.ndarray) else np.asarray(image, dtype=np.uint8)


def size_of(pixels: Pixels) -> tuple[int, int]:
    """Width, height, as Pillow says a size."""
    return pixels.shape[1], pixels.shape[0]


def resized(pixels: Pixels, size: tuple[int, int]) -> Pixels:
    """`pixels` scaled to `size` (width, height), bilinear, antialiased when shrinking."""
    if size_of(pixels) == size:
        return pixels
    sigma_x, sigma_y = (antialias_sigma(n / m) for n, m in zip(size_of(pixels), size, strict=True))
    if max(sigma_x, sigma_y) >= MIN_SIGMA:
        pixels = cv2.GaussianBlur(
            pixels,
            (_kernel(sigma_x), _kernel(sigma_y)),
            sigmaX=max(sigma_x, MIN_SIGMA),
            sigmaY=max(sigma_y, MIN_SIGMA),
        )
    return cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)


def antialias_sigma(factor: float) -> float:
    """The blur that, before bilinear interpolation, widens its triangle of half-width 1 to
    Pillow's of half-width `factor` (a triangle's variance is half-width² / 6); 0 to enlarge."""
    return math.sqrt((factor * factor - 1) / 6) if factor > 1 else 0.0


def _kernel(sigma: float) -> int:
    """An odd Gaussian kernel size reaching 3 sigma."""
    return 2 * math.ceil(3 * sigma) + 1


def on_canvas(pixels: Pixels, canvas: tuple[int, int], at: tuple[int, int], fill: int) -> Pixels:
    """A `canvas` (width, height) of gray `fill` with `pixels` placed at `at` (x, y)."""
    out = np.full((canvas[1], canvas[0], 3), fill, dtype=np.uint8)
    (x, y), (w, h) = at, size_of(pixels)
    out[y : y + h, x : x + w] = pixels
    return out
