"""One camera's rules: a validated `[[camera]]` entry of HOOK_RULES, and what it drops and why.

The checks run in this order and the first one a detection fails is why it is dropped: labels,
min_score, min_area, ignore_zones, only_zones. Every key names labels as the detector says them
(before `rename`, which only changes what is reported). Zones use Camio's coordinates and test
where the object stands (hook.rules.zones).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import translate

from hook.detect.detection import Detection
from hook.rules.zones import Polygon, box_area, first_containing, standing_point

KEYS = ("match", "labels", "min_score", "min_area", "rename", "ignore_zones", "only_zones")


@dataclass(frozen=True)
class CameraRule:
    """One `[[camera]]` entry, validated. None (or empty) for a key means "no such limit"."""

    match: str
    labels: tuple[str, ...] | None = None
    min_score: float | Mapping[str, float] | None = None
    min_area: float | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    ignore_zones: tuple[Polygon, ...] = ()
    only_zones: tuple[Polygon, ...] | None = None
    line: int = 0  # where the entry starts in its file (0: not from a file)
    # `match` compiled once, at load: fnmatch's own cache holds 32,768 patterns, and a file
    # with more entries would compile them all again for every image (100 times slower)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", re.compile(translate(self.match)))

    def fits(self, camera: str | None) -> bool:
        """Whether this entry is for `camera` (no name is matched as "", case-sensitive)."""
        return self.pattern.match(camera or "") is not None

    def score_floor(self, label: str) -> float | None:
        """The lowest score kept for `label`; labels a per-label table leaves out have none."""
        if isinstance(self.min_score, Mapping):
            return self.min_score.get(label)
        return self.min_score

    def why_dropped(self, detection: Detection, size: tuple[int, int]) -> str | None:
        """Why this entry keeps `detection` out of the labels, or None when it is kept."""
        if self.labels is not None and detection.label not in self.labels:
            return "not in labels"
        floor = self.score_floor(detection.label)
        if floor is not None and detection.score < floor:
            return f"min_score {floor:g}"
        if self.min_area is not None and box_area(detection.box, size) < self.min_area:
            return f"min_area {self.min_area:g}"
        if self.ignore_zones or self.only_zones is not None:
            where = standing_point(detection.box, size)
            ignored = first_containing(self.ignore_zones, where)
            if ignored is not None:
                return f"ignore_zones[{ignored}]"
            if self.only_zones is not None and first_containing(self.only_zones, where) is None:
                return "outside only_zones"
        return None

    def renamed(self, detection: Detection) -> Detection:
        name = self.rename.get(detection.label)
        return detection if name is None else replace(detection, label=name)
