"""Annotated pictures: what the detector saw, drawn on the image, as a JPEG a person can read.

Pure functions over Pillow images: no I/O, no settings. The gallery draws one the first time
someone looks, on the event's kept original decoded at the picture's size (hook.pictures.gallery).
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from hook.detect.detection import Detection

MAX_SIDE = 1280  # longest side of a picture: enough to tell a cat from a dog on a phone or a page
QUALITY = 75  # JPEG quality: labels read the same down to 65; 80 costs ~10% more bytes, 90 ~50%
MIN_FONT = 12  # pixels; smaller than this the built-in font stops being legible
# Distinct, saturated colours (Ultralytics' palette): a label keeps its colour from picture to
# picture unless two labels in one picture would share one.
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    for h in (
        "FF3838",
        "2C99A8",
        "FF9D97",
        "FF701F",
        "FFB21D",
        "CFD231",
        "48F90A",
        "92CC17",
        "3DDB86",
        "1A9334",
        "00D4BB",
        "FF37C7",
        "00C2FF",
        "344593",
        "6473FF",
        "0018EC",
        "8438FF",
        "520085",
        "CB38FF",
        "FF95C8",
    )
)

Box = tuple[float, float, float, float]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def picture_size(source: tuple[int, int]) -> tuple[int, int]:
    """`source` shrunk to at most MAX_SIDE on its longer side, never enlarged."""
    scale = min(1.0, MAX_SIDE / max(source))
    return max(1, round(source[0] * scale)), max(1, round(source[1] * scale))


def annotate(
    image: Image.Image,
    source: tuple[int, int],
    detections: Sequence[Detection],
    *,
    quality: int = QUALITY,
) -> bytes:
    """A JPEG of `image` with each detection's box and "label score" drawn.

    `image` may be a reduced decode of an original of size `source` (same aspect ratio); boxes
    are in original pixels, so they are scaled to the picture. It is shrunk first and drawn on
    after, so lines and text have the same weight whatever the original's size.
    """
    size = picture_size(image.size)
    picture = image.convert("RGB")  # a copy, even of an RGB image: the caller's stays as it was
    if size != picture.size:
        picture = picture.resize(size, Image.Resampling.BOX, reducing_gap=2.0)  # area mean: fast
    draw = ImageDraw.Draw(picture)
    scale = (size[0] / source[0], size[1] / source[1])
    diagonal = math.sqrt(size[0] * size[1])  # a size measure that ignores the aspect ratio
    line = max(2, round(diagonal / 320))
    font = _font(max(MIN_FONT, round(diagonal / 40)))
    colours = label_colours([d.label for d in detections])
    for detection in sorted(detections, key=lambda d: d.score):  # the best drawn last, on top
        box = scaled(detection.box, scale, size)
        colour = colours[detection.label]
        draw.rectangle(box, outline=colour, width=line)
        _tag(draw, box, f"{detection.label} {detection.score:.2f}", colour, font=font, size=size)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


def scaled(box: Box, scale: tuple[float, float], size: tuple[int, int]) -> Box:
    """A box in original pixels as picture pixels, clipped to the picture."""
    x1, y1, x2, y2 = box
    width, height = size[0] - 1, size[1] - 1
    return (
        min(max(x1 * scale[0], 0.0), width),
        min(max(y1 * scale[1], 0.0), height),
        min(max(x2 * scale[0], 0.0), width),
        min(max(y2 * scale[1], 0.0), height),
    )


def label_colours(labels: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """A palette colour per label: its own by hash, the next free one if another label in the
    picture has it (past 20 labels in one picture, colours repeat)."""
    colours: dict[str, tuple[int, int, int]] = {}
    used: set[int] = set()
    for label in sorted(set(labels)):
        own = zlib.crc32(label.encode()) % len(PALETTE)
        free = [(own + step) % len(PALETTE) for step in range(len(PALETTE))]
        slot = next((s for s in free if s not in used), own)
        used.add(slot)
        colours[label] = PALETTE[slot]
    return colours


def tag_origin(box: Box, tag: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
    """Where a label strip of size `tag` goes: on the box's top edge, outside the box when
    there is room above it, and always inside the picture (as far as the strip fits)."""
    x = min(max(box[0], 0.0), max(0.0, size[0] - tag[0]))
    y = box[1] - tag[1] if box[1] >= tag[1] else box[1]
    return x, min(max(y, 0.0), max(0.0, size[1] - tag[1]))


def _tag(
    draw: ImageDraw.ImageDraw,
    box: Box,
    text: str,
    colour: tuple[int, int, int],
    *,
    font: Font,
    size: tuple[int, int],
) -> None:
    """`text` in black or white (whichever reads on `colour`) on a strip of `colour`."""
    left, top, right, bottom = (math.ceil(v) for v in draw.textbbox((0, 0), text, font=font))
    pad = max(1, round((bottom - top) / 6))
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    x, y = tag_origin(box, (width, height), size)
    draw.rectangle((x, y, x + width - 1, y + height - 1), fill=colour)
    luma = (299 * colour[0] + 587 * colour[1] + 114 * colour[2]) / 1000
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    draw.text((x + pad - left, y + pad - top), text, fill=ink, font=font)


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    """Pillow's built-in font (Aileron, in Pillow >= 10.1) at `size` pixels: nothing to install."""
    return ImageFont.load_default(size=size)
