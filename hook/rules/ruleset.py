"""Rules per camera (HOOK_RULES): which of a camera's detections reach its labels.

A rules file is TOML, a list of `[[camera]]` entries (hook.rules.camera; read and validated by
hook.rules.parsing). The FIRST entry whose `match` fits the event's camera name applies and the
rest are not looked at; a camera no entry fits keeps every detection. `match` is a shell-style
pattern (fnmatch: `*`, `?`, `[abc]`) on the whole name, case-sensitive as Camio's names are
exact; a camera with no name is matched as "", so only patterns such as "*" fit it.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hook.detect.detection import Detection
from hook.detect.thresholds import NO_THRESHOLDS, Thresholds
from hook.errors import ConfigError
from hook.rules.camera import CameraRule
from hook.rules.parsing import RulesText, read_entries, read_text
from hook.rules.zones import Polygon
from hook.task import Dropped

__all__ = ["CameraRule", "Rules", "RulesFile", "describe"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rules:
    """Every camera's rules, in file order. `Rules()` has no entries and keeps everything."""

    entries: tuple[CameraRule, ...] = ()
    source: Path | None = None  # the file they were read from

    @classmethod
    def load(cls, path: Path) -> Rules:
        """Read and validate a rules file; any problem is a ConfigError naming file:line: key."""
        return cls(read_entries(path), source=path)

    def check_labels(self, known: Collection[str]) -> None:
        """ConfigError naming file:line: key for a label the model never reports.

        A typo ("persn") or a rename target in `labels` (they are matched before renaming)
        would otherwise drop everything of that label without a word.
        """
        for n, entry in enumerate(self.entries):
            named = [("labels", name) for name in entry.labels or ()]
            if isinstance(entry.min_score, Mapping):
                named += [("min_score", name) for name in entry.min_score]
            named += [("rename", name) for name in entry.rename]
            for key, name in named:
                if name in known:
                    continue
                where = f"{self.source}:{self._line(n, key)}" if self.source else "rules"
                raise ConfigError(
                    f"{where}: camera[{n}].{key}: {name!r} is not a label the model reports; "
                    + _suggestion(name, key, entry.rename.values(), known)
                )

    def _line(self, n: int, key: str) -> int:
        assert self.source is not None
        try:
            return RulesText(self.source, read_text(self.source)).line_of(n, key)
        except ConfigError:  # changed or gone since it was read
            return self.entries[n].line

    def entry_for(self, camera: str | None) -> CameraRule | None:
        """The first entry whose match fits `camera`, or None (then nothing is dropped)."""
        return next((entry for entry in self.entries if entry.fits(camera)), None)

    def apply(
        self,
        camera: str | None,
        key: str,
        detections: Sequence[Detection],
        size: tuple[int, int],
        thresholds: Thresholds = NO_THRESHOLDS,
    ) -> tuple[list[Detection], list[Dropped]]:
        """One image's detections -> (kept, renamed; dropped, each with why). `size` = (w, h).

        A detection under `thresholds` (HOOK_MIN_SCORE, HOOK_LABEL_SCORES) is no candidate and
        goes without a word, unless the camera's entry sets a lower min_score for its label.
        """
        entry = self.entry_for(camera)
        candidates = [d for d in detections if d.score >= _lowest(entry, thresholds, d.label)]
        if entry is None:
            return candidates, []
        kept: list[Detection] = []
        dropped: list[Dropped] = []
        for detection in candidates:
            why = entry.why_dropped(detection, size)
            if why is None:
                kept.append(entry.renamed(detection))
            else:
                dropped.append(Dropped(key, detection.label, detection.score, why))
        return kept, dropped


def _suggestion(name: str, key: str, renamed: Collection[str], known: Collection[str]) -> str:
    """What the operator probably meant: the model's label before renaming, a close spelling,
    or else every label the model reports (none cut off)."""
    if key == "labels" and name in renamed:
        return "labels are matched before renaming, so name the model's label"
    close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"the model's {len(known)} labels are: {', '.join(sorted(known))}"


def _lowest(entry: CameraRule | None, thresholds: Thresholds, label: str) -> float:
    """The lowest score a detection of `label` is a candidate from: the threshold, or the
    entry's own min_score for it when lower (a higher one drops, and says so)."""
    floor = entry.score_floor(label) if entry is not None else None
    limit = thresholds.of(label)
    return limit if floor is None else min(floor, limit)


def describe(rules: Rules) -> str:
    """What each entry does, in plain lines (what `python -m hook rules check` prints)."""
    source = f"{rules.source}: " if rules.source else ""
    if not rules.entries:
        return f"{source}no [[camera]] entries: every camera keeps every detection"
    count = len(rules.entries)
    lines = [
        f"{source}{count} [[camera]] entr{'y' if count == 1 else 'ies'}; the first whose "
        "match fits a camera's name applies",
        "(shell-style patterns, case-sensitive); a detection is dropped by the first check "
        "it fails:",
    ]
    for n, entry in enumerate(rules.entries):
        at = f" (line {entry.line})" if entry.line else ""
        lines.append(f'camera[{n}]{at}: match "{entry.match}"{_reach(rules.entries[:n], entry)}')
        lines += [f"  {line}" for line in _what(entry)]
    if not any(entry.match == "*" for entry in rules.entries):
        lines.append('a camera no entry fits keeps every detection (no "*" entry)')
    return "\n".join(lines)


def _reach(earlier: Sequence[CameraRule], entry: CameraRule) -> str:
    """Whether an earlier entry surely takes every camera this one would (not every such case)."""
    literal = not any(c in entry.match for c in "*?[")
    for n, before in enumerate(earlier):
        if before.match in ("*", entry.match) or (literal and before.fits(entry.match)):
            return f' - never applies: camera[{n}] (match "{before.match}") fits first'
    if entry.match == "*":
        return ", every camera the entries above miss (also one with no name)"
    return ""


def _what(entry: CameraRule) -> list[str]:
    said = []
    if entry.labels is not None:
        names = ", ".join(entry.labels)
        said.append(f"labels: reports only {names}" if names else "labels: none, drops everything")
    if isinstance(entry.min_score, Mapping):
        floors = ", ".join(f"{label} below {score:g}" for label, score in entry.min_score.items())
        said.append(
            f"min_score: drops {floors or 'nothing'}; other labels at HOOK_MIN_SCORE "
            "or HOOK_LABEL_SCORES"
        )
    elif entry.min_score is not None:
        said.append(f"min_score: drops detections scoring below {entry.min_score:g}")
    if entry.min_area is not None:
        said.append(f"min_area: drops boxes under {entry.min_area:g} of the image area")
    if entry.rename:
        renames = ", ".join(f"{a} as {b}" for a, b in entry.rename.items())
        said.append(f"rename: reports {renames} (the other keys name labels as detected)")
    for n, zone in enumerate(entry.ignore_zones):
        said.append(f"ignore_zones[{n}]: drops objects standing in {_points(zone)}")
    if entry.only_zones is not None:
        said.append("only_zones: drops objects standing in none of these:")
        said += [f"  [{n}] {_points(zone)}" for n, zone in enumerate(entry.only_zones)]
    return said or ["keeps every detection"]


def _points(zone: Polygon) -> str:
    return " ".join(f"({x:g}, {y:g})" for x, y in zone)


Stamp = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: the file is not there
# A file changed less than this long ago may be half-written (a shell's `>` empties it first):
# it is read once it has been left alone this long. Editors and `cp` take milliseconds.
QUIET_SECONDS = 0.2
WATCH_SECONDS = 0.5  # how often the worker's watch looks for a changed file (one os.stat)


class RulesFile:
    """HOOK_RULES as the worker holds it: read at start-up, read again when the file changes.

    A changed file that is invalid (or gone) leaves the rules in force as they were, with one
    warning per change that says so and why; the worker's start-up is the only place an
    invalid file is an error. Thread-safe: `current()` costs one os.stat when nothing changed.
    The worker's lanes take `in_force()` and never touch the file; its `watch` thread reads it.
    """

    def __init__(
        self, path: Path | None, rules: Rules, seen: Stamp, known: Collection[str] | None = None
    ) -> None:
        self.path = path
        self.known = known  # the model's labels, when given: names outside them are mistakes
        self._rules = rules
        self._seen = seen
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | None, known: Collection[str] | None = None) -> RulesFile:
        """Load `path` (None: no rules); a ConfigError if it cannot be read or is invalid,
        or (with `known`, the model's labels) names a label the model never reports."""
        if path is None:
            return cls(None, Rules(), None, known)
        seen = _stamp(path)  # before reading: a change made while reading is seen next time
        return cls(path, _load(path, known), seen, known)

    def current(self) -> Rules:
        """The rules in force, read again first if the file changed (and has settled)."""
        if self.path is not None and self._changed(_stamp(self.path)):
            with self._lock:
                stamp = _stamp(self.path)
                if self._changed(stamp):  # another thread may have read it meanwhile
                    self._read(stamp)
        return self._rules

    def in_force(self) -> Rules:
        """The rules in force, as last read: no look at the file (a lane holding a task uses
        this; `watch` reads a changed file beside it)."""
        return self._rules

    def watch(self, stopping: threading.Event, every: float = WATCH_SECONDS) -> None:
        """Read the file again when it changes, every `every` seconds until `stopping`: a
        thread of its own, so a slow or hostile file never holds a task."""
        while not stopping.wait(every):
            try:
                self.current()
            except Exception:  # a bug must not end the watch: the rules in force stay
                log.exception("rules file %s: reading it again failed", self.path)

    def reload(self) -> Rules:
        """Read the file again whether or not it changed (the worker's SIGHUP)."""
        if self.path is not None:
            with self._lock:
                self._read(_stamp(self.path))
        return self._rules

    def _changed(self, stamp: Stamp) -> bool:
        if stamp == self._seen:
            return False
        age = time.time() - stamp[0] / 1e9 if stamp else QUIET_SECONDS
        return not 0 <= age < QUIET_SECONDS  # a clock ahead of ours (age < 0) cannot wait

    def _read(self, stamp: Stamp) -> None:
        self._seen = stamp
        kept = f"keeping the rules in force ({_entries(self._rules)})"
        if stamp is None:
            log.warning("rules file %s is gone; %s", self.path, kept)
            return
        assert self.path is not None
        try:
            rules = _load(self.path, self.known)
        except ConfigError as exc:
            if _stamp(self.path) == stamp:  # else it is being written: judged once it settles
                log.warning("rules file changed but is invalid; %s: %s", kept, exc)
            return
        if _stamp(self.path) != stamp:  # written to while being read: read it again later
            return
        self._rules = rules
        log.info("rules read again from %s: %s", self.path, _entries(rules))


def _load(path: Path, known: Collection[str] | None) -> Rules:
    rules = Rules.load(path)
    if known is not None:
        rules.check_labels(known)
    return rules


def _entries(rules: Rules) -> str:
    count = len(rules.entries)
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _stamp(path: Path) -> Stamp:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
