"""Two real models fused on real photos: what one misses the other brings, noise needs support."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from hook.config.detectors import detector_from
from hook.detect import ensemble
from hook.detect.detection import Detects
from hook.detect.detector import Detector
from hook.detect.ensemble import Ensemble
from hook.detect.tiled import Tiled
from hook.errors import ConfigError
from hook.intake.images import decode_image
from tests.factories import DATA, ROOT, make_settings

YOLO = ROOT / "models" / "yolov3-tiny.onnx"
NANODET = ROOT / "models" / "nanodet-g.onnx"
PHOTOS = DATA / "photos"

pytestmark = pytest.mark.skipif(
    not (YOLO.is_file() and NANODET.is_file() and PHOTOS.is_dir()),
    reason="needs both models and the photo set: bash scripts/setup.sh --test",
)


@pytest.fixture(scope="module")
def members() -> tuple[Detector, Detector]:
    return Detector(YOLO, min_score=0.1), Detector(NANODET, min_score=0.1)


def photo(path: Path, detector: Detects) -> tuple[Image.Image, tuple[int, int]]:
    return decode_image(path.read_bytes(), max_pixels=40_000_000, fit=detector.canvas)


def labels(detector: Detects, path: Path) -> dict[str, float]:
    best: dict[str, float] = {}
    for d in detector.detect(*photo(path, detector)):
        best[d.label] = max(best.get(d.label, 0.0), d.score)
    return best


def test_a_person_one_model_misses_comes_from_the_other(members) -> None:
    yolo, _ = members
    portrait = PHOTOS / "luis-pedro.jpg"
    assert "person" not in {d.label for d in yolo.detect(*photo(portrait, yolo)) if d.score > 0.25}
    fused = labels(Ensemble(members, min_score=0.3), portrait)
    assert fused.get("person", 0) >= 0.3


def test_one_models_low_score_noise_needs_support(members) -> None:
    _, nanodet = members
    seeds = PHOTOS / "dandelion.jpg"
    alone = labels(nanodet, seeds)
    assert max(alone.values()) >= 0.35  # nanodet-g alone reports something on a photo of nothing
    assert labels(Ensemble(members, min_score=0.3), seeds) == {}


def test_fused_boxes_stay_on_the_objects_of_a_non_square_photo(members) -> None:
    fused = Ensemble(members, min_score=0.3)
    image, size = photo(DATA / "dog.jpg", fused)
    found = {d.label: d for d in fused.detect(image, size)}
    assert {"dog", "bicycle"} <= found.keys()
    x1, y1, x2, y2 = found["dog"].box
    assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]
    assert 100 < (x1 + x2) / 2 < 330 and 200 < (y1 + y2) / 2 < 550  # the dog sits lower left


def test_one_event_in_one_batch_equals_image_by_image(members) -> None:
    fused = Ensemble(members, min_score=0.3)
    images = [photo(DATA / name, fused) for name in ("dog.jpg", "person.jpg", "horses.jpg")]
    together = fused.detect_many(images)
    assert together == [fused.detect(image, size) for image, size in images]
    assert all(together)


def test_detector_from_builds_one_model_or_the_fused_pair_and_tiles_by_the_first() -> None:
    single = detector_from(make_settings(HOOK_MODEL=str(YOLO), HOOK_TILES="off"))
    assert isinstance(single, Detector)
    pair = detector_from(
        make_settings(
            HOOK_MODEL=f"{YOLO},{NANODET}",
            HOOK_MODEL_WEIGHTS="1,1.5",
            HOOK_MIN_SCORE="0.35",
            HOOK_MODEL_SURE="0.7,0.6",
            HOOK_TILES="off",
            HOOK_LABEL_SCORES="",
        )
    )
    assert isinstance(pair, Ensemble)
    assert pair.weights == (1.0, 1.5) and pair.rules.sure == (0.7, 0.6)
    assert pair.min_score == 0.2  # candidates to the floor: the rules apply the thresholds
    assert [m.model for m in pair.members] == [YOLO, NANODET]
    tiled = detector_from(make_settings(HOOK_TILES="3x2", HOOK_TILE_SCORE="0.6"))
    assert isinstance(tiled, Tiled) and isinstance(tiled.whole, Ensemble)
    assert tiled.tiler is tiled.whole.members[0] and tiled.tile_score == 0.6
    assert ensemble.members_of(tiled) == tiled.whole.members
    assert tiled.thresholds == make_settings().thresholds  # what the rules report from


def test_label_scores_must_name_labels_the_model_knows() -> None:
    with pytest.raises(ConfigError, match="HOOK_LABEL_SCORES names labels the model does not"):
        detector_from(make_settings(HOOK_LABEL_SCORES="persn=0.3"))
    with pytest.raises(ConfigError, match="HOOK_LABEL_SCORES='person' is invalid"):
        make_settings(HOOK_LABEL_SCORES="person")
    with pytest.raises(ConfigError, match="HOOK_MODEL_SURE has 1 scores for 2 models"):
        make_settings(HOOK_MODEL_SURE="0.5")
    assert make_settings(HOOK_MODEL_SURE="none").model_sure == ()
    assert make_settings(HOOK_LABEL_SCORES="none").thresholds.labels == {}


def test_weights_that_do_not_fit_the_models_are_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match="HOOK_MODEL_WEIGHTS has 3 weights for 2 models"):
        make_settings(HOOK_MODEL=f"{YOLO},{NANODET}", HOOK_MODEL_WEIGHTS="1,1,1")
    with pytest.raises(ConfigError, match="HOOK_MODEL_WEIGHTS"):
        make_settings(HOOK_MODEL_WEIGHTS="1,-1")


def test_the_default_pair_gets_its_weights_however_it_is_spelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert make_settings().model_weights == (1.0, 1.5)
    monkeypatch.chdir(ROOT)  # as docs/detector.md writes it, relative to the checkout
    relative = make_settings(HOOK_MODEL="models/yolov3-tiny.onnx,models/nanodet-g.onnx")
    assert relative.model_weights == (1.0, 1.5)
    swapped = make_settings(HOOK_MODEL=f"{NANODET},{YOLO}")
    assert swapped.model_weights == (1.5, 1.0)
    assert make_settings().model_sure == (0.6, 0.55) and swapped.model_sure == (0.55, 0.6)
    assert make_settings(HOOK_MODEL=f"{YOLO},{YOLO.with_name('other.onnx')}").model_weights == ()
    with pytest.raises(ConfigError, match="HOOK_MODEL_WEIGHTS is for several models"):
        make_settings(HOOK_MODEL=str(YOLO), HOOK_MODEL_WEIGHTS="2")
    with pytest.raises(ConfigError, match="HOOK_MODEL_WEIGHTS=',' is invalid"):
        make_settings(HOOK_MODEL_WEIGHTS=",")


def test_members_with_one_canvas_share_one_letterbox(members) -> None:
    fused = Ensemble(members)
    image, size = photo(DATA / "dog.jpg", fused)
    views, box = fused.to_canvas(image, size)
    assert views[0] is views[1] and box is views[0][1]
