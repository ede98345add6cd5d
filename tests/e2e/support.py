"""What the end-to-end tests share: an event POSTed to the running web, a blank picture."""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

from PIL import Image

from tests.procs import Stack
from tests.receiver import Receiver


def send(
    stack: Stack, receiver: Receiver, images: list[tuple[Any, bytes]], path: str | None = None
) -> tuple[str, str]:
    """POST an event with (timestamp, bytes) images; return (task id, callback path)."""
    path = path or f"/cb/{uuid.uuid4().hex}"
    payload = {
        "callback_url": receiver.url(path),
        "camera": "porch",
        "user_id": "u1",
        "images": [
            {"timestamp": ts, "image_b64": base64.b64encode(data).decode()} for ts, data in images
        ],
    }
    answer = stack.post(payload)
    assert answer.status_code == 200, answer.text
    return answer.json()["task_id"], path


def blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()
