"""Parsing a Camio event: both timestamp shapes, keys kept verbatim, unknown fields kept."""

from __future__ import annotations

import json

import pytest

from hook.callbacks.hosts import HostAllowList
from hook.errors import Invalid, TooLarge
from hook.intake.event import Event, Limits, parse_event, parse_timestamp
from tests.factories import event

HOSTS = HostAllowList(("camio.com",))
LIMITS = Limits(max_images=8, max_image_pixels=1_000_000, max_image_bytes=2_000_000)


def parse(payload: object) -> Event:
    return parse_event(json.dumps(payload).encode(), hosts=HOSTS, limits=LIMITS)


@pytest.mark.parametrize(
    ("value", "key", "epoch"),
    [
        ("2017-05-05T01:31:13.738647", "2017-05-05T01:31:13.738647", 1493947873.738647),
        ("2016-10-09T06:17:36.923-0000", "2016-10-09T06:17:36.923-0000", 1475993856.923),
        ("2016-10-09T08:17:36.923+02:00", "2016-10-09T08:17:36.923+02:00", 1475993856.923),
        ("2017-05-05T01:31:13Z", "2017-05-05T01:31:13Z", 1493947873.0),
        (
            {"meta_class": "datetime.datetime", "date": "2017-05-05T01:31:13.738647"},
            "2017-05-05T01:31:13.738647",
            1493947873.738647,
        ),
    ],
)
def test_both_timestamp_shapes_keep_the_key_as_received(
    value: object, key: str, epoch: float
) -> None:
    got_key, got_epoch = parse_timestamp(value, field="t")
    assert got_key == key
    assert got_epoch == pytest.approx(epoch)


@pytest.mark.parametrize(
    "value",
    [
        None,
        17,
        "",
        "yesterday",
        "2017-13-05T01:00:00",
        {"meta_class": "datetime.datetime"},
        {"date": 5},
        ["2017"],
    ],
)
def test_bad_timestamps_are_named(value: object) -> None:
    with pytest.raises(Invalid, match=r"^t"):
        parse_timestamp(value, field="t")


def test_event_keeps_unknown_fields_but_no_image_bytes() -> None:
    payload = event(2, extra_field={"nested": [1, 2]}, labels=["person"])
    payload["images"][0]["exotic"] = "kept"
    parsed = parse(payload)
    kept = json.loads(parsed.payload_json)
    assert kept["extra_field"] == {"nested": [1, 2]} and kept["labels"] == ["person"]
    assert kept["images"][0]["exotic"] == "kept"
    assert all("image_b64" not in image for image in kept["images"])
    assert [i.key for i in parsed.images] == [
        "2017-05-05T01:31:10.738647",
        "2017-05-05T01:31:11.738647",
    ]
    assert parsed.images[0].info.format == "JPEG" and parsed.images[0].info.width == 64
    assert parsed.camera == "front door" and parsed.user_id == "u1"


def test_dedup_key_depends_on_callback_bytes_and_timestamps() -> None:
    a = parse(event(2, seed=1))
    b = parse({**event(2, seed=1), "camera": "other name"})
    c = parse(event(2, seed=2))
    d = parse(event(2, seed=1, callback_url="https://www.camio.com/api/other"))
    later = event(2, seed=1)
    later["images"][0]["timestamp"] = "2017-05-05T09:00:00.000000"  # same picture, another time
    e = parse(later)
    assert a.dedup_key == b.dedup_key
    assert len({a.dedup_key, c.dedup_key, d.dedup_key, e.dedup_key}) == 4


def test_repeated_timestamps_are_refused() -> None:
    payload = event(2)
    payload["images"][1]["timestamp"] = payload["images"][0]["timestamp"]
    with pytest.raises(Invalid, match=r"images\[1\].timestamp .* repeats"):
        parse(payload)


def test_limits_apply() -> None:
    with pytest.raises(Invalid, match="over the limit of 8"):
        parse(event(9))
    with pytest.raises(Invalid, match="1200x900 pixels, over the limit"):
        parse(event(1, size=(1200, 900)))


def test_nan_and_infinity_are_not_json() -> None:
    body = json.dumps(event(1)).replace('"u1"', "NaN").encode()
    with pytest.raises(Invalid, match="NaN is not a JSON number"):
        parse_event(body, hosts=HOSTS, limits=LIMITS)


@pytest.mark.parametrize("stamp", ["2017-05-05T01:31:13\x00", "2017-05-05T01:31:13\n"])
def test_control_characters_in_timestamps_are_refused(stamp: str) -> None:
    with pytest.raises(Invalid, match="control characters"):
        parse_timestamp(stamp, field="t")


def test_oversized_image_and_oversized_fields_are_413() -> None:
    big = event(1)
    big["images"][0]["image_b64"] = "A" * 4_000_000
    with pytest.raises(TooLarge, match=r"images\[0\].image_b64 holds about 3000000 bytes"):
        parse(big)
    with pytest.raises(TooLarge, match="other than image_b64 take"):
        parse(event(1, junk="x" * 70_000))


def test_a_body_of_millions_of_tiny_values_is_refused_before_parsing() -> None:
    bomb = b'{"callback_url": "https://www.camio.com/cb", "images": [' + b"{}," * 200_000 + b"{}]}"
    with pytest.raises(TooLarge, match="JSON separators, more than an event's fields"):
        parse_event(bomb, hosts=HOSTS, limits=LIMITS)
