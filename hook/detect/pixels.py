"""Pixels as the detectors take them: RGB images as HxWx3 uint8 arrays, resized by OpenCV.

Shrinking approximates Pillow's antialiased bilinear resize (what the letterbox used before)
at under half its CPU on one core (bench/split.py): a box filter by a whole factor first when
the factor is 4 or more (as Pillow's `reducing_gap`), then a Gaussian blur with the variance
Pillow's wider triangle filter adds, then OpenCV's bilinear interpolation. The two differ by
about half a level per pixel on average where the letterbox mostly shrinks (by 1.8 to 4), and
by one to three levels under 1.6, where bilinear interpolation's own smoothing varies from
pixel to pixel (tests/detect/test_pixels.py); the labels were measured the same within one
photo's worth (docs/accuracy.md, "The letterbox").
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

Pixels = np.ndarray  # height x width x 3, uint8, RGB
Picture = Image.Image | Pixels  # what a detector takes: a decoded image or its pixels
MIN_SIGMA = 0.05  # a blur narrower than this moves no pixel by a level
REDUCING_GAP = 2  # shrink by whole factors first while the factor left stays at least this
# What int8 builds are calibrated on (models/int8.py stamps it): a new resize, a new build.
RESIZE = "opencv box-reduce/2 + gaussian (f*f-1)/6 + bilinear"


def use_threads(count: int) -> None:
    """OpenCV's threads in this process: a lane's own (HOOK_THREADS; 1 for 0, the engine's
    default), as one image's resize is too small to share with the other lanes' work.
    Process-wide, so set where the detector is composed (hook.config.detectors)."""
    cv2.setNumThreads(max(1, count))


def pixels_of(image: Picture) -> Pixels:
    """An image's RGB pixels as an array (an RGB array as it is, never copied)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"pixels must be height x width x 3 uint8, not {image.shape}")
        return image
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def size_of(pixels: Pixels) -> tuple[int, int]:
    """Width, height, as Pillow says a size."""
    return pixels.shape[1], pixels.shape[0]


def resized(pixels: Pixels, size: tuple[int, int]) -> Pixels:
    """`pixels` scaled to `size` (width, height), bilinear, antialiased when shrinking."""
    if size_of(pixels) == size:
        return pixels
    pixels = box_reduced(pixels, size)
    sigma_x, sigma_y = (antialias_sigma(n / m) for n, m in zip(size_of(pixels), size, strict=True))
    if max(sigma_x, sigma_y) >= MIN_SIGMA:
        pixels = cv2.GaussianBlur(
            pixels,
            (_kernel(sigma_x), _kernel(sigma_y)),
            sigmaX=max(sigma_x, MIN_SIGMA),
            sigmaY=max(sigma_y, MIN_SIGMA),
        )
    return cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)


def box_reduced(pixels: Pixels, size: tuple[int, int]) -> Pixels:
    """Shrunk by the whole factor per axis that leaves at least REDUCING_GAP to go, by
    averaging boxes: the blur's kernel, and its cost, grow with the factor left."""
    (w, h), (tw, th) = size_of(pixels), size
    rx, ry = max(1, int(w / tw / REDUCING_GAP)), max(1, int(h / th / REDUCING_GAP))
    if rx == ry == 1:
        return pixels
    return cv2.resize(pixels, (math.ceil(w / rx), math.ceil(h / ry)), interpolation=cv2.INTER_AREA)


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
