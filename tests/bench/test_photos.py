"""The photos simulate sends: every picture format found, sent as JPEG; other files named."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from hook.cli.photos import as_jpeg, photos_in
from hook.errors import HookError
from tests.factories import DATA


def test_a_jpeg_is_sent_as_it_is() -> None:
    assert as_jpeg(DATA / "dog.jpg") == (DATA / "dog.jpg").read_bytes()


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".png", "RGBA"), (".webp", "RGB"), (".bmp", "RGB"), (".gif", "P")]
)
def test_other_formats_become_jpegs_of_the_same_picture(
    tmp_path: Path, suffix: str, mode: str
) -> None:
    with Image.open(DATA / "dog.jpg") as photo:
        original = photo.convert("RGB")
    path = tmp_path / f"dog{suffix}"
    original.convert(mode).save(path)
    sent = as_jpeg(path)
    with Image.open(io.BytesIO(sent)) as decoded:
        assert decoded.format == "JPEG" and decoded.mode == "RGB"
        assert decoded.size == original.size


def test_an_unreadable_picture_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.webp"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WEBPnot really")
    with pytest.raises(HookError, match="cannot read it as a picture"):
        as_jpeg(broken)


def test_pictures_are_found_and_the_other_files_named(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.webp", "c.gif", "d.bmp", "e.png", "f.jpeg", "notes.txt", "x.tiff"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".hidden.jpg").write_bytes(b"")
    (tmp_path / "folder.jpg").mkdir()
    found, others = photos_in(tmp_path)
    assert [p.name for p in found] == ["a.webp", "b.JPG", "c.gif", "d.bmp", "e.png", "f.jpeg"]
    assert [p.name for p in others] == ["notes.txt", "x.tiff"]


def test_a_folder_without_pictures_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no pictures here")
    with pytest.raises(HookError, match=r"no pictures in .*\(looked for \.jpg, \.jpeg"):
        photos_in(tmp_path)
    with pytest.raises(HookError, match=r"cannot read the folder .*missing"):
        photos_in(tmp_path / "missing")


def test_the_missing_test_photos_say_how_to_get_them(tmp_path: Path) -> None:
    how = r"tests/data: .*\(bash scripts/setup\.sh fetches the sample photos"
    with pytest.raises(HookError, match=how):
        photos_in(tmp_path / "tests" / "data")
