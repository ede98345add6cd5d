"""hook.worker.pictures against a real nx-27017: labeled jobs' pictures drawn in a thread and stored
in batches (one upsert for the lot and one look for forgotten tasks), those of a task forgotten
meanwhile dropped, and what waits stored on close()."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import pytest
from PIL import Image
from pymongo import MongoClient
from pymongo.database import Database

from hook.detect import yolo
from hook.detect.detection import Detection
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.worker.job import Job
from hook.worker.pictures import BATCH, PictureMaker
from tests.commands import Commands
from tests.factories import image_bytes, make_event

CANVAS = (416, 416)
WAIT = 30.0  # generous: reaching it means the pictures never came, not that they came late


class Counted:
    def __init__(self, store: TaskStore, commands: Commands) -> None:
        self.store, self.commands = store, commands


@pytest.fixture
def counted(mongo: EmbeddedMongo, db: Database) -> Iterator[Counted]:
    commands = Commands()
    client: MongoClient = MongoClient(mongo.uri, event_listeners=[commands])
    try:
        yield Counted(TaskStore(client[db.name]), commands)
    finally:
        client.close()


def labeled_jobs(store: TaskStore, count: int, images: int = 2, seed: int = 0) -> list[Job]:
    """`count` tasks claimed as the worker does, each with its images decoded and something
    found on each, as the labeling stage leaves a job for its pictures."""
    for n in range(count):
        data = [image_bytes(64, 48, seed=(seed + n) * 10 + i) for i in range(images)]
        assert store.enqueue(make_event(seed=seed + n, images=data))[1]
    claimed = store.claim_many([f"test#{n}" for n in range(count)], 60.0)
    assert len(claimed) == count
    jobs = []
    for owner, task in claimed:
        job = Job(task, owner, time.monotonic())
        decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in store.load_images(task)]
        boxes = [yolo.fit(image.size, CANVAS) for image in decoded]
        job.loaded([], boxes, decoded)
        job.labeled('{"labels": {}}', [[Detection("person", 0.9, (8, 6, 40, 30))]] * images)
        jobs.append(job)
    return jobs


def pictured(store: TaskStore, job: Job) -> list[int]:
    return store.picture_indexes(job.task.id)


def wait_pictured(store: TaskStore, jobs: list[Job], timeout: float = WAIT) -> None:
    """Until every image of these jobs has its picture."""
    deadline = time.monotonic() + timeout
    for job in jobs:
        while pictured(store, job) != list(range(len(job.task.images))):
            assert time.monotonic() < deadline, f"task {job.task.id}: {pictured(store, job)}"
            time.sleep(0.05)


def closed_in_time(pictures: PictureMaker, timeout: float = WAIT) -> None:
    closer = threading.Thread(target=pictures.stop, name="closer", daemon=True)
    closer.start()
    closer.join(timeout)
    assert not closer.is_alive(), "close() did not return"


def test_the_pictures_of_one_window_are_stored_in_one_round_trip(counted: Counted) -> None:
    """Three jobs' six pictures, made within the window, are stored by one bulk upsert and one
    query for forgotten tasks (none, so nothing is deleted); each is a JPEG of its image."""
    store = counted.store
    jobs = labeled_jobs(store, 3)
    pictures = PictureMaker(store, enabled=True, window=3.0)
    pictures.start()
    try:
        mark = counted.commands.mark()
        for job in jobs:
            pictures.take(job)
            assert job.images == [] and job.kept == []  # freed from the job at once
        wait_pictured(store, jobs)
        writes = [c for c in counted.commands.since(mark) if c[1] in ("pictures", "tasks")]
        # the waiting above reads the pictures; the thread wrote them and looked once
        assert writes.count(("update", "pictures")) == 1
        assert writes.count(("find", "tasks")) == 1
        assert ("delete", "pictures") not in writes
    finally:
        closed_in_time(pictures)
    for job in jobs:
        for index in range(2):
            jpeg = store.picture(job.task.id, index)
            assert jpeg is not None and jpeg[:2] == b"\xff\xd8"
            assert Image.open(io.BytesIO(jpeg)).size == (64, 48)


def test_a_task_forgotten_before_its_batch_is_stored_ends_with_no_pictures(
    counted: Counted,
) -> None:
    """A task forgotten (forced: it is running) while its pictures wait for the window has
    none once the batch is stored; the other task of the batch keeps its pictures."""
    store = counted.store
    kept, gone = labeled_jobs(store, 2, seed=20)
    pictures = PictureMaker(store, enabled=True, window=3.0)
    pictures.start()
    try:
        pictures.take(kept)
        pictures.take(gone)
        assert store.forget([gone.task.id], force=True).removed == 1
        mark = counted.commands.mark()  # after the forget's own delete of pictures (none yet)
        wait_pictured(store, [kept])
        deadline = time.monotonic() + WAIT  # the drop follows the upsert in the same batch
        while ("delete", "pictures") not in counted.commands.since(mark):
            assert time.monotonic() < deadline, "the forgotten task's pictures were not dropped"
            time.sleep(0.05)
    finally:
        closed_in_time(pictures)
    assert pictured(store, gone) == []
    assert store.picture(gone.task.id, 0) is None
    assert pictured(store, kept) == [0, 1]


def test_close_stores_the_pictures_that_wait(counted: Counted) -> None:
    """With a minute's window nothing is stored a moment after take(); close() stores it all."""
    store = counted.store
    jobs = labeled_jobs(store, 2, seed=40)
    pictures = PictureMaker(store, enabled=True, window=60.0)
    pictures.start()
    for job in jobs:
        pictures.take(job)
    time.sleep(0.5)  # not a bound: only so that a wrongly early write would have happened
    assert all(pictured(store, job) == [] for job in jobs)
    closed_in_time(pictures)
    for job in jobs:
        assert pictured(store, job) == [0, 1]


def test_a_full_batch_is_stored_without_waiting_out_the_window(counted: Counted) -> None:
    """BATCH pictures made are stored at once, long before a minute's window ends."""
    per_job = 8
    store = counted.store
    jobs = labeled_jobs(store, -(-BATCH // per_job), images=per_job, seed=60)
    pictures = PictureMaker(store, enabled=True, window=60.0)
    pictures.start()
    try:
        for job in jobs:
            pictures.take(job)
        wait_pictured(store, jobs, timeout=20)
    finally:
        closed_in_time(pictures)


def test_pictures_off_takes_nothing_and_frees_the_images(counted: Counted) -> None:
    """Disabled (keep time 0), take() stores nothing but still frees the job's images."""
    store = counted.store
    [job] = labeled_jobs(store, 1, seed=80)
    pictures = PictureMaker(store, enabled=False)
    pictures.start()
    pictures.take(job)
    assert job.images == [] and job.kept == []
    closed_in_time(pictures)
    assert pictured(store, job) == []
