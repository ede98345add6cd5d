"""Image bytes as they arrive: what decodes, and what fails as this image's own BadImage."""

from __future__ import annotations

import pytest

from hook.errors import BadImage, Invalid
from hook.intake.images import decode_image, inspect_image
from tests.factories import bad_pngs, image_bytes


@pytest.mark.parametrize("name", sorted(bad_pngs()))
def test_a_png_broken_after_its_header_is_a_bad_image_not_a_crash(name: str) -> None:
    data = bad_pngs()[name]
    assert inspect_image(data, max_pixels=40_000_000).format == "PNG"  # accepted at ingest
    with pytest.raises(BadImage, match="image does not decode"):
        decode_image(data, max_pixels=40_000_000, fit=(416, 416))


def test_a_sound_png_decodes_at_full_size() -> None:
    image, size = decode_image(image_bytes(64, 48, fmt="PNG"), max_pixels=40_000_000)
    assert image.mode == "RGB" and image.size == size == (64, 48)


def test_too_many_pixels_is_refused_from_the_header() -> None:
    with pytest.raises(Invalid, match="over the limit of 1000"):
        inspect_image(image_bytes(64, 48), max_pixels=1000, field="images[0].image_b64")


def test_a_large_png_is_shrunk_before_its_colour_conversion() -> None:
    big = image_bytes(2000, 1000, fmt="PNG", noise=False)
    image, size = decode_image(big, max_pixels=40_000_000, fit=(416, 416))
    assert size == (2000, 1000)  # boxes still map to the full image
    assert image.size == (1000, 500) and image.mode == "RGB"  # shrunk by 2, still >= the canvas
    whole, _ = decode_image(big, max_pixels=40_000_000)  # no canvas given: nothing shrunk
    assert whole.size == (2000, 1000)
