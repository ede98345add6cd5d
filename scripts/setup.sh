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
  if [ "$want_tests" = 1 ]; then
    echo "setup: ready to test: .venv/bin/python -m pytest"
  else
    echo "setup: ready: HOOK_API_KEY=... .venv/bin/python -m hook run"
  fi
}

main "$@"
