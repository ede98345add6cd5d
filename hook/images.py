"""Image bytes as they arrive: base64 in, checked bytes out, size known before any decoding."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from hook.errors import BadRequest

#: Formats a camera frame comes in; anything else Pillow might parse is refused, which keeps the
#: attack surface to well-trodden decoders.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
_WHITESPACE = re.compile(rb"\s+")
_DATA_URI = re.compile(rb"^data:[\w/+.-]*;base64,")


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: enough to refuse an image without decoding its pixels."""

    format: str
    width: int
    height: int

    @property
    def mime(self) -> str:
        return Image.MIME.get(self.format, "application/octet-stream")


def b64_to_bytes(text: object, *, field: str) -> bytes:
    """Strict base64 (whitespace and a data: prefix tolerated), else BadRequest naming the field."""
    if not isinstance(text, str) or not text:
        raise BadRequest(f"{field} must be a non-empty base64 string", field=field)
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise BadRequest(f"{field} has non-ASCII characters", field=field) from None
    raw = _DATA_URI.sub(b"", _WHITESPACE.sub(b"", raw), count=1)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{field} is not valid base64", field=field) from None
    if not data:
        raise BadRequest(f"{field} is empty", field=field)
    return data


def inspect_image(data: bytes, *, max_pixels: int, field: str = "image") -> ImageInfo:
    """Identify the image from its header only and refuse oversized ones (decompression bombs)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                info = ImageInfo(format=image.format or "", width=image.width, height=image.height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(f"{field} is too large to decode safely", field=field) from None
    except UnidentifiedImageError:
        raise BadRequest(
            f"{field} is not an image of a supported format ({', '.join(ALLOWED_FORMATS)})",
            field=field,
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadRequest(f"{field} is not a readable image: {exc}", field=field) from None
    if info.width <= 0 or info.height <= 0:
        raise BadRequest(f"{field} has no pixels ({info.width}x{info.height})", field=field)
    if info.width * info.height > max_pixels:
        raise BadRequest(
            f"{field} is {info.width}x{info.height} pixels, over the limit of {max_pixels} "
            "(HOOK_MAX_IMAGE_PIXELS)",
            field=field,
        )
    return info
