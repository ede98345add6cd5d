"""Rules files an operator (or an attacker with the config dir) could get wrong on purpose:
deeply nested TOML, a FIFO, a link to /dev/zero, a huge file, tens of thousands of entries.
Each is one clear refusal, never a hang, a traceback or memory run out; a running worker keeps
the rules it had."""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from hook.errors import ConfigError
from hook.rules.camera import CameraRule
from hook.rules.parsing import MAX_BYTES
from hook.rules.ruleset import QUIET_SECONDS, Rules, RulesFile
from tests.factories import write
from tests.procs import hook_cli as cli

NESTED = "x = " + "[" * 5000 + "]" * 5000 + "\n"


def test_deeply_nested_toml_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """tomllib recurses per nested array: its RecursionError is a refusal like any other."""
    path = write(tmp_path / "rules.toml", NESTED)
    with pytest.raises(ConfigError, match="nested too deeply"):
        Rules.load(path)
    done = cli("rules", "check", str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr == f"hook rules: {path}: nested too deeply to be rules (arrays in arrays...)\n"
    )


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO to read blocks until a writer comes: it is opened non-blocking and
    refused as what it is (the test has a deadline: a hang fails it)."""
    path = tmp_path / "rules.toml"
    os.mkfifo(path)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: _load_into(path, outcome), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO hung"
    assert isinstance(outcome[0], ConfigError)
    assert str(outcome[0]) == f"{path}: not a regular file (a FIFO); rules are a TOML file"


def _load_into(path: Path, outcome: list[BaseException]) -> None:
    try:
        Rules.load(path)
    except BaseException as exc:  # the test looks at what it was
        outcome.append(exc)


def test_a_link_to_dev_zero_and_a_huge_file_are_refused_unread(tmp_path: Path) -> None:
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match=r"not a regular file \(a device\)"):
        Rules.load(zero)
    huge = write(tmp_path / "huge.toml", "# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="over 1 MB"):
        Rules.load(huge)
    done = cli("rules", "check", str(zero))
    assert done.returncode == 2 and "not a regular file" in done.stderr


def test_a_running_worker_keeps_its_rules_when_the_file_turns_hostile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Replaced by nesting, then by a FIFO: each is a warning, the rules in force stay, and
    nobody waits."""
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "front*"\nlabels = ["dog"]\n')
    held = RulesFile.open(path)
    past = os.stat(path).st_mtime - QUIET_SECONDS - 1
    with caplog.at_level(logging.WARNING, logger="hook.rules.ruleset"):
        path.write_text(NESTED)
        os.utime(path, (past, past))  # settled
        assert held.current().entries[0].match == "front*"
        path.unlink()
        os.mkfifo(path)
        os.utime(path, (past - 1, past - 1))
        assert held.current().entries[0].match == "front*"
    assert caplog.text.count("rules file changed but is invalid; keeping the rules") == 2
    assert "nested too deeply" in caplog.text and "not a regular file (a FIFO)" in caplog.text


def test_matches_are_compiled_once_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past fnmatch's cache of 32,768 patterns every image compiled them all again (100 times
    slower): matching now compiles nothing."""
    entries = tuple(CameraRule(match=f"cam-{n}-*") for n in range(40_000))
    rules = Rules(entries=entries)
    front = CameraRule(match="Front[12]?")

    def compiles(*args: object) -> None:
        raise AssertionError("a pattern was compiled while matching")

    monkeypatch.setattr(fnmatch, "translate", compiles)
    monkeypatch.setattr(fnmatch, "_compile_pattern", compiles)
    found = rules.entry_for("cam-39999-door")
    assert found is not None and found.match == "cam-39999-*"
    assert rules.entry_for("nobody") is None
    assert front.fits("Front1x") and not front.fits("Front1") and not front.fits("Front3x")
    assert not front.fits("front1x") and not front.fits("Front1xy")  # case and the whole name


def test_the_watch_reads_a_changed_file_and_in_force_never_touches_it(tmp_path: Path) -> None:
    """The worker's lanes take in_force(), which never looks at the file; the watch thread
    reads it again when it changes, and ends when told."""
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "old"\n')
    held = RulesFile.open(path)
    stopping = threading.Event()
    watch = threading.Thread(target=held.watch, args=(stopping, 0.05), daemon=True)
    watch.start()
    path.unlink()
    os.mkfifo(path)  # a lane that read it now would block for good
    assert held.in_force().entries[0].match == "old"
    path.unlink()
    write(path, '[[camera]]\nmatch = "new"\n')
    deadline = time.monotonic() + 10
    while held.in_force().entries[0].match != "new":
        assert time.monotonic() < deadline, "the watch did not read the changed file"
        time.sleep(0.05)
    stopping.set()
    watch.join(5)
    assert not watch.is_alive()
