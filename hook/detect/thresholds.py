"""Score thresholds per label: the lowest score a detection needs to be reported.

A camera sees some things more faintly than others: a person or a car far off scores lower than
a giraffe close up, while a false label on a photo of leaves is rarely a person. So each label
may have its own threshold (HOOK_LABEL_SCORES) beside the one for the rest (HOOK_MIN_SCORE), and a
camera's rule may set its own per label (hook.rules.camera). Detectors keep candidates down to
`floor`, so a rule can lower a label's threshold that far.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

NMS_IOU = 0.45  # boxes of one label overlapping more are one object (HOOK_IOU's default)
FLOOR = 0.2  # detectors keep candidates down to this (or the lowest threshold, when lower)


@dataclass(frozen=True)
class Thresholds:
    """The default threshold and those of named labels."""

    default: float
    labels: Mapping[str, float] = field(default_factory=dict)

    def of(self, label: str) -> float:
        return self.labels.get(label, self.default)

    @property
    def floor(self) -> float:
        """How low the detectors keep candidates: FLOOR, or the lowest threshold if lower."""
        return min(FLOOR, self.default, *self.labels.values())


NO_THRESHOLDS = Thresholds(0.0)  # every detection is a candidate


def parse_label_scores(raw: str) -> dict[str, float]:
    """`person=0.3, car=0.3` -> {"person": 0.3, "car": 0.3}, `none` -> {}; ValueError naming
    the bad part."""
    scores: dict[str, float] = {}
    if raw.strip().lower() == "none":
        return scores
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        label, sep, value = part.partition("=")
        label = label.strip()
        if not sep or not label:
            raise ValueError(f"{part!r} is not label=score")
        try:
            score = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: {value.strip()!r} is not a number") from None
        if not 0 <= score <= 1:
            raise ValueError(f"{part!r}: a score is from 0 to 1")
        if label in scores:
            raise ValueError(f"{label!r} is given twice")
        scores[label] = score
    return scores
