"""The detector the settings name, composed at the edge (the worker, the CLI, the benchmarks).

hook.detect knows nothing of settings: this is where HOOK_MODEL, HOOK_ENGINE, HOOK_PRECISION,
HOOK_TILES and the thresholds become a Detector, an Ensemble or a Tiled one.
"""

from __future__ import annotations

import logging

from hook.config.settings import Settings
from hook.config.table import DEFAULT_LABEL_SCORES
from hook.detect import engines, pixels
from hook.detect.detection import Detects
from hook.detect.detector import Detector
from hook.detect.ensemble import FUSION_NEAR, KIN, MEMBER_FLOOR, Ensemble
from hook.detect.fusion import FusionRules
from hook.detect.thresholds import Thresholds, parse_label_scores
from hook.detect.tiled import Tiled
from hook.errors import ConfigError

log = logging.getLogger(__name__)


def detector_from(settings: Settings) -> Detects:
    """The detector HOOK_MODEL names: one model as it is, several fused, and tiles of large
    frames (HOOK_TILES) by the first model; candidates kept down to the thresholds' floor
    (hook.detect.thresholds: the rules apply HOOK_MIN_SCORE and HOOK_LABEL_SCORES)."""
    precision = engines.chosen_precision(settings.precision, settings.models, settings.device)
    pixels.use_threads(settings.threads)  # a lane's letterbox resizes on its own threads
    floor = settings.thresholds.floor
    members = [
        Detector(
            path,
            min_score=min(MEMBER_FLOOR, floor) if len(settings.models) > 1 else floor,
            iou=settings.iou,
            classes=settings.classes,
            device=settings.device,
            threads=settings.threads,
            engine=settings.engine,
            precision=precision,
        )
        for path in settings.models
    ]
    thresholds = _thresholds(settings, set().union(*(m.labels for m in members)))
    whole: Detector | Ensemble = members[0]
    rules = FusionRules((1.0,), near=FUSION_NEAR, kin=KIN, nms_iou=settings.iou)
    if len(members) > 1:
        whole = Ensemble(
            members,
            weights=settings.model_weights,
            sure=settings.model_sure,
            min_score=floor,
            iou=settings.iou,
            near=FUSION_NEAR,
            kin=KIN,
        )
        rules = whole.rules
        log.info(
            "detector: %s fused, weights %s, sure at %s",
            " + ".join(m.model.name for m in members),
            "/".join(f"{w:g}" for w in whole.weights),
            "/".join(f"{s:g}" for s in settings.model_sure) or "never",
        )
    detector: Detects = whole
    if settings.tiles.mode != "off":
        log.info(
            "detector: tiles %s by %s, added at %.2f",
            settings.tiles,
            members[0].model.name,
            settings.tile_score,
        )
        detector = Tiled(
            whole, members[0], settings.tiles, tile_score=settings.tile_score, rules=rules
        )
    detector.thresholds = thresholds
    return detector


def _thresholds(settings: Settings, known: set[str]) -> Thresholds:
    """The settings' thresholds for the labels the models know. HOOK_LABEL_SCORES naming another
    is a mistake (a typo), unless it is the default, written for the default models' labels."""
    unknown = sorted(set(settings.label_scores) - known)
    if unknown and settings.label_scores != parse_label_scores(DEFAULT_LABEL_SCORES):
        raise ConfigError(
            f"HOOK_LABEL_SCORES names labels the model does not know: {', '.join(unknown)}"
        )
    labels = {k: v for k, v in settings.label_scores.items() if k in known}
    return Thresholds(settings.min_score, labels)
