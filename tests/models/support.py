"""What the builder tests share: copies of the shipped builds in a temporary folder, which a test
builds over, tampers with or finds intact (`models/build.py --out DIR`), and a fingerprint of a
folder that says whether anything in it was written. The shipped files in models/ are what the
worker and the rest of the suite run on: no test here may rewrite them, not even byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

from hook.detect.model_files import file_sha256, int8_path, stamp_path
from models import build, int8

Fingerprint = dict[str, tuple[int, int, str]]


def fingerprint(folder: Path = build.HERE) -> Fingerprint:
    """Every file under `folder` but code and bytecode, by relative path: (size, mtime_ns,
    sha256). The mtime catches a rebuild that wrote the same bytes again."""
    found: Fingerprint = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in relative.parts:
            stat = path.stat()
            found[relative.as_posix()] = (stat.st_size, stat.st_mtime_ns, file_sha256(path))
    return found


def copy_build(output: build.Output, out: Path) -> build.Output:
    """One model's shipped build (model, stamp, labels, licence, kept sources) copied into `out`;
    the copy, which models/build.py --out `out` finds intact."""
    copy = output.at(out)
    sources = [output.model, output.stamp, *output.pinned]
    for source, target in zip(sources, [copy.model, copy.stamp, *copy.pinned], strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return copy


def copy_int8(out: Path) -> None:
    """The shipped int8 builds and their stamps, where there are any, copied into `out`."""
    for model in int8.MODELS:
        for path in (int8_path(model), stamp_path(model)):
            if path.is_file():
                shutil.copy2(path, out / path.name)


def written(before: Fingerprint, after: Fingerprint) -> list[str]:
    """The files added, changed or removed between two fingerprints of a folder."""
    names = before.keys() | after.keys()
    return sorted(name for name in names if before.get(name) != after.get(name))
