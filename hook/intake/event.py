"""A Camio event as POSTed to the hook: parsed, validated and reduced to what the queue stores.

Liberal in what it accepts (both timestamp shapes, unknown fields kept), strict in what it
stores: every failure is an Invalid (or TooLarge) that names the offending field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hook.callbacks.hosts import HostAllowList
from hook.errors import Invalid, TooLarge
from hook.intake.images import ImageInfo, b64_to_bytes, inspect_image
from hook.task import ImageMeta

MAX_TEXT = 1024  # camera names, user ids and timestamps are short; anything longer is not Camio
MAX_FIELDS = 64 * 1024  # the event minus image bytes, as JSON: kept in the (small) task document
SEPARATORS_PER_IMAGE = 64  # commas, braces and brackets an image's object may use
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class EventImage:
    """One image of an event: its label key (the timestamp exactly as received) and its bytes."""

    key: str
    taken_at: float  # seconds since the epoch; naive timestamps are taken as UTC
    data: bytes
    info: ImageInfo
    sha256: str

    def meta(self) -> ImageMeta:
        """What the task keeps of the image: everything but the bytes."""
        return ImageMeta(
            key=self.key,
            taken_at=self.taken_at,
            format=self.info.format,
            width=self.info.width,
            height=self.info.height,
            bytes=len(self.data),
            sha256=self.sha256,
        )


@dataclass(frozen=True)
class Event:
    """A validated event, ready to enqueue."""

    callback_url: str
    camera: str | None
    user_id: str | None
    images: tuple[EventImage, ...]
    payload_json: str  # the body as received minus image bytes: unknown fields are kept here

    @property
    def dedup_key(self) -> str:
        """Same callback, image bytes and timestamps = same event, however often Camio sends it.

        The timestamps count: the same picture under another timestamp is another label key
        that must be delivered.
        """
        digest = hashlib.sha256(self.callback_url.encode())
        for image in self.images:
            digest.update(b"\0" + bytes.fromhex(image.sha256) + image.key.encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Limits:
    """What one event may carry; from settings."""

    max_images: int
    max_image_pixels: int
    max_image_bytes: int


def parse_event(body: bytes, *, hosts: HostAllowList, limits: Limits) -> Event:
    """Validate a request body into an Event, or raise Invalid naming the first problem."""
    payload = _json_object(body, MAX_FIELDS + SEPARATORS_PER_IMAGE * limits.max_images)
    callback_url = hosts.check_url(payload.get("callback_url")).geturl()
    camera = _optional_text(payload, "camera")
    user_id = _optional_text(payload, "user_id")
    raw_images = payload.get("images")
    if not isinstance(raw_images, list) or not raw_images:
        raise Invalid("images must be a non-empty list", field="images")
    if len(raw_images) > limits.max_images:
        raise Invalid(
            f"images has {len(raw_images)} entries, over the limit of {limits.max_images} "
            "(HOOK_MAX_IMAGES)",
            field="images",
        )
    images: list[EventImage] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_images):
        image = _image(raw, f"images[{index}]", limits)
        if image.key in seen:
            raise Invalid(
                f"images[{index}].timestamp {image.key!r} repeats an earlier image's; labels are "
                "keyed by timestamp, so each image needs its own",
                field=f"images[{index}].timestamp",
            )
        seen.add(image.key)
        images.append(image)
    kept = dict(payload)
    kept["images"] = [{k: v for k, v in raw.items() if k != "image_b64"} for raw in raw_images]
    payload_json = json.dumps(kept, separators=(",", ":"))
    if len(payload_json) > MAX_FIELDS:
        raise TooLarge(
            f"the event's fields other than image_b64 take {len(payload_json)} bytes as JSON, "
            f"over the limit of {MAX_FIELDS}",
            field="body",
        )
    return Event(
        callback_url=callback_url,
        camera=camera,
        user_id=user_id,
        images=tuple(images),
        payload_json=payload_json,
    )


def parse_timestamp(value: object, *, field: str) -> tuple[str, float]:
    """Either protocol shape -> (key exactly as received, seconds since the epoch)."""
    text = value.get("date") if isinstance(value, dict) else value
    where = f"{field}.date" if isinstance(value, dict) else field
    if not isinstance(text, str) or not text.strip():
        raise Invalid(
            f'{field} must be an ISO 8601 string or {{"meta_class": "datetime.datetime", '
            '"date": "..."}}',
            field=field,
        )
    _check_text(text, where)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"{where} is not ISO 8601: {text[:80]!r}", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return text, moment.timestamp()


def _json_object(body: bytes, max_separators: int) -> dict[str, Any]:
    if not body:
        raise Invalid("the request body is empty; send the event as a JSON object", field="body")
    # Base64 has no commas, braces or brackets, so all of a body's lie in what MAX_FIELDS bounds
    # anyway; counting them first keeps a body of millions of tiny values ({},{},...) from being
    # parsed into millions of objects (about 30 times its size in memory) only to be refused.
    separators = body.count(b",") + body.count(b"{") + body.count(b"[")
    if separators > max_separators:
        raise TooLarge(
            f"the body has {separators} JSON separators, more than an event's fields can hold "
            f"(at most {max_separators}: the fields other than image bytes take at most "
            f"{MAX_FIELDS} bytes)",
            field="body",
        )
    try:
        payload = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid("the JSON body is nested too deeply", field="body") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, ints past Python's digit limit
        raise Invalid(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(payload, dict):
        raise Invalid(f"the body must be a JSON object, not {type(payload).__name__}", field="body")
    return payload


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _image(raw: object, field: str, limits: Limits) -> EventImage:
    if not isinstance(raw, dict):
        raise Invalid(f"{field} must be an object with image_b64 and timestamp", field=field)
    key, taken_at = parse_timestamp(raw.get("timestamp"), field=f"{field}.timestamp")
    text = raw.get("image_b64")
    if isinstance(text, str) and len(text) > limits.max_image_bytes * 4 // 3 + 1024:
        raise TooLarge(
            f"{field}.image_b64 holds about {len(text) * 3 // 4} bytes, over the limit of "
            f"{limits.max_image_bytes} (HOOK_MAX_IMAGE_BYTES)",
            field=f"{field}.image_b64",
        )
    data = b64_to_bytes(text, field=f"{field}.image_b64")
    info = inspect_image(data, max_pixels=limits.max_image_pixels, field=f"{field}.image_b64")
    return EventImage(
        key=key, taken_at=taken_at, data=data, info=info, sha256=hashlib.sha256(data).hexdigest()
    )


def _optional_text(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"{field} must be a string", field=field)
    text = str(value)
    _check_text(text, field)
    return text


def _check_text(text: str, field: str) -> None:
    """Short, printable and encodable (MongoDB stores UTF-8: lone surrogates are refused)."""
    if len(text) > MAX_TEXT:
        raise Invalid(f"{field} is longer than {MAX_TEXT} characters", field=field)
    if _CONTROL.search(text):
        raise Invalid(f"{field} contains control characters", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field} is not valid Unicode text", field=field) from None
