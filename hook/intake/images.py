"""Image bytes as they arrive: base64 in, checked bytes out, size known before any decoding."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from hook.errors import BadImage, Invalid

#: Formats a camera frame comes in; anything else Pillow might parse is refused, which keeps the
#: attack surface to well-trodden decoders.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
_WHITESPACE = re.compile(rb"\s+")
_DATA_URI = re.compile(rb"^data:[\w/+.-]*;base64,")
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_REDUCIBLE = ("RGB", "RGBA", "L", "LA", "I", "F")  # modes Image.reduce takes


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: enough to refuse an image without decoding its pixels."""

    format: str
    width: int
    height: int


def b64_to_bytes(text: object, *, field: str) -> bytes:
    """Strict base64 (whitespace and a data: prefix tolerated), else Invalid naming the field."""
    if not isinstance(text, str) or not text:
        raise Invalid(f"{field} must be a non-empty base64 string", field=field)
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise Invalid(f"{field} has non-ASCII characters", field=field) from None
    raw = _DATA_URI.sub(b"", _WHITESPACE.sub(b"", raw), count=1)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{field} is not valid base64", field=field) from None
    if not data:
        raise Invalid(f"{field} is empty", field=field)
    return data


def inspect_image(data: bytes, *, max_pixels: int, field: str = "image") -> ImageInfo:
    """Identify the image from its header only and refuse oversized ones (decompression bombs)."""
    try:
        with _opened(data, max_pixels) as image:
            return ImageInfo(format=image.format or "", width=image.width, height=image.height)
    except BadImage as exc:
        raise BadImage(f"{field}: {exc}", field=field) from None


def decode_image(
    data: bytes, *, max_pixels: int, fit: tuple[int, int] | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode to RGB, upright (EXIF orientation applied); return it and its full upright size.

    With `fit` (a canvas width, height), a JPEG is decoded at the smallest DCT scale (1/2, 1/4,
    1/8) that still covers what the canvas needs: several times less work for big frames,
    and the same pixels after the letterbox resize. The size returned is always the full one,
    so boxes map back to the original image.
    """
    with _opened(data, max_pixels) as image:
        # Everything past the header is guarded: reading EXIF makes Pillow parse the chunks
        # after a PNG's pixels (a truncated file, a decompression-bomb text chunk), and any
        # decoder failure is this image's, never the worker's.
        try:
            orientation = image.getexif().get(0x0112, 1)
            rotated = orientation in _ROTATED
            upright = (image.height, image.width) if rotated else image.size
            if fit is not None and image.format == "JPEG":
                scale = min(fit[0] / upright[0], fit[1] / upright[1])
                need = (max(1, round(upright[0] * scale)), max(1, round(upright[1] * scale)))
                image.draft("RGB", need[::-1] if rotated else need)
            # exif_transpose copies even an upright image: only call it when it turns something
            upright_image = ImageOps.exif_transpose(image) if orientation not in (0, 1) else image
            return to_rgb(_reduced(upright_image, fit)), upright
        except Exception as exc:
            raise BadImage(f"image does not decode: {type(exc).__name__}: {exc}") from None


def _reduced(image: Image.Image, fit: tuple[int, int] | None) -> Image.Image:
    """A decoded image larger than the canvas needs, shrunk by a whole factor at once.

    Formats without JPEG's reduced decoding are decoded whole; shrinking them before the
    colour conversion keeps its copies (transparency over gray, RGB) small.
    """
    if fit is None or image.mode not in _REDUCIBLE:
        return image
    factor = int(min(image.width / fit[0], image.height / fit[1]))
    return image.reduce(factor) if factor >= 2 else image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB as the model wants it: transparency over gray, 16-bit samples scaled, not clipped."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L") if image.mode != "I" else image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (114, 114, 114, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


@contextmanager
def _opened(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """Open lazily (header only), refusing unknown formats and too many pixels as BadImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("image is too large to decode safely") from None
    except UnidentifiedImageError:
        raise BadImage(
            f"not an image of a supported format ({', '.join(ALLOWED_FORMATS)})"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"not a readable image: {exc}") from None
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise BadImage(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise BadImage(
                f"image is {width}x{height} pixels, over the limit of {max_pixels} "
                "(HOOK_MAX_IMAGE_PIXELS)"
            )
        yield image
