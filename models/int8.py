"""The int8 builds of the default models: models/<stem>.int8.onnx, for HOOK_PRECISION=int8.

Each is models/quantize.py's shipped variant of the f32 model beside it, calibrated on the
repository's photo set (bench/photos, fetched into tests/data/photos) and, where the checkout has
its manifests, the camera-like frames (bench/cameras -> tests/data/cameras), every photo of each
set in name order (`python -m bench.photoset photos cameras` fetches them), so the build is the
same on every machine and is the model whose accuracy bench/precision.py and bench/engines.py
measure. The held-out set (bench/holdout) is never calibrated on. There is no fallback to other
photos: a build calibrated on whatever a machine has would be a different model under the same
name. Its stamp (`<stem>.int8.onnx.sha256`) records what it was made from (the f32 model, the
variant, and `calibration`: the sha256 of the list of calibration photos, set/name and sha256
each); a build is intact while the int8 file, the f32 model and the photos (when present) still
match it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hook.detect.model_files import file_sha256, int8_path, read_stamp, stamp_path
from hook.detect.pixels import RESIZE

SHIPPED = "conv-rr"  # models/quantize.py's variant these builds use

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = (HERE / "yolov3-tiny.onnx", HERE / "nanodet-g.onnx")  # the default detector's
BENCH = ROOT / "bench"
DATA = ROOT / "tests" / "data"
CALIBRATION_SETS = ("photos", "cameras")  # never "holdout": it is kept for an independent check
REQUIRED = "photos"  # the others calibrate where the checkout has their manifests
SUFFIXES = (".jpg", ".png")
FETCH = ".venv/bin/python -m bench.photoset photos cameras"


def calibration_photos() -> list[Path] | None:
    """The calibration sets' photos, set by set and each in name order: the repository's photo
    set and, where bench/cameras has manifests, the camera-like frames; None unless every photo
    of each such set is here."""
    found = []
    for name in CALIBRATION_SETS:
        manifests = sorted((BENCH / name).glob("*.toml"))
        if not manifests and name == REQUIRED:
            return None
        for manifest in manifests:
            folder = DATA / name
            hits = [p for p in (folder / f"{manifest.stem}{s}" for s in SUFFIXES) if p.is_file()]
            if not hits:
                return None
            found.append(hits[0])
    return found or None


def described(photos: Sequence[Path]) -> str:
    """`44 photos of tests/data/photos and 47 of tests/data/cameras`."""
    counts: dict[str, int] = {}
    for photo in photos:
        counts[photo.parent.name] = counts.get(photo.parent.name, 0) + 1
    parts = [f"{n} of tests/data/{name}" for name, n in counts.items()]
    parts[0] = parts[0].replace(" of ", " photos of ", 1)
    return " and ".join(parts)


def recipe(model: Path, photos: Sequence[Path] | None) -> dict[str, str]:
    """What an int8 build is made of: its f32 model, its variant, the resize its calibration
    canvases were letterboxed by, and (when here) its photos."""
    made = {"source": file_sha256(model), "variant": SHIPPED, "resize": RESIZE}
    if photos is not None:
        listing = "".join(f"{p.parent.name}/{p.name} {file_sha256(p)}\n" for p in photos)
        made["calibration"] = hashlib.sha256(listing.encode()).hexdigest()
    return made


def intact(model: Path, photos: Sequence[Path] | None) -> bool:
    """The int8 build is there, matches its stamp, and was made from what is here now."""
    built, stamp = int8_path(model), read_stamp(model)
    if stamp is None or not (built.is_file() and model.is_file()):
        return False
    first, recorded = stamp
    wanted = recipe(model, photos)
    if photos is None:
        recorded.pop("calibration", None)  # nothing to compare with: the f32 model decides
    return first == f"{file_sha256(built)}  {built.name}" and recorded == wanted


def build(model: Path, photos: Sequence[Path]) -> Path:
    """Quantize `model` beside itself, its temporary files too; the stamp goes first and comes
    back last."""
    from models.quantize import quantized  # noqa: PLC0415 - 0.8 s of imports, for a build only

    built, stamp = int8_path(model), stamp_path(model)
    stamp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=built.parent, prefix=".int8-") as tmp:
        out = quantized(model, Path(tmp) / built.name, photos, SHIPPED)
        os.replace(out, built)
    made = recipe(model, photos)
    lines = [f"{file_sha256(built)}  {built.name}", *(f"{k} {v}" for k, v in made.items())]
    tmp_stamp = stamp.with_name(f".{stamp.name}.tmp-{os.getpid()}")
    tmp_stamp.write_text("\n".join(lines) + "\n")
    os.replace(tmp_stamp, stamp)
    return built


def run(force: bool, required: bool, out: Path = HERE) -> bool:
    """models/build.py's int8 target: each default model's build in `out` (models/ unless
    --out says otherwise: the tests build elsewhere), unless intact.

    Without the photo set: False when the target was asked for by name (`required`), else a
    note and True (`all` on an installation, or a checkout that has not fetched the photos).
    """
    photos = calibration_photos()
    models = [out / m.name for m in MODELS]
    missing = [m.name for m in models if not m.is_file()]
    if photos is None or missing:
        need = f"the calibration photos: {FETCH}" if photos is None else ", ".join(missing)
        print(f"models/build.py: int8 builds {'need' if required else 'skipped, they need'} {need}")
        return not required
    for model in models:
        built = int8_path(model)
        if intact(model, photos) and not force:
            print(f"models/build.py: {built.name} is already built and intact; nothing to do")
            continue
        build(model, photos)
        print(
            f"models/build.py: wrote {built} ({built.stat().st_size / 1e6:.1f} MB), "
            f"calibrated on {described(photos)}"
        )
    return True
