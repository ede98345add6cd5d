"""Derived photos of the sets, pure: crops, motion blur, composites, a night camera's look, video
frames (bench/photoset.py's recipes, in its docstring)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from bench.packages import PhotoSetError

SOFT = 0.2  # of a pasted photo's smaller side: the width of its faded edge


def make(source: dict[str, Any], pictures: Mapping[str, Image.Image]) -> Image.Image:
    """A derived photo from its recipe, given each origin named in it (module docstring)."""
    image = derive(pictures[source["photo"]], source)
    if "size" in source:
        image = fill(image, source["size"][0], source["size"][1])
    for item in source.get("paste", []):
        picture = derive(pictures[item["photo"]], item)
        image = paste(image, picture, item["at"], item["height"], item.get("soft", SOFT))
    if source.get("night"):
        image = night(image, source.get("seed", 0), source.get("glow"))
    return image


def derive(image: Image.Image, source: dict[str, Any]) -> Image.Image:
    """Crop (x1, y1, x2, y2 pixels), a mirror image, and a horizontal motion blur, as a passing
    object makes."""
    image = image.convert("RGB")
    if "crop" in source:
        image = image.crop(tuple(source["crop"]))
    if source.get("flip"):
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    length = max(1, round(float(source.get("blur", 0)) * image.width))
    return Image.fromarray(motion_blur(np.asarray(image), length))


def fill(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scaled to cover width x height, the excess cropped evenly: a camera's frame of a scene."""
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    scaled = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def paste(
    image: Image.Image, picture: Image.Image, at: list[int], height: int, soft: float = SOFT
) -> Image.Image:
    """The picture scaled to `height` pixels, standing with its bottom centre at `at` (x, y):
    a small object far from the camera. Its edge fades in over `soft` of its smaller side, so
    the pasted rectangle is not itself a shape to find; what falls outside the frame is cut."""
    width = max(1, round(picture.width * height / picture.height))
    small = np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS), np.float64)
    alpha = _fade(width, height, max(1.0, soft * min(width, height)) if soft > 0 else 0.0)
    left, top = at[0] - width // 2, at[1] - height
    base = np.asarray(image.convert("RGB"), np.float64).copy()
    x1, y1 = max(0, left), max(0, top)
    x2, y2 = min(base.shape[1], left + width), min(base.shape[0], top + height)
    if x1 < x2 and y1 < y2:
        part = (slice(y1 - top, y2 - top), slice(x1 - left, x2 - left))
        a = alpha[part][..., None]
        base[y1:y2, x1:x2] = base[y1:y2, x1:x2] * (1 - a) + small[part] * a
    return Image.fromarray(np.clip(np.rint(base), 0, 255).astype(np.uint8))


def _fade(width: int, height: int, edge: float) -> np.ndarray:
    """1 inside, falling linearly to 0 over `edge` pixels at the border (all 1 when edge is 0)."""
    if edge <= 0:
        return np.ones((height, width))
    xs = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5)
    ys = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5)
    return np.clip(np.minimum(ys[:, None], xs[None, :]) / edge, 0.0, 1.0)


NIGHT_GAIN, NIGHT_LIFT, NIGHT_NOISE = 0.45, 14.0, 7.0  # of a cheap camera's infrared picture


def night(image: Image.Image, seed: int = 0, glow: list[int] | None = None) -> Image.Image:
    """A night camera's infrared picture of the scene: grey, dark, flat and grainy, optionally
    with the hot spot its lamp makes on a near surface (glow: x, y, radius in pixels).

    The same on every machine: Pillow's integer luma, numpy's legacy RandomState (whose stream
    never changes) and only + - * / on floats.
    """
    grey = np.asarray(image.convert("L"), np.float64)
    out = NIGHT_LIFT + NIGHT_GAIN * grey
    if glow is not None:
        x, y, radius = glow
        rows, cols = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
        near = ((cols - x) ** 2 + (rows - y) ** 2) / float(radius * radius)
        out = out + (235.0 - out) / (1.0 + near) ** 2
    out = out + NIGHT_NOISE * np.random.RandomState(seed).standard_normal(grey.shape)
    pixels = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([pixels] * 3, axis=-1))


def video_frame(data: bytes, index: int) -> Image.Image:
    """Frame `index` (from 0) of a video, as RGB: the same on every machine for one PyAV version.

    FFmpeg is asked for its bit-exact C inverse DCT (no CPU-specific variant) and the YUV 4:2:0
    planes are turned into RGB here, with BT.601's integer formula, not by a CPU-tuned scaler.
    """
    try:
        import av  # noqa: PLC0415  (only video sources need it)
    except ImportError:
        raise PhotoSetError("video frames need PyAV: pip install -r requirements.txt") from None
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"idct": "simple", "flags": "+bitexact"}
        stream.thread_type = "NONE"
        for number, frame in enumerate(container.decode(stream)):
            if number == index:
                return _rgb(frame)
    raise PhotoSetError(f"the video has no frame {index} (it has {number + 1})")


def _rgb(frame: Any) -> Image.Image:
    """A decoded frame's own pixels as RGB, converted here (not by FFmpeg's scaler)."""
    if frame.format.name == "rgb24":
        return Image.fromarray(np.ascontiguousarray(_plane(frame, 0).reshape(frame.height, -1, 3)))
    if frame.format.name == "yuv420p":
        return yuv420_to_rgb(*(_plane(frame, i) for i in range(3)))
    raise PhotoSetError(f"video frames of pixel format {frame.format.name} are not read here")


def _plane(frame: Any, i: int) -> np.ndarray:
    plane = frame.planes[i]
    rows = np.frombuffer(bytes(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width * (3 if frame.format.name == "rgb24" else 1)]


def yuv420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> Image.Image:
    """BT.601 limited-range YUV with half-size chroma -> RGB, in integers (each chroma sample
    covers its 2 x 2 pixels)."""
    height, width = y.shape
    c = y.astype(np.int32) - 16
    d = np.repeat(np.repeat(u.astype(np.int32) - 128, 2, 0), 2, 1)[:height, :width]
    e = np.repeat(np.repeat(v.astype(np.int32) - 128, 2, 0), 2, 1)[:height, :width]
    rgb = np.stack([298 * c + 409 * e, 298 * c - 100 * d - 208 * e, 298 * c + 516 * d], axis=-1)
    return Image.fromarray(np.clip((rgb + 128) >> 8, 0, 255).astype(np.uint8))


def motion_blur(pixels: np.ndarray, length: int) -> np.ndarray:
    """Mean of `length` neighbours along each row (edges repeated): a straight-line shutter."""
    if length <= 1:
        return pixels.copy()
    before, after = length // 2, length - 1 - length // 2
    padded = np.pad(pixels.astype(np.float64), ((0, 0), (before, after), (0, 0)), "edge")
    sums = np.concatenate([np.zeros_like(padded[:, :1]), np.cumsum(padded, axis=1)], axis=1)
    window = sums[:, length:] - sums[:, :-length]  # window[j] = sum of padded[j : j + length]
    return np.clip(np.rint(window / length), 0, 255).astype(np.uint8)
