"""The labeler with fakes around it (a detector that finds what it is told, a store that only
takes labels, a Settler that records): one run for a lane's jobs, each job's Camio body stored
before it is LABELED (with how long its images stay for pictures), the camera's rules applied,
and each way it can go wrong handed to the one Settler method it belongs to."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hook import heap
from hook.detect.detection import Detection, Detects, Letterbox
from hook.detect.detector import MAX_RUN
from hook.detect.pixels import Picture
from hook.detect.thresholds import Thresholds
from hook.rules.ruleset import RulesFile
from hook.store import TaskStore
from hook.task import Dropped, ImageMeta, Status, Task
from hook.worker.job import Job, Stage
from hook.worker.labeling import Labeler
from tests.factories import CALLBACK, write
from tests.worker.support import FakeSettler

SIZE = (64, 48)  # every image's full size here
RUN_SECONDS = 0.03  # how long the fake model takes per run, so infer_ms has something to share
DOG = Detection("dog", 0.9, (16, 12, 48, 36))  # the middle half of a 64x48 frame
FAINT_DOG = Detection("dog", 0.6, (0, 0, 32, 24))  # its top-left quarter
PERSON = Detection("person", 0.8, (0, 24, 32, 48))  # its bottom-left quarter
CAT = Detection("cat", 0.3, (0, 0, 64, 48))
# Camio's polygons: fractions of the frame, origin at the bottom-left, counter-clockwise
MIDDLE = [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]
TOP_LEFT = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
BOTTOM_LEFT = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]


class FakeStore(TaskStore):
    """Only `save_result`: what was saved, for whom; False (lease lost) for the `lost` ids."""

    def __init__(self, lost: Sequence[str] = ()) -> None:
        self.lost = set(lost)
        self.saved: list[tuple[str, str, str, list[Dropped]]] = []
        self.kept_for: list[float] = []  # keep_images_for, per save

    def save_result(
        self,
        task_id: str,
        worker: str,
        result_json: str,
        dropped: Sequence[Dropped] = (),
        *,
        keep_images_for: float = 0.0,
    ) -> bool:
        self.saved.append((task_id, worker, result_json, list(dropped)))
        self.kept_for.append(keep_images_for)
        return task_id not in self.lost


class Finder(Detects):
    """A detector whose outputs are named after its canvases and whose postprocess finds what
    `found` says for each output (raising it, if it is an exception); it records every call."""

    canvas = (32, 24)
    load_seconds = 0.0

    def __init__(
        self,
        found: dict[str, list[Detection] | Exception],
        *,
        broken: Exception | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.found, self.broken = found, broken
        if thresholds is not None:
            self.thresholds = thresholds
        self.runs: list[list[Any]] = []
        self.postprocessed: list[tuple[Any, Any]] = []

    def to_canvas(self, image: Picture, source: tuple[int, int] | None) -> tuple[Any, Any]:
        raise AssertionError("the labeler gets its canvases from the loader")

    def run(self, canvases: list[Any]) -> Sequence[Any]:
        self.runs.append(list(canvases))
        if self.broken is not None:
            raise self.broken
        time.sleep(RUN_SECONDS)
        return [f"out of {canvas}" for canvas in canvases]

    def postprocess(self, output: Any, box: Any) -> list[Detection]:
        self.postprocessed.append((output, box))
        found = self.found[output]
        if isinstance(found, Exception):
            raise found
        return found


def key(index: int) -> str:
    return f"2017-05-05T01:31:{10 + index:02d}.738647"


def box(name: str, index: int) -> Letterbox:
    """Each image's own placement (told apart by its pad), so a mix-up shows."""
    return Letterbox(SIZE, (32, 24), (index, len(name)))


def loaded(name: str, images: int, camera: str = "front door") -> Job:
    """A LOADED job: canvases "<name>/<i>", as the loader leaves it for a lane."""
    metas = tuple(
        ImageMeta(key(i), 1_700_000_000.0 + i, "jpeg", *SIZE, 1000, "0" * 64) for i in range(images)
    )
    task_id = uuid.uuid4().hex
    task = Task(
        id=task_id,
        status=Status.RUNNING,
        attempts=1,
        callback_url=CALLBACK,
        camera=camera,
        user_id="u1",
        images=metas,
        created_at=0.0,
        run_at=0.0,
    )
    job = Job(task, f"w#{task_id}", time.monotonic())
    job.loaded([f"{name}/{i}" for i in range(images)], [box(name, i) for i in range(images)])
    return job


def shape(score: float, polygon: list[list[float]]) -> dict[str, Any]:
    return {"probability": score, "polygon": polygon}


def label(*shapes: dict[str, Any]) -> dict[str, Any]:
    """One label's entry: the best shape, the count, and every shape best first."""
    return {**shapes[0], "count": len(shapes), "boxes": list(shapes)}


NO_RULES = RulesFile.open(None)
KEEP = 3600.0  # seconds a labeled task's images stay for its pictures


def labeler(store: TaskStore, settler: FakeSettler, rules: RulesFile = NO_RULES) -> Labeler:
    return Labeler(store, settler, rules, keep_pictures_seconds=KEEP)


def test_one_run_for_all_images_of_several_jobs_and_each_jobs_labels_stored(
    settler: FakeSettler,
) -> None:
    """A GPU wants one batch; each job then gets the outputs of its own images, in order, and
    its Camio body is stored before the job is LABELED, its images kept for its pictures."""
    first, second = loaded("a", 2), loaded("b", 1)
    detector = Finder({"out of a/0": [FAINT_DOG, DOG], "out of a/1": [], "out of b/0": [PERSON]})
    store = FakeStore()
    labeler(store, settler).label([first, second], detector)

    assert detector.runs == [["a/0", "a/1", "b/0"]]
    assert detector.postprocessed == [
        ("out of a/0", box("a", 0)),
        ("out of a/1", box("a", 1)),
        ("out of b/0", box("b", 0)),
    ]
    assert [(task_id, owner, dropped) for task_id, owner, _, dropped in store.saved] == [
        (first.task.id, first.owner, []),
        (second.task.id, second.owner, []),
    ]
    bodies = [body for _, _, body, _ in store.saved]
    assert [json.loads(body) for body in bodies] == [
        {
            "status": "success",
            "labels": {
                key(0): {"dog": label(shape(0.9, MIDDLE), shape(0.6, TOP_LEFT))},
                key(1): {},
            },
        },
        {"status": "success", "labels": {key(0): {"person": label(shape(0.8, BOTTOM_LEFT))}}},
    ]
    assert all(" " not in body for body in bodies)  # compact: the exact bytes every try sends
    assert [(job.stage, job.body, job.canvases) for job in (first, second)] == [
        (Stage.LABELED, bodies[0], []),
        (Stage.LABELED, bodies[1], []),
    ]
    assert store.kept_for == [KEEP, KEEP] and first.keep_images and second.keep_images
    assert settler.calls == []


def test_the_run_time_is_shared_by_image(settler: FakeSettler) -> None:
    """infer_ms is the job's share of the run, by its number of images (the done line's)."""
    first, second = loaded("a", 3), loaded("b", 1)
    found: dict[str, list[Detection] | Exception] = {
        f"out of {name}/{i}": [] for name, n in (("a", 3), ("b", 1)) for i in range(n)
    }
    labeler(FakeStore(), settler).label([first, second], Finder(found))
    assert first.infer_ms == pytest.approx(3 * second.infer_ms)
    assert first.infer_ms + second.infer_ms >= RUN_SECONDS * 1000 * 0.9


def test_the_heap_goes_back_to_the_system_after_a_large_run_only(
    settler: FakeSettler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """glibc kept a 64-frame event's freed pixels and outputs for good (1.3 GB); a run of more
    images than the engine takes at once ends with the heap trimmed, a usual one does not."""
    trims: list[str] = []

    def give_back() -> bool:
        trims.append("trimmed")
        return True

    monkeypatch.setattr(heap, "give_back", give_back)
    for images, expected in ((MAX_RUN, []), (MAX_RUN + 1, ["trimmed"])):
        job = loaded("a", images)
        found: dict[str, list[Detection] | Exception] = {
            f"out of a/{i}": [DOG] for i in range(images)
        }
        labeler(FakeStore(), settler).label([job], Finder(found))
        assert job.stage is Stage.LABELED and trims == expected


def test_no_jobs_no_run(settler: FakeSettler) -> None:
    detector = Finder({})
    labeler(FakeStore(), settler).label([], detector)
    assert (detector.runs, settler.calls) == ([], [])


def test_a_run_that_raises_sends_every_job_of_it_to_crashed(settler: FakeSettler) -> None:
    """The model failing is no one job's fault: each is retried, saying so, nothing stored."""
    jobs = [loaded("a", 2), loaded("b", 1)]
    broken = RuntimeError("the device went away")
    detector = Finder({}, broken=broken)
    store = FakeStore()
    labeler(store, settler).label(jobs, detector)
    assert settler.calls == [("crashed", job, ("labeling", broken)) for job in jobs]
    assert (store.saved, detector.postprocessed) == ([], [])
    assert [job.stage for job in jobs] == [Stage.SETTLED, Stage.SETTLED]


def test_a_job_whose_labels_cannot_be_built_is_crashed_alone(settler: FakeSettler) -> None:
    """One job's trouble after the run (here its postprocess) leaves the others labeled."""
    broken = ValueError("no such output")
    first, second = loaded("a", 1), loaded("b", 1)
    detector = Finder({"out of a/0": broken, "out of b/0": [DOG]})
    store = FakeStore()
    labeler(store, settler).label([first, second], detector)
    assert settler.calls == [("crashed", first, ("labeling", broken))]
    assert [task_id for task_id, _, _, _ in store.saved] == [second.task.id]
    assert (first.stage, second.stage) == (Stage.SETTLED, Stage.LABELED)


def test_labels_refused_for_a_lost_lease_settle_the_job_as_lost(settler: FakeSettler) -> None:
    """Another claim owns the task now: this one writes nothing more and does not deliver."""
    first, second = loaded("a", 1), loaded("b", 1)
    store = FakeStore(lost=[first.task.id])
    detector = Finder({"out of a/0": [DOG], "out of b/0": [PERSON]})
    labeler(store, settler).label([first, second], detector)
    assert settler.calls == [("lost", first, ())]
    assert [task_id for task_id, _, _, _ in store.saved] == [first.task.id, second.task.id]
    assert (first.stage, first.body) == (Stage.SETTLED, None)
    assert second.stage is Stage.LABELED


RULES = """
[[camera]]
match = "front door"
labels = ["dog"]
min_score = 0.7
"""


def test_the_cameras_rules_drop_what_they_should_and_say_why(
    tmp_path: Path, settler: FakeSettler
) -> None:
    """The first entry that fits the camera applies; what it drops is stored with its reason,
    while what is under the detector's thresholds goes without a word; a camera no entry fits
    keeps every candidate."""
    rules = RulesFile.open(write(tmp_path / "rules.toml", RULES))
    front, back = loaded("a", 1, camera="front door"), loaded("b", 1, camera="back yard")
    detector = Finder(
        {"out of a/0": [DOG, FAINT_DOG, PERSON, CAT], "out of b/0": [PERSON, FAINT_DOG, CAT]},
        thresholds=Thresholds(0.5),
    )
    store = FakeStore()
    labeler(store, settler, rules).label([front, back], detector)

    assert [(task_id, dropped) for task_id, _, _, dropped in store.saved] == [
        (
            front.task.id,
            [
                Dropped(key(0), "dog", 0.6, "min_score 0.7"),
                Dropped(key(0), "person", 0.8, "not in labels"),
            ],
        ),
        (back.task.id, []),
    ]
    assert [json.loads(body)["labels"] for _, _, body, _ in store.saved] == [
        {key(0): {"dog": label(shape(0.9, MIDDLE))}},
        {key(0): {"person": label(shape(0.8, BOTTOM_LEFT)), "dog": label(shape(0.6, TOP_LEFT))}},
    ]
    assert settler.calls == []


def test_with_pictures_off_the_images_are_not_kept(settler: FakeSettler) -> None:
    """HOOK_KEEP_PICTURES_HOURS=0: nothing kept past the task, so completion deletes them."""
    job = loaded("a", 1)
    store = FakeStore()
    Labeler(store, settler, NO_RULES, keep_pictures_seconds=0).label(
        [job], Finder({"out of a/0": [DOG]})
    )
    assert (store.kept_for, job.stage, job.keep_images) == ([0], Stage.LABELED, False)
