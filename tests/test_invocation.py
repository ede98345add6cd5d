"""The hook command people are told to paste names the venv's script, never a bare python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hook.invocation import hook_command
from tests.procs import ROOT


def venv(root: Path, *, script: bool) -> Path:
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").touch()
    if script:
        (bin_dir / "hook").touch()
    return bin_dir / "python"


def test_the_venvs_script_relative_to_its_checkout(tmp_path: Path) -> None:
    python = venv(tmp_path, script=True)
    assert hook_command(tmp_path, str(python)) == ".venv/bin/hook"
    assert hook_command(tmp_path / "elsewhere", str(python)) == f"{tmp_path}/.venv/bin/hook"


def test_without_the_script_this_python_with_m(tmp_path: Path) -> None:
    python = venv(tmp_path, script=False)
    assert hook_command(tmp_path, str(python)) == ".venv/bin/python -m hook"


def test_help_examples_run_as_written_from_the_checkout() -> None:
    """--help's examples start with the command itself, which runs from the checkout."""
    shown = subprocess.run(
        [sys.executable, "-m", "hook", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "  .venv/bin/hook status\n" in shown and "python -m hook" not in shown
    again = subprocess.run(
        ["bash", "-c", ".venv/bin/hook settings --help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0 and "usage: .venv/bin/hook settings" in again.stdout
