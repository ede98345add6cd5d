"""Reading a rules file (HOOK_RULES): TOML -> validated CameraRule entries, or one clear error.

Every problem is a ConfigError `FILE:LINE: KEY: what is wrong`, KEY as a path into the file
(`camera[1].min_score.person`, entries and zones counted from 0), so an operator can go
straight to it. tomllib gives the line of a syntax error; for a value that parses but is wrong,
the line is found by scanning the text for that key within its `[[camera]]` block (falling back
to the block's first line when the key is written in a form the scan does not know).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hook.errors import ConfigError
from hook.rules.camera import KEYS, CameraRule
from hook.rules.zones import EDGE, Point, Polygon, area

CAMERA_HEADER = re.compile(r"\s*\[\[\s*camera\s*\]\]")
TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")
BARE_WORD = re.compile(r"[A-Za-z_][\w*?.-]*")  # a camera pattern or a label, unquoted
KEY_LINE = re.compile(r"""\s*(["']?)([A-Za-z0-9_.-]+)\1\s*=""")
MAX_BYTES = 1_000_000  # a rules file of 10,000 cameras is about 1 MB; more is a mistake
ZONES_HELP = "polygons of [x, y] points, fractions 0..1 of the image, origin bottom-left"


def read_entries(path: Path) -> tuple[CameraRule, ...]:
    """The file's `[[camera]]` entries, in order; a ConfigError for anything wrong in it."""
    text = read_text(path)
    source = RulesText(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise source.syntax_error(str(exc)) from None
    except RecursionError:  # tomllib recurses per nested array or table
        raise ConfigError(f"{path}: nested too deeply to be rules (arrays in arrays...)") from None
    return source.entries(data)


def read_text(path: Path) -> str:
    """The file as text, read only if it is a regular file of at most MAX_BYTES: a FIFO would
    block the reader for good, a link to /dev/zero fill its memory. A ConfigError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, and is refused
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the rules file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path}: not a regular file ({_kind(mode)}); rules are a TOML file")
        raw = file.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: over {MAX_BYTES // 1_000_000} MB; rules files are far smaller")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")]
    kinds += [(stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a file")


class RulesText:
    """One file's text: validates what tomllib made of it and finds the line of a key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines() or [""]
        self.headers = [n for n, line in enumerate(self.lines) if CAMERA_HEADER.match(line)]

    def entries(self, data: dict[str, Any]) -> tuple[CameraRule, ...]:
        for name, value in data.items():
            if name != "camera":
                kind = "table" if isinstance(value, dict) else "key"
                raise self.error(None, name, f"unknown {kind}: the file holds [[camera]] entries")
        cameras = data.get("camera", [])
        if not isinstance(cameras, list) or not all(isinstance(c, dict) for c in cameras):
            raise self.error(None, "camera", "must be [[camera]] tables (an array of tables)")
        return tuple(self.entry(n, entry) for n, entry in enumerate(cameras))

    def entry(self, n: int, entry: dict[str, Any]) -> CameraRule:
        for key in entry:
            if key not in KEYS:
                close = difflib.get_close_matches(key, KEYS, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise self.error(n, key, f"unknown key ({hint}the keys are {', '.join(KEYS)})")
        if "match" not in entry:
            raise self.error(n, None, 'has no match (a camera name pattern; "*" fits every one)')
        match = entry["match"]
        if not isinstance(match, str) or not match:
            raise self.error(
                n,
                "match",
                f'must be a camera name pattern such as "front*" or "*", not {_shown(match)}',
            )
        only = entry.get("only_zones")  # absent (None): objects anywhere; TOML has no null
        return CameraRule(
            match=match,
            labels=self.labels(n, entry.get("labels")),
            min_score=self.min_score(n, entry.get("min_score")),
            min_area=self.min_area(n, entry.get("min_area")),
            rename=self.rename(n, entry.get("rename", {})),
            ignore_zones=self.zones(n, "ignore_zones", entry.get("ignore_zones", [])),
            only_zones=None if only is None else self.zones(n, "only_zones", only, at_least=1),
            line=self.block(n)[0] + 1,
        )

    def labels(self, n: int, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(n, "labels", f"must be a list of label names, not {_shown(value)}")
        for i, label in enumerate(value):
            if not isinstance(label, str) or not label:
                raise self.error(
                    n, "labels", f"must be a label name, not {_shown(label)}", f"[{i}]"
                )
        return tuple(value)

    def min_score(self, n: int, value: Any) -> float | dict[str, float] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return {
                label: self.fraction(n, "min_score", score, _dotted(label))
                for label, score in value.items()
            }
        return self.fraction(n, "min_score", value)

    def min_area(self, n: int, value: Any) -> float | None:
        return None if value is None else self.fraction(n, "min_area", value)

    def fraction(self, n: int, key: str, value: Any, sub: str = "") -> float:
        if not _fraction(value):
            what = "a table of label = score, or " if key == "min_score" and not sub else ""
            raise self.error(
                n, key, f"must be {what}a number from 0 to 1, not {_shown(value)}", sub
            )
        return float(value)

    def rename(self, n: int, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(
                n, "rename", f'must be a table such as {{ person = "human" }}, not {_shown(value)}'
            )
        for label, name in value.items():
            if not isinstance(name, str) or not name:
                raise self.error(
                    n, "rename", f"must be a new name, not {_shown(name)}", _dotted(label)
                )
        return dict(value)

    def zones(self, n: int, key: str, value: Any, at_least: int = 0) -> tuple[Polygon, ...]:
        if not isinstance(value, list):
            raise self.error(n, key, f"must be a list of {ZONES_HELP}, not {_shown(value)}")
        if len(value) < at_least:
            raise self.error(n, key, "lists no polygon: leave it out to keep objects anywhere")
        return tuple(self.polygon(n, key, i, zone) for i, zone in enumerate(value))

    def polygon(self, n: int, key: str, i: int, zone: Any) -> Polygon:
        if isinstance(zone, list) and zone and all(_number(v) for v in zone):
            raise self.error(
                n,
                key,
                f"is a point, not a polygon: {key} is a list of polygons, "
                "[ [[x, y], [x, y], [x, y]] ]",
                f"[{i}]",
            )
        if not isinstance(zone, list) or len(zone) < 3:
            count = f"it has {len(zone)}" if isinstance(zone, list) else f"not {_shown(zone)}"
            raise self.error(n, key, f"a polygon needs at least 3 [x, y] points; {count}", f"[{i}]")
        points: list[Point] = []
        for p, point in enumerate(zone):
            ok = isinstance(point, list) and len(point) == 2
            if not ok or not all(_fraction(v) for v in point):
                raise self.error(
                    n,
                    key,
                    "must be an [x, y] point, both from 0 to 1 (origin bottom-left), "
                    f"not {_shown(point)}",
                    f"[{i}][{p}]",
                )
            points.append((float(point[0]), float(point[1])))
        if area(points) <= EDGE:
            raise self.error(n, key, "its points lie on one line: it encloses nothing", f"[{i}]")
        return tuple(points)

    def error(self, n: int | None, key: str | None, problem: str, sub: str = "") -> ConfigError:
        """`FILE:LINE: camera[n].key<sub>: problem`, the line found by scanning for the key."""
        where = "" if n is None else f"camera[{n}]"
        if key is not None:
            where += f".{key}" if where else key
        where += sub
        return ConfigError(f"{self.path}:{self.line_of(n, key)}: {where}: {problem}")

    def syntax_error(self, message: str) -> ConfigError:
        """tomllib's message as `FILE:LINE: KEY: not valid TOML: ...`, KEY read off that line,
        with the line itself and, for a bare word where a value goes, the quoted fix."""
        found = TOML_POSITION.search(message)
        line = int(found.group(1)) if found and found.group(1) else len(self.lines)
        detail = message[: found.start()] if found else message
        raw = self.lines[min(line, len(self.lines)) - 1] if self.lines else ""
        text = raw.strip()
        if found and found.group(2):
            detail += f" at column {found.group(2)} of {text!r}"
            detail += _quoting_hint(raw, int(found.group(2)) - 1)
        key = KEY_LINE.match(text)
        named = key.group(2) if key else text or "(blank line)"
        return ConfigError(f"{self.path}:{line}: {named}: not valid TOML: {detail}")

    def block(self, n: int) -> tuple[int, int]:
        """Line indexes [start, end) of the n-th `[[camera]]` block (the whole file if unknown)."""
        if n >= len(self.headers):  # written as `camera = [{...}]`, not as [[camera]] tables
            return 0, len(self.lines)
        end = self.headers[n + 1] if n + 1 < len(self.headers) else len(self.lines)
        return self.headers[n], end

    def line_of(self, n: int | None, key: str | None) -> int:
        """1-based line of `key` in entry n (None: top level), else of the entry's start."""
        if n is None:
            start, end = 0, self.headers[0] if self.headers else len(self.lines)
            table = re.compile(rf"\s*\[+\s*{_key_pattern(key or '')}\s*[\].]")
            for i, line in enumerate(self.lines):
                if table.match(line):
                    return i + 1
        else:
            start, end = self.block(n)
            if key is None:
                return start + 1
            table = re.compile(rf"\s*\[+\s*camera\s*\.\s*{_key_pattern(key)}\s*[\].]")
        assignment = re.compile(rf"\s*{_key_pattern(key or '')}\s*[=.]")
        for i in range(start, end):
            if assignment.match(self.lines[i]) or table.match(self.lines[i]):
                return i + 1
        return start + 1


def _quoting_hint(line: str, at: int) -> str:
    """'; text takes quotes: match = "front"' when a bare word starts at `at` (0-based), as in
    `match = front`: the usual slip in a TOML value."""
    word = BARE_WORD.match(line, at)
    if word is None or word.group() in ("true", "false", "inf", "nan"):
        return ""
    fixed = f'{line[:at]}"{word.group()}"{line[word.end() :]}'.strip()
    return f"; text takes quotes: {fixed}"


def _key_pattern(key: str) -> str:
    name = re.escape(key)
    return rf"(?:{name}|\"{name}\"|'{name}')"


def _dotted(label: str) -> str:
    """`.person`, or `."traffic light"` for a label that is no bare TOML key."""
    return f".{label}" if re.fullmatch(r"[A-Za-z0-9_-]+", label) else f'."{label}"'


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _fraction(value: Any) -> bool:
    return _number(value) and 0 <= value <= 1


def _shown(value: Any) -> str:
    """A value as TOML would write it, and its TOML type when that helps."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f'"{value}" (a string)'
    if isinstance(value, Mapping):
        return "a table"
    return repr(value)
