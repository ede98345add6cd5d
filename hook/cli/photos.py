"""The photos `simulate` sends: the pictures in a folder, as the JPEG bytes Camio would send."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from hook.errors import HookError

JPEG = (".jpg", ".jpeg")
CONVERTED = (".png", ".webp", ".bmp", ".gif")  # decoded and sent as JPEG: Camio sends JPEGs
SUFFIXES = JPEG + CONVERTED


def photos_in(directory: Path) -> tuple[list[Path], list[Path]]:
    """The pictures in `directory` (sorted) and its other files, which are not sent.

    Hidden files and subfolders are neither: nobody expects them to be sent.
    """
    try:
        entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        hint = ""
        if directory.parts[-2:] == ("tests", "data"):  # the README's try-it folder
            hint = " (bash scripts/setup.sh fetches the sample photos into it)"
        raise HookError(
            f"cannot read the folder {directory}: {exc.strerror or exc}{hint}"
        ) from None
    files = [p for p in entries if p.is_file()]
    found = [p for p in files if p.suffix.lower() in SUFFIXES]
    if not found:
        raise HookError(f"no pictures in {directory} (looked for {', '.join(SUFFIXES)})")
    return found, [p for p in files if p not in found]


def as_jpeg(path: Path) -> bytes:
    """A JPEG's bytes as they are; another format's first frame encoded as JPEG."""
    try:
        if path.suffix.lower() in JPEG:
            return path.read_bytes()
        with Image.open(path) as image:
            image.seek(0)
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=90)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow reports a damaged or unknown file with any of these
        raise HookError(f"cannot read it as a picture ({exc})") from None
