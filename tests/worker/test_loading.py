"""The loader with real JPEG bytes and fakes around it (a detector that only places images, a
store that only hands out bytes, a Settler that records): what each claimed job becomes, and
which Settler method hears of the ones that go no further, with what words."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image

from hook.detect.detection import Detection, Detects, Letterbox
from hook.detect.pixels import Picture
from hook.errors import BadImage
from hook.intake.images import decode_image
from hook.store import TaskStore
from hook.task import ImageMeta, Status, Task
from hook.worker.job import Job, Stage
from hook.worker.loading import Loader
from tests.factories import CALLBACK, image_bytes
from tests.worker.support import TRUNCATED_JPEG, FakeSettler

MAX_PIXELS = 40_000_000
STORED = '{"status":"success","labels":{"2017-05-05T01:31:10.738647":{}}}'


class FakeStore(TaskStore):
    """Only `load_images_of`: the bytes it was given per task id, and who asked for what."""

    def __init__(self, images: dict[str, list[bytes]]) -> None:
        self.stored = images
        self.asked: list[list[Task]] = []

    def load_images_of(self, tasks: Sequence[Task]) -> dict[str, list[bytes]]:
        self.asked.append(list(tasks))
        return {task.id: self.stored[task.id] for task in tasks}


class Placer(Detects):
    """A detector that places images on a 32x24 canvas and records what it was asked; it never
    runs a model (the loader must not), and its to_canvas raises `broken` when given."""

    canvas = (32, 24)
    load_seconds = 0.0

    def __init__(self, broken: Exception | None = None) -> None:
        self.broken = broken
        self.fits: list[tuple[int, int]] = []
        self.placed: list[tuple[tuple[int, int], tuple[int, int] | None]] = []

    def fit_for(self, size: tuple[int, int]) -> tuple[int, int]:
        self.fits.append(size)
        return self.canvas

    def to_canvas(self, image: Picture, source: tuple[int, int] | None) -> tuple[Any, Any]:
        assert isinstance(image, Image.Image)  # the loader passes what it decoded
        if self.broken is not None:
            raise self.broken
        assert source is not None
        self.placed.append((image.size, source))
        return f"canvas {len(self.placed)}", Letterbox(source, self.canvas, (0, 0))

    def run(self, canvases: list[Any]) -> Sequence[Any]:
        raise AssertionError("the loader never runs the model")

    def postprocess(self, output: Any, box: Any) -> list[Detection]:
        raise AssertionError("the loader never runs the model")


def key(index: int) -> str:
    return f"2017-05-05T01:31:{10 + index:02d}.738647"


def claimed(
    *images: bytes, result_json: str | None = None, pictures_until: float | None = None
) -> Job:
    """A CLAIMED job whose task has these images (their sizes as the web measured them)."""
    metas = []
    for index, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        metas.append(
            ImageMeta(
                key(index),
                1_700_000_000.0 + index,
                "jpeg",
                width,
                height,
                len(data),
                hashlib.sha256(data).hexdigest(),
            )
        )
    task_id = uuid.uuid4().hex
    task = Task(
        id=task_id,
        status=Status.RUNNING,
        attempts=1,
        callback_url=CALLBACK,
        camera="front door",
        user_id="u1",
        images=tuple(metas),
        created_at=0.0,
        run_at=0.0,
        result_json=result_json,
        pictures_until=pictures_until,
    )
    return Job(task, f"w#{task_id}", time.monotonic())


SMALL, LARGE = image_bytes(64, 48, seed=1), image_bytes(96, 72, seed=2)


def loader_of(settler: FakeSettler, detector: Detects, *, max_pixels: int = MAX_PIXELS) -> Loader:
    return Loader(FakeStore({}), settler, detector, max_pixels=max_pixels)


def test_labels_an_earlier_try_stored_go_straight_to_delivery(settler: FakeSettler) -> None:
    """The same bytes go out again under the same webhook-id: no decode, no model, no word to
    the Settler (the delivery will settle it)."""
    job = claimed(SMALL, LARGE, result_json=STORED)
    detector = Placer()
    ready: list[Job] = []
    loader_of(settler, detector).read_batch([job], ready.append)
    assert ready == [job]
    assert (job.stage, job.body, job.canvases) == (Stage.LABELED, STORED, [])
    assert (detector.fits, detector.placed, settler.calls) == ([], [], [])
    assert not job.keep_images  # that try kept no images: completion deletes them


def test_stored_labels_keep_the_images_their_try_kept_for_pictures(settler: FakeSettler) -> None:
    job = claimed(SMALL, result_json=STORED, pictures_until=2_000_000_000.0)
    loader_of(settler, Placer()).read_batch([job], lambda _: None)
    assert (job.stage, job.keep_images) == (Stage.LABELED, True)


def test_images_of_asks_the_store_once_for_only_the_jobs_that_need_images(
    settler: FakeSettler,
) -> None:
    """One round trip per batch, and none for a job whose labels are stored (its images may be
    gone already: a delivered job's completion deletes them)."""
    stored, first, second = claimed(SMALL, result_json=STORED), claimed(SMALL), claimed(LARGE)
    store = FakeStore({first.task.id: [SMALL], second.task.id: [LARGE]})
    loader = Loader(store, settler, Placer(), max_pixels=MAX_PIXELS)
    got = loader.images_of([stored, first, second])
    assert got == {first.task.id: [SMALL], second.task.id: [LARGE]}
    assert store.asked == [[first.task, second.task]]
    assert loader.images_of([stored]) == {}
    assert store.asked == [[first.task, second.task]]  # not asked again: nobody needs images


def test_a_batch_is_read_in_one_query_and_handed_on_undecoded(settler: FakeSettler) -> None:
    """The fetch thread only reads: each job goes to the lanes with its bytes (decoding is the
    lane's), one with stored labels as LABELED; a missing image is the lane's to fail."""
    stored, good, missing = claimed(SMALL, result_json=STORED), claimed(SMALL), claimed(LARGE)
    store = FakeStore({good.task.id: [SMALL], missing.task.id: []})
    detector = Placer()
    loader = Loader(store, settler, detector, max_pixels=MAX_PIXELS)
    ready: list[Job] = []
    loader.read_batch([stored, good, missing], ready.append)
    assert ready == [stored, good, missing]
    assert [(job.stage, job.data) for job in ready] == [
        (Stage.LABELED, None),
        (Stage.READ, [SMALL]),
        (Stage.READ, []),
    ]
    assert (detector.placed, settler.calls) == ([], [])
    loader.load(missing, missing.data)
    assert settler.calls == [("fail", missing, ("1 of 1 images missing",))]


class Down(FakeStore):
    def load_images_of(self, tasks: Sequence[Task]) -> dict[str, list[bytes]]:
        raise ConnectionError("MongoDB is down")


def test_a_batch_whose_images_cannot_be_read_goes_back_to_the_queue(settler: FakeSettler) -> None:
    jobs = [claimed(SMALL), claimed(LARGE)]
    ready: list[Job] = []
    Loader(Down({}), settler, Placer(), max_pixels=MAX_PIXELS).read_batch(jobs, ready.append)
    why = "its images could not be read: ConnectionError: MongoDB is down"
    assert ready == [] and settler.calls == [("give_back", job, (why, 0.0)) for job in jobs]


def test_images_decode_reduced_to_the_detectors_fit_into_canvases_and_boxes(
    settler: FakeSettler,
) -> None:
    """Each image is decoded no larger than the canvas needs (a JPEG's DCT scale), placed by
    the detector in order, and the full size kept for mapping boxes back; without pictures no
    decoded image is kept."""
    job = claimed(SMALL, LARGE)
    detector = Placer()
    loader_of(settler, detector).load(job, [SMALL, LARGE])
    assert job.stage is Stage.LOADED
    assert detector.fits == [(64, 48), (96, 72)]
    assert detector.placed == [((32, 24), (64, 48)), ((48, 36), (96, 72))]
    assert job.canvases == ["canvas 1", "canvas 2"]
    assert job.boxes == [
        Letterbox((64, 48), (32, 24), (0, 0)),
        Letterbox((96, 72), (32, 24), (0, 0)),
    ]
    assert (job.data, settler.calls) == (None, [])


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (None, "3 of 3 images missing"),
        ([SMALL], "2 of 3 images missing"),
        ([SMALL, SMALL], "1 of 3 images missing"),
    ],
)
def test_a_missing_image_fails_the_job_saying_how_many(
    settler: FakeSettler, found: list[bytes] | None, reason: str
) -> None:
    """Bytes that are gone will not come back: failed for good, not retried, nothing decoded."""
    job = claimed(SMALL, LARGE, SMALL)
    detector = Placer()
    loader_of(settler, detector).load(job, found)
    assert settler.calls == [("fail", job, (reason,))]
    assert (job.stage, job.canvases, detector.placed) == (Stage.SETTLED, [], [])


def decode_error(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    """What decode_image says of `data`, decoded as the loader does with the 32x24 canvas."""
    with pytest.raises(BadImage) as caught:
        decode_image(data, max_pixels=max_pixels, fit=Placer.canvas)
    return str(caught.value)


@pytest.mark.parametrize(
    "bad", [TRUNCATED_JPEG, b"no image at all, just text"], ids=["truncated", "not an image"]
)
def test_a_bad_image_fails_the_job_naming_the_image_and_its_timestamp(
    settler: FakeSettler, bad: bytes
) -> None:
    """The bytes will not change, so the job fails for good; the reason says which image (by
    its place and label key) and why, so the operator can find it in Camio."""
    job = claimed(SMALL, SMALL)
    loader_of(settler, Placer()).load(job, [SMALL, bad])
    assert settler.calls == [("fail", job, (f"image 1 (timestamp {key(1)}): {decode_error(bad)}",))]
    assert job.stage is Stage.SETTLED and job.canvases == []


def test_an_image_over_the_pixel_limit_fails_the_job(settler: FakeSettler) -> None:
    """HOOK_MAX_IMAGE_PIXELS holds at the worker too, and says so in the reason."""
    job = claimed(LARGE)
    loader_of(settler, Placer(), max_pixels=96 * 72 - 1).load(job, [LARGE])
    why = "image is 96x72 pixels, over the limit of 6911 (HOOK_MAX_IMAGE_PIXELS)"
    assert settler.calls == [("fail", job, (f"image 0 (timestamp {key(0)}): {why}",))]


def test_an_unexpected_error_while_loading_is_settled_as_crashed(settler: FakeSettler) -> None:
    """A bug (here in the detector's to_canvas) must not stop the worker: the job is retried,
    saying what it was doing, with the very exception for its traceback."""
    broken = RuntimeError("canvas went missing")
    job = claimed(SMALL, LARGE)
    loader_of(settler, Placer(broken)).load(job, [SMALL, LARGE])
    assert settler.calls == [("crashed", job, ("loading", broken))]
    assert job.stage is Stage.SETTLED and job.canvases == []


def test_a_one_lane_worker_has_jobs_decoded_as_they_are_read(settler: FakeSettler) -> None:
    """decode_on_read (one lane, a GPU's): the fetch thread decodes, so the lane only runs the
    model; a job whose image is missing is failed there and not handed on."""
    stored, good, missing = claimed(SMALL, result_json=STORED), claimed(SMALL), claimed(LARGE)
    store = FakeStore({good.task.id: [SMALL], missing.task.id: []})
    detector = Placer()
    loader = Loader(store, settler, detector, max_pixels=MAX_PIXELS, decode_on_read=True)
    ready: list[Job] = []
    loader.read_batch([stored, good, missing], ready.append)
    assert [(job.stage, job.data) for job in ready] == [(Stage.LABELED, None), (Stage.LOADED, None)]
    assert good.canvases == ["canvas 1"] and detector.placed == [((32, 24), (64, 48))]
    assert settler.calls == [("fail", missing, ("1 of 1 images missing",))]
