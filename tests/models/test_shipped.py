"""The builds the tests make land in their own folder: models/build.py --out DIR writes there and
nowhere else, so the suite never rewrites the shipped models the worker and other tests run on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from models import build
from tests.factories import ROOT
from tests.models.support import fingerprint, written


def test_a_build_into_a_folder_writes_only_there(tmp_path: Path) -> None:
    """yolov3-tiny built afresh into an empty folder from the kept darknet files, offline: the
    folder gets the whole build, identical to the shipped one, and models/ not one write."""
    assert build.intact(), "run .venv/bin/python models/build.py first"
    out = tmp_path / "models"
    shutil.copytree(build.SOURCE, out / build.SOURCE.name)  # the kept sources, as an upgrade has
    shipped = fingerprint()
    env = {"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": "/dev/null"}
    argv = [sys.executable, str(ROOT / "models/build.py"), "yolov3-tiny", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / build.MODEL.name}" in done.stdout
    assert written(shipped, fingerprint()) == []  # not even the same bytes again
    made = build.YOLO.at(out)
    assert made.intact() and build.intact(out)
    assert sorted(fingerprint(out)) == sorted(
        p.relative_to(out).as_posix() for p in (made.model, made.stamp, *made.pinned)
    )  # the model, its stamp, the labels and the kept sources: no temporary file left
    assert made.stamp.read_text() == build.STAMP.read_text()  # the shipped model, byte for byte
