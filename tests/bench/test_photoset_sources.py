"""The photo sets' sources beyond a package's member: video frames, crops, origins in another set,
composites, the night look, and the stamps that say when a derived photo must be made again."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import derived, photoset
from bench.derived import fill, make, night, paste, video_frame
from bench.photoset import Photo, PhotoSetError, parse

av = pytest.importorskip("av")


def encode(frames: list[np.ndarray], codec: str, pix_fmt: str, container: str = "avi") -> bytes:
    """A tiny video of these RGB frames, made with the library that reads them."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as video:
        stream = video.add_stream(codec, rate=10)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                video.mux(packet)
        for packet in stream.encode():
            video.mux(packet)
    return out.getvalue()


def flat(value: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


def test_a_video_frame_is_the_frame_of_that_number() -> None:
    data = encode([flat(40 * i + 20) for i in range(5)], "mpeg4", "yuv420p")
    third = video_frame(data, 3)
    assert third.size == (64, 48) and third.mode == "RGB"
    assert abs(float(np.asarray(third).mean()) - 140) < 4  # lossy, but that frame's grey
    assert video_frame(data, 3).tobytes() == third.tobytes()  # the same every time
    assert abs(float(np.asarray(video_frame(data, 0)).mean()) - 20) < 4
    with pytest.raises(PhotoSetError, match="no frame 9"):
        video_frame(data, 9)


def test_an_rgb_video_frame_is_its_pixels_exactly() -> None:
    rng = np.random.RandomState(0)
    frames = [rng.randint(0, 256, (24, 40, 3)).astype(np.uint8) for _ in range(3)]
    data = encode(frames, "png", "rgb24")
    assert np.array_equal(np.asarray(video_frame(data, 1)), frames[1])


def test_yuv_is_turned_into_rgb_by_bt601() -> None:
    y = np.array([[16, 235], [126, 126]], np.uint8)
    grey = np.full((1, 1), 128, np.uint8)
    rgb = np.asarray(derived.yuv420_to_rgb(y, grey, grey))
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [255, 255, 255]
    red = np.asarray(
        derived.yuv420_to_rgb(
            np.full((2, 2), 81, np.uint8),
            np.full((1, 1), 90, np.uint8),
            np.full((1, 1), 240, np.uint8),
        )
    )
    assert np.abs(red[0, 0].astype(int) - [255, 0, 0]).max() <= 2


def test_a_video_frame_is_stored_as_png_when_fetched(tmp_path: Path) -> None:
    data = encode([flat(60), flat(200)], "mpeg4", "yuv420p")
    source = {"pip": "pkg==1", "member": "pkg/v.avi", "sha256": _sha256(data), "frame": 1}
    photo = Photo("v", tmp_path / "v.png", "none", "v", (), frozenset(), None, source)
    assert photoset._suffix(source) == ".png"
    photoset._store(photo, data)
    assert Image.open(photo.path).format == "PNG"
    assert photoset._present(photo)
    cropped = {**source, "frame": 0, "crop": [0, 0, 20, 10]}
    photoset._store(Photo(**{**photo.__dict__, "source": cropped}), data)
    assert Image.open(photo.path).size == (20, 10)


def test_a_member_of_another_image_type_is_stored_as_png(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (1, 2, 3)).save(out, format="WEBP", lossless=True)
    source = {"deb": "pkg", "member": "usr/a.webp", "sha256": _sha256(out.getvalue())}
    assert photoset._suffix(source) == ".png"
    photo = Photo("a", tmp_path / "a.png", "none", "a", (), frozenset(), None, source)
    photoset._store(photo, out.getvalue())
    assert Image.open(photo.path).format == "PNG"


def test_fill_covers_the_frame_and_crops_the_excess_evenly() -> None:
    image = Image.new("RGB", (100, 50), (255, 0, 0))
    image.paste((0, 0, 255), (50, 0, 100, 50))
    square = fill(image, 50, 50)
    assert square.size == (50, 50)
    assert square.getpixel((2, 25)) == (255, 0, 0) and square.getpixel((47, 25)) == (0, 0, 255)
    assert fill(image, 400, 100).size == (400, 100)  # scaled up to cover


def test_a_pasted_photo_stands_at_its_place_and_height() -> None:
    black = Image.new("RGB", (200, 100))
    white = Image.new("RGB", (10, 20), (255, 255, 255))
    out = np.asarray(paste(black, white, [50, 80], 40, soft=0))
    ys, xs = np.nonzero(out[..., 0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (40, 59, 40, 79)  # 20 x 40, feet at y 80
    soft = np.asarray(paste(black, white, [50, 80], 40))
    assert soft[60, 50, 0] == 255 and 0 < soft[60, 40, 0] < 255  # its edge faded in
    cut = np.asarray(paste(black, white, [195, 30], 40, soft=0))  # partly out of the frame
    assert cut.shape == (100, 200, 3) and cut[:30, 185:, 0].all() and not cut[30:].any()


def test_a_composite_is_made_from_its_recipe() -> None:
    background = Image.new("RGB", (300, 100), (0, 90, 0))
    person = Image.new("RGB", (30, 60), (200, 0, 0))
    person.paste((0, 0, 200), (0, 0, 15, 60))  # blue on its left half
    pictures = {"photos/lawn": background, "person": person}
    item = {"photo": "person", "crop": [0, 0, 15, 60], "at": [80, 80], "height": 30, "soft": 0}
    source = {"photo": "photos/lawn", "size": [160, 90], "paste": [item]}
    out = make(source, pictures)
    assert out.size == (160, 90)
    assert out.getpixel((80, 65)) == (0, 0, 200) and out.getpixel((20, 20)) == (0, 90, 0)
    whole = {**item, "crop": [0, 0, 30, 60], "flip": True}  # 15 x 30 at x 73..87, mirrored
    flipped = make({**source, "paste": [whole]}, pictures)
    assert flipped.getpixel((75, 65)) == (200, 0, 0) and flipped.getpixel((85, 65)) == (0, 0, 200)


def test_the_night_look_is_grey_darker_flatter_and_the_same_every_time() -> None:
    rng = np.random.RandomState(1)
    day = Image.fromarray(rng.randint(60, 256, (60, 80, 3)).astype(np.uint8))
    dark = night(day, seed=4)
    pixels, before = np.asarray(dark).astype(float), np.asarray(day.convert("L")).astype(float)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert pixels.mean() < 0.6 * before.mean()
    assert pixels[..., 0].std() < before.std()
    assert night(day, seed=4).tobytes() == dark.tobytes()
    assert night(day, seed=5).tobytes() != dark.tobytes()  # another seed, other grain
    lit = np.asarray(night(day, seed=4, glow=[10, 10, 8])).astype(float)
    assert lit[5:15, 5:15].mean() > pixels[5:15, 5:15].mean() + 50  # the lamp's hot spot
    assert abs(lit[50:, 60:].mean() - pixels[50:, 60:].mean()) < 3  # far from it: as before
    assert make({"photo": "a", "night": True, "seed": 4}, {"a": day}).tobytes() == dark.tobytes()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(root: Path, set_name: str, name: str, text: str) -> Path:
    folder = root / "bench" / set_name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text)
    return folder / f"{name}.toml"


def _as_fetched(photo: Photo, image: Image.Image) -> None:
    photo.path.parent.mkdir(parents=True, exist_ok=True)
    photoset._save(photo, photoset._png(image))  # with its stamp, as fetch writes it


def test_an_origin_in_another_set_and_its_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photoset, "ROOT", tmp_path)
    _manifest(
        tmp_path, "photos", "dog", 'source = { pip = "p==1", member = "d.png", sha256 = "0" }'
    )
    _manifest(tmp_path, "cameras", "far", 'source = { photo = "photos/dog", size = [30, 20] }')
    (dog,) = photoset.repository_set("photos")
    _as_fetched(dog, Image.new("RGB", (60, 60), (200, 100, 0)))
    cameras = photoset.repository_set("cameras")
    assert photoset.fetch(cameras) == 1
    assert Image.open(cameras[0].path).size == (30, 20)
    assert photoset.fetch(cameras) == 0  # intact
    _as_fetched(dog, Image.new("RGB", (60, 60), (0, 0, 250)))  # its origin changed
    assert photoset.fetch(cameras) == 1
    assert Image.open(cameras[0].path).getpixel((3, 3)) == (0, 0, 250)
    _manifest(tmp_path, "cameras", "far", 'source = { photo = "photos/dog", size = [40, 20] }')
    assert photoset.fetch(photoset.repository_set("cameras")) == 1  # its recipe changed
    assert Image.open(cameras[0].path).size == (40, 20)


def test_an_origin_set_not_fetched_yet_is_fetched_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photoset, "ROOT", tmp_path)
    data = photoset._png(Image.new("RGB", (40, 30), (9, 99, 9)))
    pinned = f'source = {{ pip = "p==1", member = "d.png", sha256 = "{_sha256(data)}" }}'
    _manifest(tmp_path, "photos", "lawn", pinned)
    _manifest(tmp_path, "cameras", "dark", 'source = { photo = "photos/lawn", night = true }')
    asked = []

    def read_members(package: tuple[str, str], members: set[str]) -> dict[str, bytes]:
        asked.append(package)
        return {"d.png": data}

    monkeypatch.setattr(photoset, "read_members", read_members)
    assert photoset.fetch(photoset.repository_set("cameras")) == 1
    assert asked == [("pip", "p==1")]  # the photos set, fetched on the way
    assert (tmp_path / "tests" / "data" / "photos" / "lawn.png").read_bytes() == data
    assert Image.open(tmp_path / "tests" / "data" / "cameras" / "dark.png").size == (40, 30)


def test_an_origin_that_is_not_there_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photoset, "ROOT", tmp_path)
    (tmp_path / "bench" / "photos").mkdir(parents=True)
    _manifest(tmp_path, "cameras", "far", 'source = { photo = "photos/cat", night = true }')
    with pytest.raises(PhotoSetError, match=r"far\.toml: photo 'photos/cat' is not in the set"):
        photoset.fetch(photoset.repository_set("cameras"))
    _manifest(tmp_path, "cameras", "far", 'source = { photo = "nowhere/cat" }')
    with pytest.raises(PhotoSetError, match="nowhere/cat"):
        photoset.fetch(photoset.repository_set("cameras"))


@pytest.mark.parametrize(
    "source",
    [
        '{ photo = "a", paste = [{ photo = "b", at = [1, 2] }] }',  # no height
        '{ photo = "a", paste = [{ photo = "b", at = [1], height = 9 }] }',
        '{ photo = "a", size = [0, 10] }',
        '{ photo = "a", glow = [1, 2] }',
        '{ photo = "a", crop = [1, 2, 3] }',
        '{ deb = "x", member = "v.avi", sha256 = "0", frame = -1 }',
        '{ deb = "x", member = "v.avi", sha256 = "0", frame = 1.5 }',
        '{ deb = "x", member = "v.jpg", sha256 = "0", crop = [0, 0, 1] }',
    ],
)
def test_a_malformed_source_is_refused(source: str, tmp_path: Path) -> None:
    with pytest.raises(PhotoSetError, match="source needs"):
        parse("b", f"source = {source}", tmp_path / "b.png")


CAMERAS = photoset.repository_set("cameras")


def test_the_cameras_set_parses_pins_its_sources_and_has_what_it_is_for() -> None:
    assert len(CAMERAS) >= 40
    names = {p.name for p in CAMERAS}
    photos = {p.name for p in photoset.repository_set("photos")}
    for p in CAMERAS:
        assert p.kind in photoset.KINDS
        if "photo" in p.source:
            refs = [p.source["photo"], *(i["photo"] for i in p.source.get("paste", []))]
            for ref in refs:
                assert ref.removeprefix("photos/") in photos if "/" in ref else ref in names, ref
            assert "synthetic" in p.title.lower(), p.name  # a made-up frame says so
        else:
            assert p.source.get("sha256") and p.source.get("member"), p.name
        assert p.path.suffix in photoset.KEPT_SUFFIXES, p.name
    empty = [p for p in CAMERAS if p.kind == "none"]
    assert len(empty) >= 12 and not any(p.must for p in empty)
    assert len([p for p in CAMERAS if p.must]) >= 30
    vehicles = {"car", "truck", "bus", "motorcycle", "bicycle"}
    assert vehicles <= {label for p in CAMERAS for group in p.must for label in group}


def test_the_sets_are_fetched_with_cross_set_origins_first() -> None:
    origins = {
        ref.split("/")[0]
        for p in CAMERAS
        if "photo" in p.source
        for ref in [p.source["photo"], *(i["photo"] for i in p.source.get("paste", []))]
        if "/" in ref
    }
    assert all(photoset.SETS.index(s) < photoset.SETS.index("cameras") for s in origins)
