"""Model files: a model's int8 build beside it, the stamp that says what it was made from,
and the sha256 of a file, which the builds (models/) and the worker (hook.detect.engines) both read.

A stamp (`<stem>.int8.onnx.sha256`) is the build's own `sha256  name` line, then one
`key value` line per ingredient: `source` (the f32 model's sha256), `variant`, `calibration`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def int8_path(model: Path) -> Path:
    """Where models/build.py int8 writes a model's int8 build: beside it, `<stem>.int8.onnx`."""
    return model.with_name(f"{model.stem}.int8.onnx")


def stamp_path(model: Path) -> Path:
    """The stamp of a model's int8 build: `<stem>.int8.onnx.sha256`."""
    built = int8_path(model)
    return built.with_name(f"{built.name}.sha256")


def read_stamp(model: Path) -> tuple[str, dict[str, str]] | None:
    """The stamp's first line (the build's sha256 and name) and its ingredients; None if absent."""
    try:
        lines = stamp_path(model).read_text().splitlines()
    except OSError:
        return None
    ingredients = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    return (lines[0] if lines else ""), ingredients


def file_sha256(path: Path) -> str:
    """The file's sha256, read a megabyte at a time (models are tens of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
