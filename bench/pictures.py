"""Annotated pictures benchmark: what a picture costs now that it is drawn when someone looks.

The worker draws nothing: it keeps the event's original images for HOOK_KEEP_PICTURES_HOURS
and the labels hold every box. On test photos of several sizes, each taken through a real
store on nx-27017 as the worker leaves it (labeled by the default detector, done, images kept),
this prints per photo: the original's bytes (what is kept), the picture's bytes (stored once
someone looks), the first look (read the original, decode it at the picture's size, draw,
encode, store) and a later look (read the stored JPEG), beside the detector's time on the same
image, which is what drawing at labeling time used to add to (about 4 ms of CPU an image).

    .venv/bin/python bench/pictures.py [--seconds 1] [--save DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.detector import per_call
from hook.callbacks.hosts import HostAllowList
from hook.callbacks.labels import camio_labels
from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.detect.detection import Detects
from hook.intake.event import Limits, parse_event
from hook.intake.images import decode_image
from hook.pictures.drawing import MAX_SIDE, QUALITY
from hook.pictures.gallery import Gallery
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PHOTOS = [DATA / "person.jpg", DATA / "dog.jpg", DATA / "kite.jpg"] + [
    DATA / "photos" / name
    for name in (
        "bus.jpg",
        "touchline.jpg",
        "group-of-three.jpg",
        "storm.jpg",
        "marigold.jpg",
        "planks.jpg",
    )
]
MAX_PIXELS = 40_000_000
KEEP = 3600.0


def labeled(store: TaskStore, detector: Detects, data: bytes, n: int) -> str:
    """The photo as an event the worker labeled and delivered with pictures on: its id."""
    body = json.dumps(
        {
            "callback_url": "http://127.0.0.1:9/",
            "camera": "bench",
            "images": [
                {
                    "timestamp": f"2026-12-05T00:00:{n:02d}.000000",
                    "image_b64": base64.b64encode(data).decode(),
                }
            ],
        }
    ).encode()
    event = parse_event(
        body, hosts=HostAllowList(("127.0.0.1",)), limits=Limits(1, MAX_PIXELS, 8_000_000)
    )
    task_id, _ = store.enqueue(event)
    task = store.claim("bench", 60)
    assert task is not None and task.id == task_id
    meta = task.images[0]
    image, size = decode_image(
        data, max_pixels=MAX_PIXELS, fit=detector.fit_for((meta.width, meta.height))
    )
    found = detector.detect(image, size)
    labels = json.dumps(camio_labels([(task.images[0].key, size, found)]))
    assert store.save_result(task_id, "bench", labels, keep_images_for=KEEP)
    assert store.complete(task_id, "bench", keep_images=True)
    return task_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per measurement")
    parser.add_argument("--save", type=Path, help="write each annotated picture into this folder")
    args = parser.parse_args()
    photos = [p for p in PHOTOS if p.exists()]
    detector = detector_from(Settings.from_env({}, require_api_key=False))
    with tempfile.TemporaryDirectory() as folder:
        mongo = EmbeddedMongo(Path(folder), free_port())
        mongo.start()
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(mongo.uri)
            store = TaskStore(client["bench"])
            gallery = Gallery(store, max_pixels=MAX_PIXELS)
            print(
                f"pictures at most {MAX_SIDE} px, JPEG quality {QUALITY}; KB = 1000 B; nx-27017\n"
            )
            heads = ["photo", "source", "boxes", "kept KB", "picture KB"]
            heads += ["first ms", "later ms", "detect ms"]
            print(" ".join(f"{h:>10}" for h in heads))
            kept, drawn, firsts, laters = [], [], [], []
            for n, path in enumerate(photos):
                data = path.read_bytes()
                task_id = labeled(store, detector, data, n)
                task = store.get(task_id)
                assert task is not None and task.result_json is not None
                started = time.perf_counter()
                jpeg = gallery.picture(task_id, 0)
                first = time.perf_counter() - started
                assert jpeg is not None
                later = per_call(partial(gallery.picture, task_id, 0), args.seconds)
                meta = task.images[0]
                fit = detector.fit_for((meta.width, meta.height))
                image, size = decode_image(data, max_pixels=MAX_PIXELS, fit=fit)
                detect = per_call(partial(detector.detect, image, size), args.seconds)
                boxes = sum(
                    len(entry.get("boxes", [entry]))
                    for entry in json.loads(task.result_json)["labels"][task.images[0].key].values()
                )
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"{path.stem}.jpg").write_bytes(jpeg)
                kept.append(len(data))
                drawn.append(len(jpeg))
                firsts.append(first)
                laters.append(later)
                cells = [path.stem[:10], "x".join(map(str, size)), str(boxes)]
                cells += [f"{len(data) / 1000:.0f}", f"{len(jpeg) / 1000:.0f}"]
                cells += [f"{first * 1000:.1f}", f"{later * 1000:.1f}", f"{detect * 1000:.1f}"]
                print(" ".join(f"{c:>10}" for c in cells))
            client.close()
        finally:
            mongo.stop()
    print(
        f"\nmean per image: original kept {statistics.mean(kept) / 1000:.0f} KB, picture "
        f"{statistics.mean(drawn) / 1000:.0f} KB once looked at; first look "
        f"{statistics.median(firsts) * 1000:.0f} ms (median), later looks "
        f"{statistics.median(laters) * 1000:.1f} ms; labeling draws and encodes nothing"
    )


if __name__ == "__main__":
    main()
