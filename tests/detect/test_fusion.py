"""Weighted box fusion across models: pure, on hand-made detections."""

from __future__ import annotations

import pytest

from hook.detect.detection import Detection
from hook.detect.fusion import CLOSE_VEHICLES, FusionRules, centre_gap, fuse, iou

EQUAL = FusionRules((1.0, 1.0))


def det(label: str, score: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(label, score, box)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_both_models_agree_one_object_with_the_mean_score_and_weighted_box() -> None:
    fused = fuse(
        [[det("dog", 0.8, (0, 0, 100, 100))], [det("dog", 0.4, (10, 10, 110, 110))]], EQUAL
    )
    assert len(fused) == 1
    assert fused[0].label == "dog"
    assert fused[0].score == pytest.approx(0.6)
    # score-weighted mean: (0.8 * 0 + 0.4 * 10) / 1.2
    assert fused[0].box == pytest.approx((10 / 3, 10 / 3, 100 + 10 / 3, 100 + 10 / 3))


def test_a_lone_box_is_scaled_by_its_models_share_of_the_weights() -> None:
    alone = [[det("umbrella", 0.45, (0, 0, 50, 50))], []]
    assert fuse(alone, EQUAL)[0].score == pytest.approx(0.225)
    assert fuse(alone, EQUAL, min_score=0.3) == []  # one model's low-score noise needs support
    assert fuse(alone, FusionRules((3.0, 1.0)))[0].score == pytest.approx(0.3375)
    strong = [[], [det("person", 0.9, (0, 0, 50, 50))]]
    assert fuse(strong, EQUAL, min_score=0.3)[0].score == pytest.approx(0.45)  # a high one passes


def test_a_box_its_model_is_sure_of_keeps_its_own_score() -> None:
    """A lone 0.77 car is not scaled to 0.31 by the other model's silence (weights 1, 1.5)."""
    car = [[det("car", 0.77, (0, 0, 80, 50))], []]
    assert fuse(car, FusionRules((1.0, 1.5)))[0].score == pytest.approx(0.308)
    sure = FusionRules((1.0, 1.5), sure=(0.6, 0.55))
    assert fuse(car, sure)[0].score == pytest.approx(0.77)
    unsure = [[det("car", 0.59, (0, 0, 80, 50))], []]  # under its model's sure score
    assert fuse(unsure, sure)[0].score == pytest.approx(0.236)
    # the other model's sure score is its own: 0.55 from nanodet-g's side passes, from yolo's not
    assert fuse([[], [det("car", 0.56, (0, 0, 80, 50))]], sure)[0].score == pytest.approx(0.56)
    assert fuse([[det("car", 0.56, (0, 0, 80, 50))], []], sure)[0].score == pytest.approx(0.224)
    # both see it: the better of the mean and the sure member's score
    both = [[det("car", 0.9, (0, 0, 80, 50))], [det("car", 0.3, (0, 0, 80, 50))]]
    assert fuse(both, sure)[0].score == pytest.approx(0.9)


def test_sure_scores_fit_the_models() -> None:
    with pytest.raises(ValueError, match="one sure score per model"):
        FusionRules((1.0, 1.0), sure=(0.5,))


def test_two_models_boxes_of_one_small_object_join_by_their_centres() -> None:
    """A bottle both models find (0.74 and 0.52), 20 px wide, boxes 6 and 10 px apart, is one."""
    a, b = (100.0, 100.0, 120.0, 140.0), (106.0, 110.0, 126.0, 150.0)
    assert iou(a, b) == pytest.approx(420 / 1180) and centre_gap(a, b) < 0.5
    apart = fuse([[det("bottle", 0.74, a)], [det("bottle", 0.52, b)]], EQUAL, 0.0)
    assert len(apart) == 2  # by IoU alone (0.36): two bottles, neither model sure of either
    near = FusionRules((1.0, 1.0), near=0.5)
    (one,) = fuse([[det("bottle", 0.74, a)], [det("bottle", 0.52, b)]], near)
    assert one.score == pytest.approx(0.63)
    # far apart small boxes stay two objects
    far = (160.0, 100.0, 180.0, 140.0)
    assert len(fuse([[det("bottle", 0.74, a)], [det("bottle", 0.52, far)]], near)) == 2


def test_kindred_labels_are_one_object_named_by_the_heavier_vote() -> None:
    van = (0.0, 0.0, 100.0, 60.0)
    per_model = [[det("car", 0.5, van)], [det("truck", 0.7, van)]]
    assert sorted(d.label for d in fuse(per_model, EQUAL)) == ["car", "truck"]
    kin = FusionRules((1.0, 1.0), kin=(CLOSE_VEHICLES,))
    (one,) = fuse(per_model, kin)
    assert one.label == "truck" and one.score == pytest.approx(0.6)
    # a person and a car are never kin
    assert len(fuse([[det("car", 0.5, van)], [det("person", 0.7, van)]], kin)) == 2


def test_labels_never_merge_and_one_model_contributes_once_per_object() -> None:
    fused = fuse(
        [
            [det("car", 0.9, (0, 0, 100, 50)), det("car", 0.7, (5, 0, 105, 50))],
            [det("truck", 0.8, (0, 0, 100, 50))],
        ],
        FusionRules((1.0, 1.0), nms_iou=0.95),  # the clustering alone
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
        ],
        EQUAL,
    )
    assert [round(d.score, 3) for d in fused] == [0.65, 0.45]
    assert fused[0].box[0] < 5 and fused[1].box[0] == 100


def test_weights_must_fit_the_models() -> None:
    with pytest.raises(ValueError, match="one positive weight per model"):
        fuse([[], []], FusionRules((1.0,)))
    with pytest.raises(ValueError, match="one positive weight per model"):
        FusionRules((1.0, 0.0))


def test_two_clusters_of_one_object_that_still_overlap_are_counted_once() -> None:
    # IoU 0.5: below the 0.55 that joins boxes into one cluster, above the 0.45 of NMS
    a, b = (0.0, 0.0, 100.0, 100.0), (0.0, 0.0, 100.0, 50.0)
    assert iou(a, b) == pytest.approx(0.5)
    fused = fuse([[det("person", 0.95, a)], [det("person", 0.95, b)]], EQUAL)
    assert [(d.label, round(d.score, 3)) for d in fused] == [("person", 0.475)]
    loose = FusionRules((1.0, 1.0), nms_iou=0.6)
    assert len(fuse([[det("person", 0.95, a)], [det("person", 0.95, b)]], loose)) == 2
