"""`retry`, `forget` and `show` as an operator runs them: `python -m hook ...` against the
embedded MongoDB, and one retry end to end through a real gunicorn, worker.py and receiver."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image
from pymongo.database import Database

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.task import Dropped, ReportState, Target
from tests import procs
from tests.factories import API_KEY, DATA, image_bytes, make_event
from tests.loopback import free_port
from tests.procs import Stack
from tests.receiver import Receiver

STAMP0, STAMP1 = "2017-05-05T01:31:10.738647", "2017-05-05T01:31:11.738647"
SQUARE = [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]]
LABELS = {
    "status": "success",
    "labels": {
        STAMP0: {
            "dog": {
                "probability": 0.9123,
                "polygon": SQUARE,
                "count": 2,
                "boxes": [
                    {"probability": 0.9123, "polygon": SQUARE},
                    {"probability": 0.5501, "polygon": SQUARE},
                ],
            },
            "car": {
                "probability": 0.41,
                "polygon": SQUARE,
                "count": 1,
                "boxes": [{"probability": 0.41, "polygon": SQUARE}],
            },
        },
        STAMP1: {},
    },
}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m hook ARGS` with `env`, as an operator's shell runs it."""
    argv = [sys.executable, "-m", "hook", *args]
    return subprocess.run(
        argv, cwd=procs.ROOT, text=True, capture_output=True, env=env, timeout=60, check=False
    )


def cli(mongo: EmbeddedMongo, db_name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The same against the test's database, with the API key set (so it can be looked for)."""
    env = procs.hook_env(HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name, HOOK_API_KEY=API_KEY)
    return run(env, *args)


def failed_task(store: TaskStore, seed: int, *, labeled: bool = True, keep: float = 0.0) -> str:
    """A two-image task that failed on its first attempt, its labels stored if `labeled` (its
    images kept `keep` seconds for pictures)."""
    task_id, _ = store.enqueue(make_event(seed=seed, n_images=2))
    assert store.claim("w1", 60) is not None
    if labeled:
        dropped = [Dropped(STAMP0, "person", 0.31, "min_score 0.5")]
        labels = json.dumps(LABELS)
        assert store.save_result(task_id, "w1", labels, dropped, keep_images_for=keep)
    assert store.fail(task_id, "w1", "callback answered 404: no such hook")
    return task_id


def test_retry_says_per_task_what_it_did(mongo: EmbeddedMongo, db: Database, db_name: str) -> None:
    store = TaskStore(db)
    ready = [failed_task(store, seed) for seed in (1, 2)]
    gone = failed_task(store, 3, labeled=False)
    db.images.delete_many({"task_id": gone})
    done_id, _ = store.enqueue(make_event(seed=4))
    assert store.claim("w1", 60) is not None and store.complete(done_id, "w1")
    named = cli(mongo, db_name, "retry", ready[0], "nope", done_id, gone)
    assert named.returncode == 1, named.stderr
    assert named.stdout.splitlines() == [
        f"{ready[0]}: requeued, to be labeled again",
        "nope: not retried: no such task",
        f"{done_id}: not retried: it is done, not failed",
        f"{gone}: not retried: its images are gone and it has no labels stored, so there is "
        "nothing to label or send",
    ]
    several = cli(mongo, db_name, "retry", ready[1])
    assert (
        several.returncode == 0 and several.stdout == f"{ready[1]}: requeued, to be labeled again\n"
    )
    assert store.stats()["queued"] == 2 and store.stats()["failed"] == 1
    again = cli(mongo, db_name, "retry", ready[0])
    assert again.returncode == 1 and "it is queued, not failed" in again.stdout


def test_retry_failed_requeues_every_failed_task(
    mongo: EmbeddedMongo, db: Database, db_name: str
) -> None:
    store = TaskStore(db)
    for seed in range(10, 13):
        failed_task(store, seed)
    resend = failed_task(store, 13)
    db.images.delete_many({"task_id": resend})  # its stored labels can still be sent
    done = cli(mongo, db_name, "retry", "--failed")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "requeued 4 failed task(s) (1 to send their stored labels again: images gone)\n"
    )
    assert store.stats() == {"queued": 4, "running": 0, "done": 0, "failed": 0}
    resent = store.get(resend)
    assert resent is not None and resent.result_json == json.dumps(LABELS)
    assert store.forget([t.id for t in store.pending()]).removed == 4  # out of the claim's way
    gone = failed_task(store, 14, labeled=False)
    db.images.delete_many({"task_id": gone})
    refused = cli(mongo, db_name, "retry", "--failed")
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[0] == "requeued 0 failed task(s)"
    assert refused.stdout.splitlines()[1].startswith(f"{gone}: not retried: its images are gone")


def test_retry_wants_ids_or_failed(mongo: EmbeddedMongo, db_name: str) -> None:
    for args in ((), ("--failed", "abc")):
        done = cli(mongo, db_name, "retry", *args)
        assert done.returncode == 1 and done.stdout == ""
        assert (
            done.stderr
            == "hook retry: name the failed tasks to retry, or give --failed for all (not both)\n"
        )


def test_forget_removes_tasks_images_and_pictures(
    mongo: EmbeddedMongo, db: Database, db_name: str
) -> None:
    store = TaskStore(db)
    first, second = failed_task(store, 20), failed_task(store, 21)
    store.save_picture(first, 0, image_bytes())
    running, _ = store.enqueue(make_event(seed=22))
    assert store.claim("w9", 60) is not None
    done = cli(mongo, db_name, "forget", first, "nope", running)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"{first}: removed, with 2 image(s) and 1 picture(s)",
        "nope: not removed: no such task",
        f"{running}: not removed: a worker (w9) is on it and would still deliver its labels; "
        "--force removes it anyway",
    ]
    assert store.get(first) is None and db.images.count_documents({"task_id": first}) == 0
    assert store.picture_indexes(first) == []
    assert store.get(second) is not None and db.images.count_documents({"task_id": second}) == 2
    forced = cli(mongo, db_name, "forget", "--force", running, second)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines() == [
        f"{running}: removed, with 1 image(s) and 0 picture(s); it was running on w9, which now "
        "finds nothing to settle (a callback it had begun may still arrive)",
        f"{second}: removed, with 2 image(s) and 0 picture(s)",
    ]
    assert db.tasks.count_documents({}) == 0 and db.images.count_documents({}) == 0


def test_show_prints_the_result_for_a_person(
    mongo: EmbeddedMongo, db: Database, db_name: str
) -> None:
    store = TaskStore(db)
    task_id = failed_task(store, 30, keep=3600)
    done = cli(mongo, db_name, "show", task_id)
    assert done.returncode == 0, done.stderr
    assert API_KEY not in done.stdout
    lines = done.stdout.splitlines()
    assert lines[0] == f"task {task_id}: failed"
    assert lines[1] == "  camera: 'front door', user: 'u1'"
    assert re.fullmatch(r"  arrived \S+, labeled \S+, failed \S+", lines[2]), lines[2]
    assert lines[3:5] == ["  attempts: 1", "  last error: callback answered 404: no such hook"]
    assert lines[5:] == [
        f"  image 0: {STAMP0}, 64x48 JPEG, {lines[5].rsplit(', ', 1)[1]}",
        "    labels: dog 0.91 (2 boxes: 0.91 0.55), car 0.41",
        "    dropped by the rules: person 0.31 (min_score 0.5)",
        f"    picture: /tasks/<api_key>/{task_id}/images/0.jpg",
        f"  image 1: {STAMP1}, 64x48 JPEG, {lines[9].rsplit(', ', 1)[1]}",
        "    labels: nothing found",
        f"    picture: /tasks/<api_key>/{task_id}/images/1.jpg",
    ]
    assert re.fullmatch(r"\d+ bytes|\d+\.\d KB", lines[5].rsplit(", ", 1)[1])
    assert cli(mongo, db_name, "retry", task_id).returncode == 0  # labels cleared, failure kept
    again = cli(mongo, db_name, "show", task_id).stdout.splitlines()
    assert again[0] == f"task {task_id}: queued"
    assert re.fullmatch(r"  arrived \S+, next run \S+", again[2]), again[2]
    assert again[3:7] == [
        "  attempts: 0",
        "  earlier failures:",
        again[5],
        "  labels: not made yet",
    ]
    assert again[5].endswith("after 1 attempt(s): callback answered 404: no such hook")


def test_show_json_and_saved_pictures(
    mongo: EmbeddedMongo, db: Database, db_name: str, tmp_path: Path
) -> None:
    store = TaskStore(db)
    task_id = failed_task(store, 31, keep=3600)
    drawn_before = image_bytes(seed=1)
    labeled = store.get(task_id)
    assert labeled is not None
    store.save_picture(task_id, 0, drawn_before, labeled.labeled_at)  # looked at; 1 never was
    done = cli(mongo, db_name, "show", task_id, "--json", "--save", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["id"] == task_id and document["labels"] == LABELS["labels"]
    assert document["dropped"] == [
        {"timestamp": STAMP0, "label": "person", "score": 0.31, "why": "min_score 0.5"}
    ]
    assert [i["picture"] for i in document["images"]] == [
        f"/tasks/<api_key>/{task_id}/images/{n}.jpg" for n in (0, 1)
    ]
    paths = [tmp_path / "out" / f"{task_id}-{n}.jpg" for n in (0, 1)]
    assert document["saved"] == [str(p) for p in paths]
    assert paths[0].read_bytes() == drawn_before
    with Image.open(paths[1]) as drawn:  # drawn now from the original, and kept
        assert (drawn.format, drawn.size) == ("JPEG", (64, 48))
    assert store.picture(task_id, 1) == paths[1].read_bytes()
    text = cli(mongo, db_name, "show", task_id, "--save", str(tmp_path / "again"))
    assert text.returncode == 0 and text.stdout.splitlines()[-2:] == [
        f"saved {tmp_path / 'again' / f'{task_id}-{n}.jpg'}" for n in (0, 1)
    ]
    assert API_KEY not in done.stdout + text.stdout


def test_show_says_when_there_are_no_pictures(
    mongo: EmbeddedMongo, db: Database, db_name: str, tmp_path: Path
) -> None:
    store = TaskStore(db)
    labeled = failed_task(store, 32)
    done = cli(mongo, db_name, "show", labeled, "--save", str(tmp_path))
    assert done.returncode == 1 and done.stdout.startswith(f"task {labeled}: failed")
    assert done.stderr.startswith(
        "hook show: no annotated pictures to save: its images are not kept"
    )
    fresh, _ = store.enqueue(make_event(seed=33))
    waiting = cli(mongo, db_name, "show", fresh, "--save", str(tmp_path))
    assert waiting.returncode == 1
    assert waiting.stderr == (
        "hook show: no annotated pictures to save: the task is not "
        "labeled yet (they show its labels)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_unknown_ids_and_mongo_down_are_one_line(mongo: EmbeddedMongo, db_name: str) -> None:
    unknown = cli(mongo, db_name, "show", "6b042f477050c593dd19606a")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == "hook show: no task '6b042f477050c593dd19606a'\n"
    port = free_port()
    down = procs.hook_env(HOOK_MONGO_URI=f"mongodb://127.0.0.1:{port}")
    for args in (("retry", "abc"), ("retry", "--failed"), ("forget", "abc"), ("show", "abc")):
        done = run(down, *args)
        assert done.returncode == 1, args
        assert done.stderr == (
            f"hook {args[0]}: MongoDB at 127.0.0.1:{port} (HOOK_MONGO_URI) does not answer: "
            "start it, or point HOOK_MONGO_URI at one that runs\n"
        )


def test_the_commands_have_help() -> None:
    top = run(procs.hook_env(), "--help")
    assert top.returncode == 0
    for command in ("retry", "forget", "show"):
        assert re.search(rf"^    {command} +\w", top.stdout, re.M), command


@pytest.mark.slow
def test_a_task_failed_by_its_receiver_is_labeled_and_delivered_after_retry(
    mongo: EmbeddedMongo, db: Database, db_name: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [404]  # the receiver is misconfigured: a refusal fails the task
    photo = base64.b64encode((DATA / "dog.jpg").read_bytes()).decode()
    event = {
        "callback_url": receiver.url(path),
        "camera": "porch",
        "images": [{"timestamp": STAMP0, "image_b64": photo}],
    }
    try:
        with Stack(
            tmp_path, mongo=mongo, HOOK_MONGO_DB=db_name, HOOK_CALLBACK_HOSTS="127.0.0.1"
        ) as stack:
            stack.start_worker()
            answer = stack.post(event)
            assert answer.status_code == 200, answer.text
            task_id = answer.json()["task_id"]
            failed = stack.wait_status(task_id, "failed", timeout=60)
            assert failed["last_error"].startswith("callback answered 404")
            # the receiver is fixed (it answers 200 from now on); the operator retries
            done = cli(mongo, db_name, "retry", task_id)
            assert done.returncode == 0 and "requeued, to be labeled again" in done.stdout
            first, second = receiver.wait_for(path, 2, timeout=60)
            assert "dog" in second["labels"][STAMP0] and second == first
            delivered = stack.wait_status(task_id, "done", timeout=30)
            assert delivered["attempts"] == 1 and len(delivered["history"]) == 1
    finally:
        receiver.close()
    shown = cli(mongo, db_name, "show", task_id).stdout
    assert f"task {task_id}: done" in shown and re.search(r"\n    labels: .*\bdog 0\.\d\d", shown)


def test_show_prints_the_failure_report(mongo: EmbeddedMongo, db: Database, db_name: str) -> None:
    store = TaskStore(db)
    task_id, _ = store.enqueue(make_event(seed=40))
    assert store.claim("w1", 60) is not None
    assert store.fail(
        task_id, "w1", "1 of 1 images missing", report=(Target.FAILURE_URL, Target.CALLBACK_URL)
    )
    assert store.claim_report("r1", 60) is not None
    assert store.settle_report(
        task_id,
        "r1",
        ReportState.DUE,
        targets=(Target.FAILURE_URL,),
        delivered=(Target.CALLBACK_URL,),
        errors={"failure_url": "callback answered 503"},
        run_at=1_800_000_000.0,
    )
    lines = cli(mongo, db_name, "show", task_id).stdout.splitlines()
    assert lines[5] == (
        "  failure report: due after 1 attempt(s); sent to callback_url; next "
        "attempt 2027-01-15T08:00:00.000+00:00; failure_url: callback answered "
        "503"
    )
    document = json.loads(cli(mongo, db_name, "show", task_id, "--json").stdout)
    assert document["report"]["state"] == "due"
    assert document["report"]["pending"] == ["failure_url"]
