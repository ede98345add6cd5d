"""Weighted box fusion across models: pure, on hand-made detections."""

from __future__ import annotations

import pytest

from hook.detector import Detection
from hook.fusion import fuse, iou


def det(label: str, score: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(label, score, box)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_both_models_agree_one_object_with_the_mean_score_and_weighted_box() -> None:
    fused = fuse([[det("dog", 0.8, (0, 0, 100, 100))], [det("dog", 0.4, (10, 10, 110, 110))]])
    assert len(fused) == 1
    assert fused[0].label == "dog"
    assert fused[0].score == pytest.approx(0.6)
    # score-weighted mean: (0.8 * 0 + 0.4 * 10) / 1.2
    assert fused[0].box == pytest.approx((10 / 3, 10 / 3, 100 + 10 / 3, 100 + 10 / 3))


def test_a_lone_box_is_scaled_by_its_models_share_of_the_weights() -> None:
    alone = [[det("umbrella", 0.45, (0, 0, 50, 50))], []]
    assert fuse(alone)[0].score == pytest.approx(0.225)
    assert fuse(alone, min_score=0.3) == []  # one model's low-score noise needs support
    assert fuse(alone, weights=[3, 1])[0].score == pytest.approx(0.3375)
    strong = [[], [det("person", 0.9, (0, 0, 50, 50))]]
    assert fuse(strong, min_score=0.3)[0].score == pytest.approx(0.45)  # a high score passes


def test_labels_never_merge_and_one_model_contributes_once_per_object() -> None:
    fused = fuse(
        [
            [det("car", 0.9, (0, 0, 100, 50)), det("car", 0.7, (5, 0, 105, 50))],
            [det("truck", 0.8, (0, 0, 100, 50))],
        ],
        nms_iou=0.95,  # the clustering alone; a model's own NMS never leaves two such boxes
    )
    assert sorted((d.label, round(d.score, 3)) for d in fused) == [
        ("car", 0.35),
        ("car", 0.45),
        ("truck", 0.4),
    ]


def test_far_apart_boxes_are_separate_objects_and_results_are_best_first() -> None:
    fused = fuse(
        [
            [det("person", 0.6, (0, 0, 10, 30)), det("person", 0.9, (100, 0, 110, 30))],
            [det("person", 0.7, (1, 0, 11, 30))],
        ]
    )
    assert [round(d.score, 3) for d in fused] == [0.65, 0.45]
    assert fused[0].box[0] < 5 and fused[1].box[0] == 100


def test_weights_must_fit_the_models() -> None:
    with pytest.raises(ValueError, match="one positive weight per model"):
        fuse([[], []], weights=[1])
    with pytest.raises(ValueError, match="one positive weight per model"):
        fuse([[], []], weights=[1, 0])


def test_two_clusters_of_one_object_that_still_overlap_are_counted_once() -> None:
    # IoU 0.5: below the 0.55 that joins boxes into one cluster, above the 0.45 of NMS
    a, b = (0.0, 0.0, 100.0, 100.0), (0.0, 0.0, 100.0, 50.0)
    assert iou(a, b) == pytest.approx(0.5)
    fused = fuse([[det("person", 0.95, a)], [det("person", 0.95, b)]])
    assert [(d.label, round(d.score, 3)) for d in fused] == [("person", 0.475)]
    assert len(fuse([[det("person", 0.95, a)], [det("person", 0.95, b)]], nms_iou=0.6)) == 2
