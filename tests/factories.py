"""Test data: settings, real JPEG/PNG bytes made with Pillow, Camio-shaped events (raw and
parsed), and the photos in tests/data with where their objects are."""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.labels import camio_labels
from hook.config.settings import Settings
from hook.detect.detection import Detection
from hook.intake.event import Event, Limits, parse_event
from hook.store import TaskStore


class FakeClock:
    """A clock a test moves by hand: `clock.now += 5`."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# Every e2e delivery is signed with it (tests.procs.Stack) and verified by the receiver
# (tests/conftest.py), with the Standard Webhooks library, not hook's own code.
SIGNING_SECRET = "whsec_" + base64.b64encode(b"hook's test signing key, 32 b!").decode()
API_KEY = "test-key-0123456789abcdef"
CALLBACK = "https://www.camio.com/api/callbacks/abc123"
ROOT = Path(__file__).resolve().parent.parent  # the checkout
DATA = ROOT / "tests" / "data"

# Where the objects are, measured once by eye on the photos in DATA: (x1, x2, y1, y2) that the
# centre of the object's box must fall in, in original-image pixels.
REGIONS = {
    "dog.jpg": {
        "dog": (180, 300, 300, 420),
        "bicycle": (300, 420, 240, 340),
        "car": (530, 620, 95, 150),
    },
    "person.jpg": {
        "person": (200, 260, 200, 290),
        "dog": (100, 170, 280, 330),
        "horse": (460, 545, 200, 275),
    },
}


def make_settings(**env: str) -> Settings:
    """Settings as from_env would read them, with test defaults and `env` on top."""
    base = {"HOOK_API_KEY": API_KEY, "HOOK_CALLBACK_HOSTS": "camio.com,127.0.0.1"}
    return Settings.from_env({**base, **env})


def image_bytes(
    width: int = 64, height: int = 48, *, seed: int = 0, fmt: str = "JPEG", noise: bool = True
) -> bytes:
    """A picture that differs by seed: noisy (realistic JPEG sizes) or flat (tiny files)."""
    rng = random.Random(seed)
    if noise:
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), tuple(rng.randbytes(3)))
    out = io.BytesIO()
    image.save(out, format=fmt, quality=85)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def event(
    n_images: int = 2,
    *,
    seed: int = 0,
    callback_url: str = CALLBACK,
    size: tuple[int, int] = (64, 48),
    **extra: Any,
) -> dict[str, Any]:
    """A Camio event with `n_images` distinct JPEGs; the timestamps alternate both shapes."""
    images = []
    for i in range(n_images):
        stamp = f"2017-05-05T01:31:{10 + i:02d}.738647"
        timestamp: Any = stamp if i % 2 == 0 else {"meta_class": "datetime.datetime", "date": stamp}
        images.append(
            {
                "type": "image/jpeg",
                "size": list(size),
                "timestamp": timestamp,
                "image_b64": b64(image_bytes(*size, seed=seed * 1000 + i)),
            }
        )
    return {
        "callback_url": callback_url,
        "user_id": "u1",
        "camera": "front door",
        "images": images,
        **extra,
    }


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bad_pngs() -> dict[str, bytes]:
    """PNGs whose header is sound (the web accepts them) but whose decoding fails."""
    png = image_bytes(64, 48, fmt="PNG", noise=False)
    end = png.rindex(b"IEND") - 4  # before the IEND chunk's length
    bomb = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (16 * 1024 * 1024)))
    return {
        "truncated png": png[: len(png) // 2],
        "png with a decompression-bomb text chunk": png[:end] + bomb + png[end:],
    }


def parsed_event(raw: dict[str, Any]) -> Event:
    """A raw event (as `event` makes) as the web hands it to the store: parsed and checked."""
    return parse_event(
        json.dumps(raw).encode(),
        hosts=HostAllowList(("camio.com", "127.0.0.1")),
        limits=Limits(max_images=64, max_image_pixels=40_000_000, max_image_bytes=8_000_000),
    )


def make_event(
    seed: int = 0,
    n_images: int = 1,
    *,
    callback_url: str = CALLBACK,
    images: Sequence[bytes] = (),
) -> Event:
    """`event(n_images, seed=seed)`, parsed and checked.

    With `images`, those bytes in that order instead (as many images as given).
    """
    payload = event(len(images) or n_images, seed=seed, callback_url=callback_url)
    for entry, data in zip(payload["images"], images, strict=False):
        entry["image_b64"] = b64(data)
    return parsed_event(payload)


KEEP_PICTURES = 24 * 3600.0  # HOOK_KEEP_PICTURES_HOURS's default, in seconds


def worked_task(
    store: TaskStore,
    raw: dict[str, Any],
    found: dict[str, float] | None = None,
    *,
    pictures: dict[int, bytes] | None = None,
    keep_images: bool = False,
    failure: str | None = None,
) -> str:
    """The event `raw` taken through the store as a worker would: queued, claimed, labeled
    (`found`: label -> score on every image; None: never labeled) with its images kept for
    pictures (`keep_images`, or pictures given) and its `pictures` stored as drawn before,
    then done, or failed with `failure`. Its task id."""
    parsed = parsed_event(raw)
    task_id, _ = store.enqueue(parsed)
    task = store.claim("test-worker", 60)
    assert task is not None and task.id == task_id, "another task was due first"
    if found is not None:
        size = (parsed.images[0].info.width, parsed.images[0].info.height)
        detections = [
            Detection(label, score, (1, 1, size[0] / 2, size[1] / 2))
            for label, score in found.items()
        ]
        images = [(key, size, detections) for key in task.image_keys]
        keep = KEEP_PICTURES if keep_images or pictures else 0.0
        body = json.dumps(camio_labels(images))
        store.save_result(task_id, "test-worker", body, keep_images_for=keep)
    labeled = store.get(task_id)
    for index, jpeg in (pictures or {}).items():  # as the gallery keeps what it drew
        store.save_picture(task_id, index, jpeg, labeled.labeled_at if labeled else None)
    if failure is None:
        store.complete(task_id, "test-worker", keep_images=keep_images or bool(pictures))
    else:
        store.fail(task_id, "test-worker", failure)
    return task_id


def write(path: Path, text: str) -> Path:
    """`text` written to `path`, for a test to hand the path on (a rules file, say)."""
    path.write_text(text)
    return path
